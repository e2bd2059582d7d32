"""H.265 depacketizer with crafted RTP payloads (RFC 7798), and the H.265 SPS parser."""

from __future__ import annotations

import base64
import struct

import pytest

from streams import bitstream
from streams.bitstream import hevc_is_irap, hevc_nal_type, hevc_sps_dimensions
from streams.rtp_h265 import AP, FU, H265Depacketizer


def nal(kind: int, body: bytes) -> bytes:
    return bytes([kind << 1, 1]) + body


VPS = nal(32, b"\x0c\x01\xff\xff")
SPS = base64.b64decode("QgEBAWAAAAMAkAAAAwAAAwBdoAKAgC0WWVlSkwuaAgAAAwACAAADADIQ")  # x265 720p
PPS = nal(34, b"\xc1\x72\xb4")
IDR = nal(19, bytes(range(1, 250)))  # IDR_W_RADL
CRA = nal(21, bytes(range(1, 50)))
TRAIL = nal(1, bytes(range(100, 160)))


class Collector:
    def __init__(self) -> None:
        self.units: list[tuple[bytes, int, bool]] = []

    def __call__(self, data: bytes, timestamp: int, keyframe: bool, arrival: float) -> None:
        self.units.append((data, timestamp, keyframe))


def aggregate(*units: bytes) -> bytes:
    return bytes([AP << 1, 1]) + b"".join(struct.pack("!H", len(u)) + u for u in units)


def fragments(unit: bytes, size: int) -> list[bytes]:
    kind, body = hevc_nal_type(unit), unit[2:]
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    out = []
    for index, chunk in enumerate(chunks):
        fu = kind | (0x80 if index == 0 else 0) | (0x40 if index == len(chunks) - 1 else 0)
        out.append(bytes([(unit[0] & 0x81) | (FU << 1), unit[1], fu]) + chunk)
    return out


def run(
    packets: list[tuple[bytes, int, bool]], start_seq: int = 10
) -> tuple[H265Depacketizer, Collector]:
    out = Collector()
    depay = H265Depacketizer(out)
    for offset, (payload, ts, marker) in enumerate(packets):
        depay.feed((start_seq + offset) & 0xFFFF, ts, marker, memoryview(payload), 0.0)
    return depay, out


def test_aggregation_and_fragments() -> None:
    frags = fragments(IDR, 60)
    packets = [(aggregate(VPS, SPS, PPS), 90, False)]
    packets += [(f, 90, i == len(frags) - 1) for i, f in enumerate(frags)]
    packets.append((TRAIL, 3690, True))
    depay, out = run(packets, start_seq=0xFFFD)  # the sequence number wraps inside the IDR
    assert out.units == [
        (bitstream.join_annexb([VPS, SPS, PPS, IDR]), 90, True),
        (bitstream.START_CODE + TRAIL, 3690, False),
    ]
    assert depay.lost == 0


def test_cra_is_a_keyframe() -> None:
    _, out = run([(CRA, 0, True), (TRAIL, 3600, True)])
    assert [u[2] for u in out.units] == [True, False]
    assert (
        all(hevc_is_irap(k) for k in range(16, 22)) and not hevc_is_irap(1) and not hevc_is_irap(22)
    )


def test_trailing_pictures_before_a_keyframe_are_dropped() -> None:
    depay, out = run([(TRAIL, 0, True), (IDR, 3600, True)])
    assert [u[1] for u in out.units] == [3600] and depay.dropped == 1


def test_lost_fragment_drops_until_keyframe() -> None:
    frags = fragments(TRAIL, 20)
    out = Collector()
    depay = H265Depacketizer(out)
    depay.feed(1, 0, True, memoryview(IDR), 0.0)
    depay.feed(2, 3600, False, memoryview(frags[0]), 0.0)
    depay.feed(4, 3600, True, memoryview(frags[2]), 0.0)  # frags[1] lost
    depay.feed(5, 7200, True, memoryview(TRAIL), 0.0)
    depay.feed(6, 10800, True, memoryview(IDR), 0.0)
    assert [u[1] for u in out.units] == [0, 10800]
    assert depay.lost == 1 and depay.dropped == 2


def test_paci_breaks_the_picture() -> None:
    _, out = run([(bytes([50 << 1, 1, 0, 0]), 0, False), (IDR, 0, True)])
    assert out.units == []


@pytest.mark.parametrize(
    ("sprop", "size"),
    [
        ("QgEBAWAAAAMAkAAAAwAAAwB4oAPAgBEHy5ZWVKTC5oCAAAADAIAAAAyE", (1920, 1080)),
        ("QgEBAWAAAAMAkAAAAwAAAwBdoAKAgC0WWVlSkwuaAgAAAwACAAADADIQ", (1280, 720)),
        # 350x202: coded 352x208, conformance window crops it
        ("QgEBAWAAAAMAkAAAAwAAAwA8oAsIDR1JllZUpMLmgIAAAAMAgAAADIQ=", (350, 202)),
    ],
)
def test_hevc_sps_dimensions(sprop: str, size: tuple[int, int]) -> None:
    assert hevc_sps_dimensions(base64.b64decode(sprop)) == size


def test_hevc_sps_truncated() -> None:
    with pytest.raises(ValueError):
        hevc_sps_dimensions(SPS[:10])
