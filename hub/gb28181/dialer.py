"""The hub's requests to one device, as a GB/T 28181 platform writes them: MANSCDP queries in
MESSAGE, and the INVITE dialog of a live view (INVITE, its ACK, BYE).

Every request goes where the device registered from, over the transport it registered on
(`SipServer.request`); our address in Via, Contact and SDP is the one the device reaches us
at (`SipServer.local`). A 200 to INVITE without a To tag (some devices) still makes a dialog:
its ACK and BYE carry no To tag either.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from config.schema import Gb28181Config
from hub.gb28181.server import SipServer
from hub.gb28181.service import Device
from hub.gb28181.sip import SipResponse, new_branch, new_tag
from hub.gb28181.uac import SipRequestError, build_request, new_call_id

MANSCDP_TYPE = "Application/MANSCDP+xml"
BYE_TIMEOUT = 4.0


@dataclass
class Dialog:
    """A live-view (or playback) session the hub opened with INVITE."""

    device: Device
    channel: str
    call_id: str
    local_tag: str
    remote_tag: str | None
    cseq: int
    target: str  # the Request-URI of requests inside the dialog
    answer: SipResponse
    ended: bool = False


class Dialer:
    def __init__(self, config: Gb28181Config, server: SipServer) -> None:
        self.config = config
        self.server = server
        self._cseq = itertools.count(1)

    def local(self, device: Device) -> tuple[str, int]:
        return self.server.local(device.address, device.transport)

    def _via(self, device: Device) -> tuple[str, str, int]:
        host, port = self.local(device)
        return (device.transport.upper(), host, port)

    def _ours(self) -> str:
        return f"sip:{self.config.server_id}@{self.config.domain}"

    async def message(self, device: Device, body: bytes, *, timeout: float) -> SipResponse:
        """A MANSCDP MESSAGE (a query); the device's final response to it."""
        if not device.online:
            raise SipRequestError(f"device {device.id} is offline")
        host, _ = self.local(device)
        request = build_request(
            "MESSAGE",
            f"sip:{device.id}@{device.address}",
            from_uri=self._ours(),
            to_uri=f"sip:{device.id}@{self.config.domain}",
            via=self._via(device),
            call_id=new_call_id(host),
            cseq=next(self._cseq),
            body=body,
            content_type=MANSCDP_TYPE,
        )
        return await self.server.request(request, device.address, device.transport, timeout=timeout)

    async def invite(
        self, device: Device, channel: str, sdp: bytes, ssrc: str, *, timeout: float
    ) -> Dialog:
        """INVITE `channel` with our SDP offer; on a 2xx, ACK it and return the dialog. A
        non-2xx or no answer raises SipRequestError (status set for a final refusal)."""
        if not device.online:
            raise SipRequestError(f"device {device.id} is offline")
        host, port = self.local(device)
        cseq, tag, call_id = next(self._cseq), new_tag(), new_call_id(host)
        request = build_request(
            "INVITE",
            f"sip:{channel}@{device.address}",
            from_uri=self._ours(),
            to_uri=f"sip:{channel}@{self.config.domain}",
            via=self._via(device),
            call_id=call_id,
            cseq=cseq,
            from_tag=tag,
            contact=f"sip:{self.config.server_id}@{host}:{port}",
            body=sdp,
            content_type="APPLICATION/SDP",
            extra=[("Subject", f"{channel}:{ssrc},{self.config.server_id}:0")],
        )
        answer = await self.server.request(
            request, device.address, device.transport, timeout=timeout
        )
        if not 200 <= answer.status < 300:
            raise SipRequestError(
                f"device {device.id} answered INVITE {channel}: {answer.status} {answer.reason}",
                answer.status,
            )
        contacts = answer.contacts
        target = str(contacts[0].uri) if contacts else str(request.uri)
        dialog = Dialog(device, channel, call_id, tag, answer.to.tag, cseq, target, answer)
        self._ack(dialog)
        return dialog

    def _ack(self, dialog: Dialog) -> None:
        device = dialog.device
        ack = build_request(
            "ACK",
            dialog.target,
            from_uri=self._ours(),
            to_uri=f"sip:{dialog.channel}@{self.config.domain}",
            via=self._via(device),
            call_id=dialog.call_id,
            cseq=dialog.cseq,
            from_tag=dialog.local_tag,
            to_tag=dialog.remote_tag,
            branch=new_branch(),
        )
        try:
            self.server.send_ack(ack, device.address, device.transport)
        except SipRequestError:
            pass  # the connection went: the BYE will fail the same way, the media never comes

    async def bye(self, dialog: Dialog) -> None:
        """End the dialog (no error if the device is gone or does not answer)."""
        if dialog.ended:
            return
        dialog.ended = True
        device = dialog.device
        dialog.cseq += 1
        bye = build_request(
            "BYE",
            dialog.target,
            from_uri=self._ours(),
            to_uri=f"sip:{dialog.channel}@{self.config.domain}",
            via=self._via(device),
            call_id=dialog.call_id,
            cseq=dialog.cseq,
            from_tag=dialog.local_tag,
            to_tag=dialog.remote_tag,
        )
        try:
            await self.server.request(bye, device.address, device.transport, timeout=BYE_TIMEOUT)
        except SipRequestError:
            pass
