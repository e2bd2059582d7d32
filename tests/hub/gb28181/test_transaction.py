"""Server transactions: retransmissions answered from the table, ACKs absorbed, Timer G/H/J."""

from __future__ import annotations

import pytest

from hub.gb28181.sip import SipRequest, SipResponse, parse_message, response_to
from hub.gb28181.transaction import (
    T1,
    Received,
    ServerTransactions,
    client_key,
    retransmit_intervals,
    server_key,
)
from tests.hub.gb28181.test_sip import INVITE, REGISTER, keepalive
from tests.hub.gb28181.test_sip_torture import wire


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def request(data: bytes) -> SipRequest:
    message = parse_message(data)
    assert isinstance(message, SipRequest)
    return message


def ack_for(invite: SipRequest, response: SipResponse) -> SipRequest:
    """The ACK of a non-2xx response: same branch, To with the response's tag (§17.1.1.3)."""
    return request(
        wire(f"""\
ACK {invite.uri} SIP/2.0
Via: {invite.headers.values("Via")[0]}
From: {invite.headers.get("From")}
To: {response.headers.get("To")}
Call-ID: {invite.call_id}
CSeq: {invite.cseq.number} ACK
Max-Forwards: 70
Content-Length: 0
""")
    )


def test_a_retransmitted_register_gets_the_same_response() -> None:
    clock = Clock()
    table = ServerTransactions(clock=clock)
    reg = request(REGISTER)
    assert table.receive(reg) == (Received.NEW, None)
    assert table.receive(request(REGISTER)) == (Received.RETRANSMISSION, None)  # not yet answered
    sent = table.respond(reg, response_to(reg, 200, to_tag="t"))
    assert table.receive(request(REGISTER)) == (Received.RETRANSMISSION, sent)
    late = table.respond(reg, response_to(reg, 500))  # a second final: sent, not recorded
    assert late.startswith(b"SIP/2.0 500 ")
    assert table.receive(request(REGISTER))[1] == sent  # the first final response stays
    clock.now += 64 * T1 - 0.1
    assert table.expire() == 0
    clock.now += 0.2  # Timer J
    assert table.expire() == 1 and len(table) == 0
    assert table.receive(request(REGISTER))[0] is Received.NEW


def test_provisional_then_final() -> None:
    table = ServerTransactions(clock=Clock())
    inv = request(INVITE)
    table.receive(inv)
    trying = table.respond(inv, response_to(inv, 100))
    assert table.receive(request(INVITE)) == (Received.RETRANSMISSION, trying)
    ok = table.respond(inv, response_to(inv, 200, to_tag="d"))
    assert table.receive(request(INVITE)) == (Received.RETRANSMISSION, ok)


def test_transactions_are_told_apart_by_branch_sent_by_and_method() -> None:
    table = ServerTransactions(clock=Clock())
    first, second = keepalive(), keepalive().replace(b"branch=z9hG4bK1000", b"branch=z9hG4bK1001")
    assert table.receive(request(first))[0] is Received.NEW
    assert table.receive(request(second))[0] is Received.NEW
    other_host = first.replace(b"192.168.1.64:5060", b"192.168.1.99:5060")
    assert table.receive(request(other_host))[0] is Received.NEW
    assert len(table) == 3
    a, b = request(first), request(other_host)
    assert server_key(a) != server_key(b)


def test_invite_error_is_retransmitted_until_its_ack_then_absorbed() -> None:
    clock = Clock()
    table = ServerTransactions(clock=clock)
    inv = request(INVITE)
    table.receive(inv)
    busy = response_to(inv, 486, to_tag="b")
    sent = table.respond(inv, busy)
    assert table.due() == []
    resent = []
    for _ in range(5):  # Timer G: T1, 2T1, 4T1, then capped at T2
        clock.now += 10
        resent += table.due()
    assert resent == [sent] * 5
    ack = ack_for(inv, busy)
    assert server_key(ack) == server_key(inv)
    assert table.receive(ack) == (Received.ACK_ABSORBED, None)
    assert table.receive(ack) == (Received.ACK_ABSORBED, None)  # its retransmission too
    clock.now += 10
    assert table.due() == []
    clock.now += 5.1  # Timer I = T4
    assert table.expire() == 1


def test_timer_g_doubles_up_to_t2() -> None:
    clock = Clock()
    table = ServerTransactions(clock=clock)
    inv = request(INVITE)
    table.receive(inv)
    table.respond(inv, response_to(inv, 404))
    times = []
    start = clock.now
    while clock.now - start < 20:
        clock.now += 0.25  # exact in binary
        if table.due():
            times.append(round(clock.now - start, 1))
    gaps = [round(b - a, 1) for a, b in zip([0.0, *times], times, strict=False)]
    assert gaps[:4] == [0.5, 1.0, 2.0, 4.0] and set(gaps[4:]) == {4.0}


def test_ack_of_a_2xx_belongs_to_the_dialog() -> None:
    table = ServerTransactions(clock=Clock())
    inv = request(INVITE)
    table.receive(inv)
    ok = response_to(inv, 200, to_tag="d")
    table.respond(inv, ok)
    ack = request(
        ack_for(inv, ok).to_bytes().replace(b"z9hG4bK3840938390", b"z9hG4bKnewbranch")
    )  # a 2xx's ACK is a new transaction
    assert table.receive(ack) == (Received.NEW, None)


def test_reliable_transport_ends_non_invite_at_once_and_never_resends() -> None:
    clock = Clock()
    table = ServerTransactions(clock=clock, reliable=True)
    msg = request(keepalive())
    table.receive(msg)
    table.respond(msg, response_to(msg, 200))
    assert table.expire() == 1
    inv = request(INVITE)
    table.receive(inv)
    table.respond(inv, response_to(inv, 486))
    clock.now += 30
    assert table.due() == []


def test_table_is_bounded_and_unanswered_transactions_expire() -> None:
    clock = Clock()
    table = ServerTransactions(clock=clock, max_size=3, unanswered=60)
    for i in range(5):
        table.receive(request(keepalive().replace(b"z9hG4bK1000", f"z9hG4bK{i}x".encode())))
    assert len(table) == 3 and table.evicted == 2
    clock.now += 61
    assert table.expire() == 3
    late = request(keepalive())
    assert table.respond(late, response_to(late, 200)).startswith(b"SIP/2.0 200 OK")


def test_rfc2543_requests_without_magic_cookie() -> None:
    old = REGISTER.replace(b"branch=z9hG4bK1371463273", b"branch=1371463273")
    table = ServerTransactions(clock=Clock())
    assert table.receive(request(old))[0] is Received.NEW
    assert table.receive(request(old))[0] is Received.RETRANSMISSION
    assert server_key(request(old))[0] == "rfc2543"
    next_cseq = old.replace(b"CSeq: 1 REGISTER", b"CSeq: 2 REGISTER")
    assert table.receive(request(next_cseq))[0] is Received.NEW


def test_client_key_matches_response_to_request() -> None:
    reg = request(REGISTER)
    assert client_key(response_to(reg, 401)) == client_key(reg) == ("z9hG4bK1371463273", "REGISTER")


@pytest.mark.parametrize(
    ("invite", "expected"),
    [
        (True, [0.5, 1, 2, 4, 8, 16]),  # Timer A doubles until Timer B (32 s)
        (False, [0.5, 1, 2, 4, 4, 4, 4, 4, 4, 4]),  # Timer E caps at T2 until Timer F
    ],
)
def test_client_retransmit_intervals(invite: bool, expected: list[float]) -> None:
    assert list(retransmit_intervals(invite=invite)) == expected
    assert sum(expected) < 64 * T1
    assert list(retransmit_intervals(invite=invite, reliable=True)) == []


def test_a_late_timer_call_resends_once_not_in_a_burst() -> None:
    clock = Clock()
    table = ServerTransactions(clock=clock)
    inv = request(INVITE)
    table.receive(inv)
    table.respond(inv, response_to(inv, 480))
    clock.now += 20  # the owner's timer was late
    assert len(table.due()) == 1
    assert table.due() == []
