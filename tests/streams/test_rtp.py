"""RTP header parsing, the UDP reorder buffer, reception statistics and receiver reports."""

from __future__ import annotations

import struct

from streams.rtp import ReceptionStats, ReorderBuffer, RtpPacket, parse_rtp


def rtp(
    seq: int,
    ts: int = 1000,
    payload: bytes = b"\x65abc",
    *,
    marker: bool = False,
    pt: int = 96,
    csrcs: int = 0,
    extension: bytes | None = None,
    padding: int = 0,
) -> bytes:
    first = 0x80 | csrcs | (0x10 if extension is not None else 0) | (0x20 if padding else 0)
    head = struct.pack("!BBHII", first, pt | (0x80 if marker else 0), seq, ts, 0x11223344)
    head += b"".join(struct.pack("!I", 0xC0 + i) for i in range(csrcs))
    if extension is not None:
        head += struct.pack("!HH", 0xBEDE, len(extension) // 4) + extension
    tail = bytes(padding - 1) + bytes([padding]) if padding else b""
    return head + payload + tail


def test_parse_plain() -> None:
    packet = parse_rtp(memoryview(rtp(7, 123456, marker=True)))
    assert packet is not None
    assert (packet.payload_type, packet.marker, packet.seq, packet.timestamp, packet.ssrc) == (
        96,
        True,
        7,
        123456,
        0x11223344,
    )
    assert bytes(packet.payload) == b"\x65abc"


def test_parse_csrc_extension_padding() -> None:
    data = rtp(1, csrcs=2, extension=b"\x10\xaa\x00\x00" * 2, padding=4, payload=b"\x41xyz")
    packet = parse_rtp(memoryview(data))
    assert packet is not None and bytes(packet.payload) == b"\x41xyz"


def test_parse_rejects_garbage() -> None:
    assert parse_rtp(memoryview(b"\x80\x60")) is None
    assert parse_rtp(memoryview(b"\x40" + bytes(20))) is None  # version 1
    assert parse_rtp(memoryview(rtp(1, payload=b""))) is None  # no payload
    truncated_ext = rtp(1, extension=b"\x00" * 8)[:14]
    assert parse_rtp(memoryview(truncated_ext)) is None
    too_much_padding = bytearray(rtp(1, payload=b"ab"))
    too_much_padding[0] |= 0x20
    too_much_padding[-1] = 200
    assert parse_rtp(memoryview(bytes(too_much_padding))) is None


def packet(seq: int) -> RtpPacket:
    parsed = parse_rtp(memoryview(rtp(seq)))
    assert parsed is not None
    return parsed


def seqs(packets: list[RtpPacket]) -> list[int]:
    return [p.seq for p in packets]


def test_reorder_in_order_and_swapped() -> None:
    buffer = ReorderBuffer(depth=4)
    assert seqs(buffer.push(packet(10))) == [10]
    assert seqs(buffer.push(packet(12))) == []
    assert seqs(buffer.push(packet(11))) == [11, 12]
    assert seqs(buffer.push(packet(11))) == [] and buffer.late == 1  # duplicate


def test_reorder_gives_up_on_a_lost_packet() -> None:
    buffer = ReorderBuffer(depth=3)
    buffer.push(packet(65534))
    out: list[int] = []
    for seq in (0, 1, 2, 3):  # 65535 never comes
        out += seqs(buffer.push(packet(seq)))
    assert out == [0, 1, 2, 3]
    assert seqs(buffer.push(packet(65535))) == [] and buffer.late == 1


def test_reorder_resyncs_after_a_sequence_reset() -> None:
    buffer = ReorderBuffer()
    buffer.push(packet(30000))
    assert seqs(buffer.push(packet(5))) == [5]
    assert seqs(buffer.push(packet(6))) == [6]


def test_stats_and_receiver_report() -> None:
    stats = ReceptionStats()
    for seq in [65530, 65531, 65533, 65534, 65535, 0, 1, 2]:  # 65532 lost, wraps
        stats.update(seq, 0xABCD)
    stats.update(65531, 0xABCD)  # late duplicate: does not move the maximum
    assert stats.expected == 9 and stats.received == 9 and stats.lost == 0
    stats.update(4, 0xABCD)  # 3 lost
    assert stats.expected == 11 and stats.lost == 1
    sr = struct.pack("!BBHI", 0x80, 200, 6, 0xABCD) + bytes.fromhex("0102030405060708") + bytes(12)
    stats.on_rtcp(sr, now=10.0)
    report = stats.receiver_report(own_ssrc=0x55, now=10.5)
    assert len(report) == 32
    fields = struct.unpack("!BBHIIIIIII", report)
    assert fields[:5] == (0x81, 201, 7, 0x55, 0xABCD)
    assert fields[5] & 0xFFFFFF == 1  # cumulative lost
    assert fields[6] == 0x10000 + 4  # extended highest sequence number
    assert fields[8] == 0x03040506  # LSR: the middle of the SR's NTP time
    assert fields[9] == 0x8000  # DLSR: 0.5 s in 1/65536 s
