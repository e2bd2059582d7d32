"""SIP transactions (RFC 3261 §17) without I/O: which transaction a message belongs to, and
what a server sends again.

`ServerTransactions` is the table a UAS keeps so that a retransmitted request (a device
resending its REGISTER or keepalive MESSAGE over UDP because our 200 was lost) gets the same
response again instead of being handled twice, an ACK to a non-2xx final response of an
INVITE is absorbed, and a final response to an INVITE over UDP is retransmitted (Timer G)
until its ACK or Timer H. Time comes from an injected clock; the owner calls `due()` on its
own timer and sends what it returns, and `expire()` to forget finished transactions.

`retransmit_intervals` is the client side's schedule (Timers A/B and E/F); `client_key`
matches a response to the client transaction that sent its request.
"""

from __future__ import annotations

import enum
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from hub.gb28181.sip import SipRequest, SipResponse

T1 = 0.5  # RTT estimate
T2 = 4.0  # longest retransmit interval of non-INVITE requests and INVITE responses
T4 = 5.0  # longest time a message stays in the network
MAGIC = "z9hG4bK"

Key = tuple[str, ...]


def server_key(request: SipRequest) -> Key:
    """RFC 3261 §17.2.3: top Via branch and sent-by, and the method (an ACK matches the
    INVITE it acknowledges). Without the magic cookie (RFC 2543 peers) the key is the
    Request-URI, From tag, Call-ID, CSeq number and top Via (the To tag is not compared)."""
    top = request.vias[0]
    method = "INVITE" if request.method == "ACK" else request.method
    sent_by = f"{top.host.lower()}:{top.port or ''}"
    if top.branch and top.branch.startswith(MAGIC):
        return (top.branch, sent_by, method)
    return (
        "rfc2543",
        str(request.uri),
        request.from_.tag or "",
        request.call_id,
        str(request.cseq.number),
        str(top),
        method,
    )


def client_key(message: SipRequest | SipResponse) -> Key:
    """RFC 3261 §17.1.3: top Via branch and CSeq method (of our request or its response)."""
    return (message.vias[0].branch or "", message.cseq.method)


def retransmit_intervals(
    *, invite: bool, reliable: bool = False, t1: float = T1, t2: float = T2
) -> Iterator[float]:
    """Seconds to wait before each retransmission of a client request over UDP, until the
    transaction times out at 64*T1 (Timer B or F). Over TCP: no retransmission."""
    if reliable:
        return
    waited, interval = 0.0, t1
    while waited + interval < 64 * t1:
        yield interval
        waited += interval
        interval = interval * 2 if invite else min(interval * 2, t2)


class Received(enum.Enum):
    NEW = "new"  # hand it to the application
    RETRANSMISSION = "retransmission"  # send `resend` (if any) and do nothing else
    ACK_ABSORBED = "ack_absorbed"  # the ACK of a non-2xx final response: nothing to do


@dataclass
class _Transaction:
    request: SipRequest
    created: float
    response: bytes | None = None
    final: int | None = None
    ends_at: float | None = None  # None while no final response was sent
    next_resend: float | None = None  # Timer G (INVITE, UDP)
    interval: float = T1
    acked: bool = False


class ServerTransactions:
    def __init__(
        self,
        *,
        reliable: bool = False,
        clock: Callable[[], float] = time.monotonic,
        t1: float = T1,
        t2: float = T2,
        t4: float = T4,
        max_size: int = 10_000,
        unanswered: float = 180.0,
    ) -> None:
        self._reliable = reliable
        self._clock = clock
        self._t1, self._t2, self._t4 = t1, t2, t4
        self._max = max_size
        self._unanswered = unanswered  # an application that never answers: forget after this
        self._table: OrderedDict[Key, _Transaction] = OrderedDict()
        self.evicted = 0  # transactions dropped because the table was full

    def __len__(self) -> int:
        return len(self._table)

    def receive(self, request: SipRequest) -> tuple[Received, bytes | None]:
        """Classify a request; for a retransmission, the last response to send again."""
        key = server_key(request)
        found = self._table.get(key)
        if request.method == "ACK":
            if found is not None and found.final is not None and found.final >= 300:
                if not found.acked:  # Timer I: linger T4 to absorb ACK retransmissions
                    found.acked, found.next_resend = True, None
                    found.ends_at = self._clock() + (0 if self._reliable else self._t4)
                return Received.ACK_ABSORBED, None
            return Received.NEW, None  # the ACK of a 2xx is the dialog's, not ours
        if found is not None:
            return Received.RETRANSMISSION, found.response
        self._table[key] = _Transaction(request, created=self._clock())
        while len(self._table) > self._max:
            self._table.popitem(last=False)
            self.evicted += 1
        return Received.NEW, None

    def respond(self, request: SipRequest, response: SipResponse) -> bytes:
        """Record the response sent to `request` (to resend on retransmissions); the bytes
        to send. A final response starts the timers that end the transaction."""
        data = response.to_bytes()
        entry = self._table.get(server_key(request))
        if entry is None or entry.final is not None:
            return data  # unknown (evicted) or already answered: send, remember nothing
        entry.response = data
        if response.status < 200:
            return data
        now, wait = self._clock(), 64 * self._t1
        entry.final = response.status
        if request.method == "INVITE":
            # Timer H for a non-2xx (waiting for the ACK); for a 2xx, RFC 6026's Timer L
            entry.ends_at = now + wait
            if not self._reliable and response.status >= 300:
                entry.next_resend, entry.interval = now + self._t1, self._t1
        else:
            entry.ends_at = now + (0 if self._reliable else wait)  # Timer J
        return data

    def due(self) -> list[bytes]:
        """Final INVITE responses to retransmit now (Timer G), over UDP."""
        now, out = self._clock(), []
        for entry in self._table.values():
            if entry.next_resend is not None and entry.next_resend <= now and entry.response:
                out.append(entry.response)
                entry.interval = min(entry.interval * 2, self._t2)
                # on schedule, not from a late call; but no burst to catch up either
                scheduled = entry.next_resend + entry.interval
                entry.next_resend = scheduled if scheduled > now else now + entry.interval
        return out

    def expire(self) -> int:
        """Forget the transactions whose timers ran out; how many were forgotten."""
        now = self._clock()
        stale = now - self._unanswered
        done = [
            key
            for key, e in self._table.items()
            if (e.ends_at is not None and e.ends_at <= now)
            or (e.final is None and e.created <= stale)
        ]
        for key in done:
            del self._table[key]
        return len(done)
