"""A simulated GB/T 28181 device (an IPC or an NVR with channels), for the demo and tests.

It speaks to the hub the way a device does, over real sockets and through the same code
the hub's side uses (`hub.gb28181.sip`, `digest`, `manscdp`, `streams.mpegps.PsMuxer`,
`streams.rtp_ps`): it registers with digest, keeps alive, answers Catalog (in batches of
`batch` items, SumNum and all) and DeviceInfo queries, and answers an INVITE with 200 + SDP,
then sends the channel's pictures (from any camera URL the hub can open, e.g. `synthetic://`)
as PS over RTP to the address and port of the offer: UDP, or TCP with RFC 4571 framing — it
connects for `a=setup:passive` offers and listens for `active` ones. BYE from either side.

Knobs for field behaviour: `marker` (False: never set the RTP marker), `stream_ssrc` (send
another SSRC than the offer's), `answer_sdp` (False: a 200 with no SDP), `to_tag` (False: a
200 without a To tag).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from hub.gb28181 import manscdp
from hub.gb28181.digest import Challenge, authorize
from hub.gb28181.manscdp import CatalogItem
from hub.gb28181.sip import (
    SipParseError,
    SipRequest,
    SipResponse,
    SipStreamParser,
    new_tag,
    parse_message,
    response_to,
)
from hub.gb28181.uac import SipRequestError, SipTimeout, build_request, new_call_id
from streams.bitstream import with_parameter_sets
from streams.media import Codec, Packet, PacketSink, StreamInfo
from streams.mpegps import PsMuxer
from streams.registry import SourceOptions, open_source
from streams.rtp_ps import PsRtpSender, frame_rfc4571
from streams.tasks import TaskSet

log = logging.getLogger(__name__)


@dataclass
class SimChannel:
    id: str  # 20 digits, type 131/132
    name: str
    url: str  # where its pictures come from (synthetic://…)
    civil_code: str = ""
    status: str = "ON"


@dataclass
class Offer:
    host: str
    port: int
    ssrc: int
    tcp: bool
    setup: str  # passive (we connect), active (we listen), "" (UDP)


def parse_offer(body: bytes) -> Offer:
    host, port, ssrc, tcp, setup = "127.0.0.1", 0, 0, False, ""
    for raw in body.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if line.startswith("c=IN IP4 "):
            host = line[9:].strip()
        elif line.startswith("m=video"):
            parts = line.split()
            port, tcp = int(parts[1]), "TCP" in parts[2].upper()
        elif line.startswith("y="):
            ssrc = int(line[2:].strip())
        elif line.startswith("a=setup:"):
            setup = line[8:].strip()
    return Offer(host, port, ssrc, tcp, setup)


@dataclass
class _Session:
    call_id: str
    channel: SimChannel
    offer: Offer
    to_tag: str
    invite: SipRequest
    task: asyncio.Task[None] | None = None
    server: asyncio.AbstractServer | None = None
    listen_port: int = 0
    sent: int = 0  # RTP packets


class SimulatedDevice:
    def __init__(
        self,
        device_id: str,
        channels: list[SimChannel],
        *,
        hub: tuple[str, int],
        server_id: str,
        domain: str,
        password: str = "",
        transport: str = "udp",
        keepalive: float = 30.0,
        expires: int = 3600,
        batch: int = 2,
        name: str = "Simulated NVR",
    ) -> None:
        self.id = device_id
        self.channels = channels
        self.hub = hub
        self.server_id, self.domain = server_id, domain
        self.password = password
        self.transport = transport
        self.keepalive_interval = keepalive
        self.expires = expires
        self.batch = batch
        self.name = name
        # field behaviour
        self.marker = True
        self.stream_ssrc: int | None = None
        self.answer_sdp = True
        self.to_tag = True
        self.answer_invites = True
        # state
        self.registered = asyncio.Event()
        self.sessions: dict[str, _Session] = {}
        self.queries: list[str] = []  # CmdTypes the hub asked
        self.byes = 0  # BYEs received from the hub
        self._tasks = TaskSet(f"sim device {device_id}", log)
        self._udp: asyncio.DatagramTransport | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[str, asyncio.Future[SipResponse]] = {}  # branch → response
        self._cseq = itertools.count(1)
        self._sn = itertools.count(1)
        self._call_id = new_call_id("127.0.0.1")
        self._tag = new_tag()
        self._local = ("127.0.0.1", 0)
        self._granted = expires  # seconds the hub granted the last REGISTER
        self._expires_at = 0.0  # monotonic time the registration runs out
        self.unregistered = False  # unregistered on purpose: stays so

    # -- life --------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the socket, register (digest), then keep alive in the background."""
        loop = asyncio.get_running_loop()
        if self.transport == "udp":
            udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), remote_addr=self.hub)
            self._udp = udp
            self._local = udp.get_extra_info("sockname")[:2]
        else:
            reader, writer = await asyncio.open_connection(*self.hub)
            self._writer = writer
            self._local = writer.get_extra_info("sockname")[:2]
            self._tasks.spawn(self._read_tcp(reader), name=f"sim:{self.id}:tcp")
        await self.register()
        self._tasks.spawn(self._keepalive(), name=f"sim:{self.id}:keepalive")

    async def close(self) -> None:
        for session in list(self.sessions.values()):
            self._stop(session)
        await self._tasks.close()
        if self._udp is not None:
            self._udp.close()
        if self._writer is not None:
            self._writer.close()

    async def register(self, expires: int | None = None) -> SipResponse:
        expires = self.expires if expires is None else expires
        uri = f"sip:{self.server_id}@{self.domain}"
        response = await self._request("REGISTER", uri, expires=expires)
        if response.status == 401:
            challenge = Challenge.parse(response.headers.get("WWW-Authenticate") or "")
            credentials = authorize(
                challenge, method="REGISTER", uri=uri, username=self.id, password=self.password
            )
            response = await self._request(
                "REGISTER",
                uri,
                expires=expires,
                extra=[("Authorization", credentials.header_value())],
            )
        self.unregistered = response.status == 200 and not expires
        if response.status == 200 and expires:
            granted = response.headers.get("Expires") or ""
            self._granted = int(granted) if granted.isdigit() else expires
            self._expires_at = time.monotonic() + self._granted
            self.registered.set()
        else:
            self.registered.clear()
        return response

    async def _keepalive(self) -> None:
        """Keep alive; like real devices, register again halfway to the registration's expiry
        and whenever the hub says it does not know us (it restarted)."""
        while True:
            await asyncio.sleep(self.keepalive_interval)
            with contextlib.suppress(SipRequestError):
                left = self._expires_at - time.monotonic()
                if self.unregistered:
                    continue
                if not self.registered.is_set() or left < self._granted / 2:
                    await self.register()
                    continue
                response = await self._message(manscdp.build_keepalive(self.id, next(self._sn)))
                if response.status == 403:
                    await self.register()

    async def _message(self, body: bytes) -> SipResponse:
        return await self._request(
            "MESSAGE",
            f"sip:{self.server_id}@{self.domain}",
            body=body,
            content_type="Application/MANSCDP+xml",
            fresh_call=True,
        )

    async def bye(self, channel: str) -> None:
        """End the channel's session from the device's side."""
        for session in list(self.sessions.values()):
            if session.channel.id == channel:
                invite = session.invite
                self._stop(session)
                await self._request(
                    "BYE",
                    str(invite.contacts[0].uri) if invite.contacts else f"sip:{self.server_id}@x",
                    call_id=session.call_id,
                    from_tag=session.to_tag,
                    to=invite.headers.get("From") or "",
                )

    # -- SIP out -----------------------------------------------------------------------------
    async def _request(
        self,
        method: str,
        uri: str,
        *,
        expires: int | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        extra: list[tuple[str, str]] | None = None,
        fresh_call: bool = False,
        call_id: str | None = None,
        from_tag: str | None = None,
        to: str | None = None,
    ) -> SipResponse:
        headers = list(extra or [])
        if expires is not None:
            headers.append(("Expires", str(expires)))
        request = build_request(
            method,
            uri,
            from_uri=f"sip:{self.id}@{self.domain}",
            to_uri=f"sip:{self.id}@{self.domain}",
            via=(self.transport.upper(), str(self._local[0]), int(self._local[1])),
            call_id=call_id or (new_call_id("127.0.0.1") if fresh_call else self._call_id),
            cseq=next(self._cseq),
            from_tag=from_tag or self._tag,
            contact=f"sip:{self.id}@10.0.0.5:5060",  # a private address the hub never dials
            body=body,
            content_type=content_type,
            extra=headers,
        )
        if to is not None:
            request.headers.set("To", to)
        branch = request.vias[0].branch or ""
        future: asyncio.Future[SipResponse] = asyncio.get_running_loop().create_future()
        self._pending[branch] = future
        try:
            self._send(request.to_bytes())
            async with asyncio.timeout(5):
                return await future
        except TimeoutError:
            raise SipTimeout(f"{method}: no answer from the hub") from None
        finally:
            self._pending.pop(branch, None)

    def _send(self, data: bytes) -> None:
        if self._udp is not None:
            self._udp.sendto(data)
        elif self._writer is not None:
            self._writer.write(data)

    # -- SIP in ------------------------------------------------------------------------------
    async def _read_tcp(self, reader: asyncio.StreamReader) -> None:
        parser = SipStreamParser()
        while data := await reader.read(65536):
            for message in parser.feed(data):
                self.received(message)

    def datagram(self, data: bytes) -> None:
        try:
            self.received(parse_message(data))
        except SipParseError as err:
            log.info("sim device %s: bad SIP from the hub: %s", self.id, err)

    def received(self, message: SipRequest | SipResponse) -> None:
        if isinstance(message, SipResponse):
            future = self._pending.get(message.vias[0].branch or "")
            if future is not None and not future.done() and message.status >= 200:
                future.set_result(message)
            return
        method = message.method
        if method == "MESSAGE":
            self._send(response_to(message, 200).to_bytes())
            self._query(message)
        elif method == "INVITE":
            self._invite(message)
        elif method == "ACK":
            session = self.sessions.get(message.call_id)
            active = session is not None and session.offer.setup == "active"
            if session is not None and session.task is None and not active:
                session.task = self._tasks.spawn(self._stream(session), name="sim:media")
        elif method == "BYE":
            session = self.sessions.get(message.call_id)
            if session is not None:
                self.byes += 1
                self._stop(session)
            self._send(response_to(message, 200 if session else 481).to_bytes())
        else:
            self._send(response_to(message, 200).to_bytes())

    def _query(self, request: SipRequest) -> None:
        try:
            body = manscdp.parse(request.body)
        except manscdp.ManscdpError:
            return
        self.queries.append(body.cmd_type)
        if body.cmd_type == "Catalog":
            items = [
                CatalogItem(
                    device_id=c.id,
                    name=c.name,
                    manufacturer="zzhub",
                    model="sim",
                    civil_code=c.civil_code,
                    parent_id=self.id,
                    status=c.status,
                )
                for c in self.channels
            ]
            replies = manscdp.build_catalog_responses(self.id, body.sn, items, batch=self.batch)
        elif body.cmd_type == "DeviceInfo":
            replies = [
                manscdp.build_device_info_response(
                    self.id,
                    body.sn,
                    name=self.name,
                    manufacturer="zzhub",
                    model="sim-nvr",
                    firmware="1.0",
                    channel=len(self.channels),
                )
            ]
        else:
            return
        self._tasks.spawn(self._reply(replies), name="sim:reply")

    async def _reply(self, bodies: list[bytes]) -> None:
        for body in bodies:
            with contextlib.suppress(SipRequestError):
                await self._message(body)

    def _invite(self, request: SipRequest) -> None:
        channel = next((c for c in self.channels if c.id == request.uri.user), None)
        if channel is None:
            self._send(response_to(request, 404).to_bytes())
            return
        if not self.answer_invites:
            self._send(response_to(request, 100).to_bytes())  # and then nothing
            return
        offer = parse_offer(request.body)
        tag = new_tag()
        session = _Session(request.call_id, channel, offer, tag, request)
        self.sessions[request.call_id] = session
        self._tasks.spawn(self._answer(session), name="sim:answer")

    async def _answer(self, session: _Session) -> None:
        offer = session.offer
        if offer.tcp and offer.setup == "active":  # the hub connects to us
            session.server = await asyncio.start_server(self._accept(session), "127.0.0.1", 0)
            session.listen_port = session.server.sockets[0].getsockname()[1]
        ssrc = self.stream_ssrc if self.stream_ssrc is not None else offer.ssrc
        sdp = b""
        if self.answer_sdp:
            proto = "TCP/RTP/AVP" if offer.tcp else "RTP/AVP"
            setup = {"passive": "active", "active": "passive"}.get(offer.setup, "")
            lines = [
                "v=0",
                f"o={self.id} 0 0 IN IP4 127.0.0.1",
                "s=Play",
                "c=IN IP4 127.0.0.1",
                "t=0 0",
                f"m=video {session.listen_port or 15060} {proto} 96",
                "a=sendonly",
                "a=rtpmap:96 PS/90000",
                *([f"a=setup:{setup}"] if setup else []),
                f"y={ssrc:010d}",
            ]
            sdp = ("\r\n".join(lines) + "\r\n").encode()
        response = response_to(
            session.invite,
            200,
            to_tag=session.to_tag,
            body=sdp,
            content_type="APPLICATION/SDP" if sdp else None,
        )
        if not self.to_tag:
            response.headers.set("To", session.invite.headers.get("To") or "")
        response.headers.add("Contact", f"<sip:{session.channel.id}@10.0.0.5:5060>")
        self._send(response.to_bytes())

    def _accept(self, session: _Session) -> Any:
        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if session.task is not None:
                writer.close()
                return
            session.task = asyncio.current_task()
            try:
                await self._pump(session, lambda data: writer.write(frame_rfc4571(data)), writer)
            finally:
                writer.close()

        return accepted

    def _stop(self, session: _Session) -> None:
        self.sessions.pop(session.call_id, None)
        if session.task is not None:
            session.task.cancel()
        if session.server is not None:
            session.server.close()

    # -- media -------------------------------------------------------------------------------
    async def _stream(self, session: _Session) -> None:
        offer = session.offer
        loop = asyncio.get_running_loop()
        if offer.tcp:
            _, writer = await asyncio.open_connection(offer.host, offer.port)
            try:
                await self._pump(session, lambda data: writer.write(frame_rfc4571(data)), writer)
            finally:
                writer.close()
            return
        udp, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=(offer.host, offer.port)
        )
        try:
            await self._pump(session, udp.sendto, None)
        finally:
            udp.close()

    async def _pump(
        self, session: _Session, send: Any, writer: asyncio.StreamWriter | None
    ) -> None:
        """The channel's pictures, muxed to PS, cut into RTP, sent with `send`."""
        ssrc = self.stream_ssrc if self.stream_ssrc is not None else session.offer.ssrc
        sink = _PsSink(self, session, send, writer, ssrc)
        await open_source(session.channel.url, SourceOptions(name=session.channel.id)).run(sink)


class _PsSink(PacketSink):
    def __init__(
        self,
        device: SimulatedDevice,
        session: _Session,
        send: Any,
        writer: asyncio.StreamWriter | None,
        ssrc: int,
    ) -> None:
        self.device, self.session, self.send, self.writer = device, session, send, writer
        self.sender = PsRtpSender(ssrc, seq=secrets.randbelow(65536))
        self.muxer: PsMuxer | None = None
        self.info: StreamInfo | None = None

    def on_info(self, info: StreamInfo) -> None:
        self.info = info
        self.muxer = PsMuxer(info.codec if info.codec in (Codec.H264, Codec.HEVC) else Codec.H264)

    def on_packet(self, packet: Packet) -> None:
        if self.muxer is None or self.info is None:
            return
        data = with_parameter_sets(self.info, packet.data) if packet.keyframe else packet.data
        ps = self.muxer.video(data, packet.pts, keyframe=packet.keyframe)
        for rtp in self.sender.packetize(ps, packet.pts):
            if not self.device.marker:
                rtp = rtp[:1] + bytes((rtp[1] & 0x7F,)) + rtp[2:]
            self.send(rtp)
        self.session.sent = self.sender.packets
        if self.writer is not None and self.writer.transport.get_write_buffer_size() > 1 << 22:
            self.writer.close()  # the hub stopped reading: give up like a device would


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, device: SimulatedDevice) -> None:
        self.device = device

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.device.datagram(data)
