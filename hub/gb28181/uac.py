"""The hub's own requests to devices (RFC 3261 UAC), without I/O: building them, and the
table that matches the responses to them.

`build_request` writes a request as a GB/T 28181 platform sends it: our Via (with `rport`,
so a device behind NAT answers to the address it saw) and a fresh branch, our tag in From,
Call-ID, CSeq, Max-Forwards, a Contact when the request opens a dialog. `Pending` is the
client transaction table: `add` before sending, `resolve` for each response received; the
owner (`hub.gb28181.server.SipServer.request`) awaits the final response and retransmits
over UDP on `hub.gb28181.transaction.retransmit_intervals`.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from hub.gb28181.sip import Headers, SipRequest, SipResponse, SipUri, new_branch, new_tag
from hub.gb28181.transaction import Key, client_key


class SipRequestError(Exception):
    """A request of ours got no usable answer: timed out, refused or the device is gone."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status  # the final status the device sent (0: none)


class SipTimeout(SipRequestError):
    pass


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(10)}@{host}"


def build_request(
    method: str,
    uri: str,
    *,
    from_uri: str,
    to_uri: str,
    via: tuple[str, str, int],  # (transport UDP/TCP, host, port)
    call_id: str,
    cseq: int,
    from_tag: str | None = None,
    to_tag: str | None = None,
    contact: str | None = None,
    body: bytes = b"",
    content_type: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
    branch: str | None = None,
) -> SipRequest:
    transport, host, port = via
    headers = Headers()
    headers.add(
        "Via", f"SIP/2.0/{transport.upper()} {host}:{port};rport;branch={branch or new_branch()}"
    )
    headers.add("From", f"<{from_uri}>;tag={from_tag or new_tag()}")
    headers.add("To", f"<{to_uri}>" + (f";tag={to_tag}" if to_tag else ""))
    headers.add("Call-ID", call_id)
    headers.add("CSeq", f"{cseq} {method}")
    headers.add("Max-Forwards", "70")
    if contact:
        headers.add("Contact", f"<{contact}>")
    for name, value in extra:
        headers.add(name, value)
    if body and content_type:
        headers.add("Content-Type", content_type)
    headers.add("User-Agent", "zzhub")
    return SipRequest(headers, body, method=method, uri=SipUri.parse(uri))


@dataclass
class Transaction:
    request: SipRequest
    final: asyncio.Future[SipResponse]
    provisional: list[SipResponse] = field(default_factory=list)

    @property
    def proceeding(self) -> bool:
        return bool(self.provisional)


class Pending:
    """Client transactions waiting for their final response, by branch and method."""

    def __init__(self, max_size: int = 10_000) -> None:
        self._table: dict[Key, Transaction] = {}
        self._max = max_size
        self.stray = 0  # responses that matched no transaction of ours

    def __len__(self) -> int:
        return len(self._table)

    def add(self, request: SipRequest) -> Transaction:
        if len(self._table) >= self._max:
            raise SipRequestError("too many requests in flight")
        key = client_key(request)
        tx = Transaction(request, asyncio.get_running_loop().create_future())
        self._table[key] = tx
        return tx

    def remove(self, tx: Transaction) -> None:
        self._table.pop(client_key(tx.request), None)
        if not tx.final.done():
            tx.final.cancel()

    def resolve(self, response: SipResponse) -> bool:
        """Hand a response to its transaction; False when none is waiting for it."""
        tx = self._table.get(client_key(response))
        if tx is None or tx.final.done():
            self.stray += 1
            return False
        if response.status < 200:
            if len(tx.provisional) < 8:
                tx.provisional.append(response)
            else:
                tx.provisional[-1] = response
            return True
        tx.final.set_result(response)
        return True
