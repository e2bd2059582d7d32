"""SIP as GB/T 28181 devices send it; TCP framing; responses; limits; a fuzz of the parser."""

from __future__ import annotations

import random

import pytest

from hub.gb28181.sip import (
    MAX_MESSAGE,
    Headers,
    NameAddr,
    SipParseError,
    SipRequest,
    SipResponse,
    SipStreamParser,
    SipUri,
    Via,
    new_branch,
    parse_message,
    response_to,
)
from tests.hub.gb28181.test_sip_torture import DBLREQ, INTMETH, INVALID, WSINV, wire

DEVICE = "34020000001320000001"
SERVER = "34020000002000000001"

REGISTER = wire(f"""\
REGISTER sip:{SERVER}@3402000000 SIP/2.0
Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1371463273
From: <sip:{DEVICE}@3402000000>;tag=2043466181
To: <sip:{DEVICE}@3402000000>
Call-ID: 1011047669
CSeq: 1 REGISTER
Contact: <sip:{DEVICE}@192.168.1.64:5060>
Max-Forwards: 70
User-Agent: IP Camera
Expires: 3600
Content-Length: 0
""")

KEEPALIVE_XML = (
    f'<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n'
    f"<SN>43</SN>\r\n<DeviceID>{DEVICE}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
).encode("gb2312")


def keepalive(content_type: str | None = "Application/MANSCDP+xml", vias: int = 1) -> bytes:
    via_lines = "".join(
        f"Via: SIP/2.0/UDP 192.168.1.{64 + i}:5060;rport;branch=z9hG4bK{1000 + i}\n"
        for i in range(vias)
    )
    ctype = f"Content-Type: {content_type}\n" if content_type else ""
    return wire(
        f"""\
MESSAGE sip:{SERVER}@3402000000 SIP/2.0
{via_lines}From: <sip:{DEVICE}@3402000000>;tag=1937151496
To: <sip:{SERVER}@3402000000>
Call-ID: 1648577154
CSeq: 20 MESSAGE
{ctype}Max-Forwards: 70
User-Agent: IP Camera
Content-Length: {{cl}}
""",
        KEEPALIVE_XML,
    )


INVITE_SDP = (
    b"v=0\r\no=34020000001320000001 0 0 IN IP4 192.168.1.10\r\ns=Play\r\n"
    b"c=IN IP4 192.168.1.10\r\nt=0 0\r\nm=video 30000 RTP/AVP 96 98 97\r\n"
    b"a=recvonly\r\na=rtpmap:96 PS/90000\r\na=rtpmap:98 H264/90000\r\na=rtpmap:97 MPEG4/90000\r\n"
    b"y=0200000001\r\nf=\r\n"
)

INVITE = wire(
    f"""\
INVITE sip:{DEVICE}@3402000000 SIP/2.0
Via: SIP/2.0/UDP 192.168.1.10:5060;rport;branch=z9hG4bK3840938390
From: <sip:{SERVER}@3402000000>;tag=464084922
To: <sip:{DEVICE}@3402000000>
Call-ID: 908003937
CSeq: 20 INVITE
Contact: <sip:{SERVER}@192.168.1.10:5060>
Content-Type: APPLICATION/SDP
Max-Forwards: 70
User-Agent: zzhub
Subject: {DEVICE}:0200000001,{SERVER}:0
Content-Length: {{cl}}
""",
    INVITE_SDP,
)

OK_WITHOUT_TO_TAG = wire(f"""\
SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.168.1.10:5060;rport=5060;branch=z9hG4bK3840938390;received=192.168.1.10
From: <sip:{SERVER}@3402000000>;tag=464084922
To: <sip:{DEVICE}@3402000000>
Call-ID: 908003937
CSeq: 20 MESSAGE
User-Agent: IP Camera
Content-Length: 0
""")


def request(data: bytes) -> SipRequest:
    message = parse_message(data)
    assert isinstance(message, SipRequest)
    return message


# --- GB/T 28181 messages ----------------------------------------------------------------


def test_gb_register() -> None:
    msg = request(REGISTER)
    assert msg.method == "REGISTER"
    assert msg.uri.user == SERVER and msg.uri.host == "3402000000"
    assert msg.from_.uri.user == DEVICE and msg.to.tag is None
    (via,) = msg.vias
    assert (via.host, via.port, via.branch) == ("192.168.1.64", 5060, "z9hG4bK1371463273")
    assert "rport" in via.params and via.rport is None
    assert msg.expires == 3600
    assert msg.contacts[0].uri.port == 5060


@pytest.mark.parametrize("ctype", ["Application/MANSCDP+xml", None])
def test_gb_keepalive_message_with_and_without_content_type(ctype: str | None) -> None:
    msg = request(keepalive(ctype))
    assert msg.method == "MESSAGE" and msg.body == KEEPALIVE_XML
    assert msg.content_type == (ctype.lower() if ctype else None)


def test_gb_invite_with_sdp() -> None:
    msg = request(INVITE)
    assert msg.content_type == "application/sdp"
    assert msg.body == INVITE_SDP and b"y=0200000001" in msg.body
    assert msg.headers.get("Subject") == f"{DEVICE}:0200000001,{SERVER}:0"


def test_gb_200_ok_without_to_tag() -> None:
    msg = parse_message(OK_WITHOUT_TO_TAG)
    assert isinstance(msg, SipResponse)
    assert (msg.status, msg.reason, msg.to.tag) == (200, "OK", None)
    assert msg.vias[0].rport == 5060 and msg.vias[0].received == "192.168.1.10"


def test_a_device_adding_one_more_via_per_message() -> None:
    """Some devices keep every Via they ever saw: each keepalive carries one more."""
    for count in range(1, 120, 7):
        msg = request(keepalive(vias=count))
        assert len(msg.vias) == count
        reply = response_to(msg, 200)
        assert reply.headers.values("Via") == msg.headers.values("Via")
    with pytest.raises(SipParseError):  # the header limit ends the growth
        parse_message(keepalive(vias=260))


def test_gb_header_bytes_in_gbk_are_decoded() -> None:
    data = REGISTER.replace(b"User-Agent: IP Camera", "User-Agent: 海康摄像机".encode("gbk"))
    assert request(data).headers.get("User-Agent") == "海康摄像机"


def test_bare_lf_line_ends_are_accepted() -> None:
    msg = request(REGISTER.replace(b"\r\n", b"\n"))
    assert msg.call_id == "1011047669"


# --- responses --------------------------------------------------------------------------


def test_response_copies_vias_in_order_from_to_call_id_cseq_and_adds_a_to_tag() -> None:
    data = wire(
        """\
MESSAGE sip:34020000002000000001@3402000000 SIP/2.0
Via: SIP/2.0/UDP a.example.com;branch=z9hG4bKa, SIP/2.0/TCP b.example.com;branch=z9hG4bKb
Via: SIP/2.0/UDP c.example.com;branch=z9hG4bKc
v: SIP/2.0/UDP d.example.com;branch=z9hG4bKd
f: <sip:34020000001320000001@3402000000>;tag=1
t: <sip:34020000002000000001@3402000000>
i: abc@host
CSeq: 7 MESSAGE
Max-Forwards: 70
Content-Length: 0
"""
    )
    req = request(data)
    reply = response_to(req, 200, to_tag="srv1")
    assert [v.branch for v in reply.vias] == [f"z9hG4bK{x}" for x in "abcd"]
    assert reply.headers.get("From") == "<sip:34020000001320000001@3402000000>;tag=1"
    assert reply.to.tag == "srv1" and reply.call_id == "abc@host"
    assert str(reply.cseq) == "7 MESSAGE" and reply.reason == "OK"
    again = parse_message(reply.to_bytes())
    assert isinstance(again, SipResponse)
    assert again.status == 200 and [v.branch for v in again.vias] == [v.branch for v in req.vias]
    assert again.headers.get("Content-Length") == "0" and again.body == b""


def test_response_keeps_an_existing_to_tag_and_a_100_gets_none() -> None:
    tagged = request(
        REGISTER.replace(
            f"To: <sip:{DEVICE}@3402000000>".encode(),
            f"To: <sip:{DEVICE}@3402000000>;tag=dialog".encode(),
        )
    )
    assert response_to(tagged, 200).to.tag == "dialog"
    plain = request(REGISTER.replace(b"Expires:", b"Timestamp: 54\r\nExpires:"))
    trying = response_to(plain, 100)
    assert trying.to.tag is None and trying.reason == "Trying"
    assert trying.headers.get("Timestamp") == "54"
    assert response_to(plain, 401).to.tag is not None
    assert response_to(plain, 200).headers.get("Timestamp") is None


def test_response_with_body() -> None:
    reply = response_to(request(INVITE), 200, body=INVITE_SDP, content_type="application/sdp")
    again = parse_message(reply.to_bytes())
    assert again.body == INVITE_SDP and again.content_type == "application/sdp"
    with pytest.raises(ValueError):
        response_to(request(INVITE), 42)


def test_request_serialises_and_parses_back() -> None:
    headers = Headers()
    headers.add("Via", f"SIP/2.0/UDP 10.0.0.1:5060;rport;branch={new_branch()}")
    headers.add("From", f"<sip:{SERVER}@3402000000>;tag=9")
    headers.add("To", f"<sip:{DEVICE}@3402000000>")
    headers.add("Call-ID", "q1")
    headers.add("CSeq", "1 MESSAGE")
    headers.add("Max-Forwards", "70")
    headers.add("Content-Type", "Application/MANSCDP+xml")
    req = SipRequest(
        headers, KEEPALIVE_XML, method="MESSAGE", uri=SipUri.parse(f"sip:{DEVICE}@3402000000")
    )
    again = request(req.to_bytes())
    assert again.body == KEEPALIVE_XML and again.vias[0].branch == req.vias[0].branch
    assert again.uri == req.uri


def test_stamp_received_for_a_device_behind_nat() -> None:
    req = request(REGISTER)
    req.stamp_received("203.0.113.7", 40123)
    top = req.vias[0]
    assert (top.received, top.rport) == ("203.0.113.7", 40123)
    assert response_to(req, 200).vias[0].rport == 40123
    assert next(iter(req.headers))[0] == "Via"  # stamped in place
    two = request(
        REGISTER.replace(
            b"branch=z9hG4bK1371463273",
            b"branch=z9hG4bK1371463273, SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKproxy",
        )
    )
    two.stamp_received("192.168.1.64", 5060)  # same host: rport only, received as RFC 3581 says
    assert [(v.host, v.received, v.rport) for v in two.vias] == [
        ("192.168.1.64", "192.168.1.64", 5060),
        ("10.0.0.9", None, None),
    ]


def test_structured_views() -> None:
    addr = NameAddr.parse('"Cam 1" <sip:34020000001320000001@3402000000;transport=TCP>;tag=x')
    assert addr.display == '"Cam 1"' and addr.uri.transport == "tcp"
    assert NameAddr.parse(str(addr)) == addr
    via = Via.parse("SIP/2.0/UDP [2001:db8::1]:5061;branch=z9hG4bKx;received=2001:db8::2")
    assert (via.host, via.port, via.received) == ("[2001:db8::1]", 5061, "2001:db8::2")
    assert Via.parse(str(via)) == via
    headers = Headers([("v", "SIP/2.0/UDP h;branch=z9hG4bK1")])
    headers.set("VIA", "SIP/2.0/TCP h;branch=z9hG4bK2")
    assert list(headers) == [("Via", "SIP/2.0/TCP h;branch=z9hG4bK2")] and "via" in headers
    assert new_branch().startswith("z9hG4bK")


# --- TCP framing ------------------------------------------------------------------------


def test_stream_yields_whole_messages_from_any_split() -> None:
    stream = INVITE + b"\r\n\r\n" + keepalive() + REGISTER  # with a CRLF keep-alive between
    parser = SipStreamParser()
    got: list[SipRequest | SipResponse] = []
    for byte in range(len(stream)):
        got += parser.feed(stream[byte : byte + 1])
    assert [m.cseq.method for m in got] == ["INVITE", "MESSAGE", "REGISTER"]
    assert got[0].body == INVITE_SDP and parser.pending == 0
    rng = random.Random(7)
    for _ in range(50):
        parser, got = SipStreamParser(), []
        cuts = sorted(rng.sample(range(1, len(stream)), 5))
        for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            got += parser.feed(stream[a:b])
        assert [m.cseq.method for m in got] == ["INVITE", "MESSAGE", "REGISTER"]


def test_stream_keeps_a_partial_message() -> None:
    parser = SipStreamParser()
    assert parser.feed(INVITE[:-10]) == []
    assert parser.pending == len(INVITE) - 10
    (msg,) = parser.feed(INVITE[-10:] + REGISTER[:5])
    assert msg.body == INVITE_SDP and parser.pending == 5


def test_stream_limits() -> None:
    with pytest.raises(SipParseError):
        SipStreamParser().feed(b"INVITE sip:a@b SIP/2.0\r\nX: " + b"y" * MAX_MESSAGE)
    with pytest.raises(SipParseError):
        SipStreamParser().feed(REGISTER.replace(b"Content-Length: 0", b"Content-Length: 70000"))
    with pytest.raises(SipParseError):
        SipStreamParser(max_size=200).feed(INVITE)


def test_datagram_limits() -> None:
    with pytest.raises(SipParseError):
        parse_message(INVITE + b"\x00" * MAX_MESSAGE)
    many = b"".join(b"X-%d: 1\r\n" % i for i in range(300))
    with pytest.raises(SipParseError):
        parse_message(REGISTER.replace(b"Expires:", many + b"Expires:"))
    with pytest.raises(SipParseError):
        parse_message(REGISTER.replace(b"Max-Forwards: 70", b"Max-Forwards: 7" + b"0" * 5000))
    with pytest.raises(SipParseError):
        parse_message(b"\xff\xfe\x80 sip:a@b SIP/2.0\r\n\r\n")


# --- fuzz -------------------------------------------------------------------------------

CORPUS = [
    WSINV,
    INTMETH,
    DBLREQ,
    REGISTER,
    keepalive(),
    INVITE,
    OK_WITHOUT_TO_TAG,
    *INVALID.values(),
]
JUNK = [b"\r\n", b"\n", b" ", b"\t", b":", b";", b",", b"<", b">", b'"', b"\\", b"%", b"=", b"@"]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    pick = rng.randrange(7)
    if pick == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    if pick == 1:
        return data[: rng.randrange(len(data) + 1)]
    buf = bytearray(data)
    for _ in range(rng.randrange(1, 8)):
        at = rng.randrange(len(buf) + 1)
        if pick == 2:
            buf[at:at] = rng.choice(JUNK)
        elif pick == 3 and at < len(buf):
            buf[at] = rng.randrange(256)
        elif pick == 4:
            del buf[at : at + rng.randrange(1, 20)]
        elif pick == 5:
            lines = bytes(buf).split(b"\r\n")
            i = rng.randrange(len(lines))
            name, _, value = lines[i].partition(b":")
            lines[i] = name + b":" + bytes(rng.choice(JUNK)[0] for _ in range(len(value)))
            buf = bytearray(b"\r\n".join(lines))
        else:
            lines = bytes(buf).split(b"\r\n")
            rng.shuffle(lines)
            buf = bytearray(b"\r\n".join(lines))
    return bytes(buf)


def test_fuzz_only_sip_parse_error_escapes() -> None:
    rng = random.Random(28181)
    parsed = 0
    for _ in range(6000):
        data = _mutate(rng, rng.choice(CORPUS))
        try:
            message = parse_message(data)
        except SipParseError:
            continue
        parsed += 1
        # whatever parses must serialise and its views must not blow up
        parse_message(message.to_bytes())
        _ = (message.vias, message.from_, message.to, message.cseq, message.contacts)
        if isinstance(message, SipRequest):
            _ = response_to(message, 200).to_bytes()
    assert parsed > 100  # the fuzz also reaches the structured views


def test_fuzz_stream_only_sip_parse_error_escapes() -> None:
    rng = random.Random(5060)
    for _ in range(1500):
        data = _mutate(rng, b"".join(rng.choice(CORPUS) for _ in range(3)))
        parser = SipStreamParser()
        try:
            at = 0
            while at < len(data):
                step = rng.randrange(1, 400)
                parser.feed(data[at : at + step])
                at += step
        except SipParseError:
            continue


def test_stream_trickle_of_a_large_message() -> None:
    """A 60 KB message fed one byte per read (each read is scanned once, not the buffer)."""
    big = REGISTER.replace(b"User-Agent: IP Camera", b"User-Agent: " + b"y" * 60000)
    parser = SipStreamParser()
    got = [m for i in range(len(big)) for m in parser.feed(big[i : i + 1])]
    assert len(got) == 1 and got[0].headers.get("User-Agent") == "y" * 60000
    assert parser.pending == 0
    assert [m.call_id for m in parser.feed(b"\r\n" + REGISTER + b"\r\n\r\n")] == ["1011047669"]
