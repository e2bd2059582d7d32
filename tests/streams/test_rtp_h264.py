"""H.264 depacketizer with crafted RTP payloads (RFC 6184), and the SPS parser."""

from __future__ import annotations

import base64
import struct

import pytest

from streams import bitstream
from streams.rtp_h264 import FU_A, STAP_A, H264Depacketizer

# SPS written by libx264: constrained baseline 640x480 25 fps
SPS = base64.b64decode("Z0LAHtoCgPaEAAADAAQAAAMAyDxYuoA=")
PPS = bytes.fromhex("68ce3c80")
IDR = bytes([0x65]) + bytes(range(1, 200))
SLICE = bytes([0x41]) + bytes(range(200, 255))


class Collector:
    def __init__(self) -> None:
        self.units: list[tuple[bytes, int, bool, float]] = []

    def __call__(self, data: bytes, timestamp: int, keyframe: bool, arrival: float) -> None:
        self.units.append((data, timestamp, keyframe, arrival))


@pytest.fixture
def out() -> Collector:
    return Collector()


def stap_a(*nals: bytes) -> bytes:
    return bytes([(nals[0][0] & 0x60) | STAP_A]) + b"".join(
        struct.pack("!H", len(n)) + n for n in nals
    )


def fu_a(nal: bytes, size: int) -> list[bytes]:
    """Split a NAL unit into FU-A payloads of at most `size` bytes of data."""
    header, body = nal[0], nal[1:]
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    payloads = []
    for index, chunk in enumerate(chunks):
        fu = header & 0x1F
        if index == 0:
            fu |= 0x80
        if index == len(chunks) - 1:
            fu |= 0x40
        payloads.append(bytes([(header & 0xE0) | FU_A, fu]) + chunk)
    return payloads


class Feeder:
    """Feeds payloads with consecutive sequence numbers (skipping on request)."""

    def __init__(self, depay: H264Depacketizer, seq: int = 100) -> None:
        self.depay = depay
        self.seq = seq

    def __call__(self, payload: bytes, ts: int, marker: bool = False, skip: int = 0) -> None:
        self.seq = (self.seq + skip) & 0xFFFF
        self.depay.feed(self.seq, ts, marker, memoryview(payload), 1.5)
        self.seq = (self.seq + 1) & 0xFFFF


def test_stap_a_then_fu_a_make_one_keyframe(out: Collector) -> None:
    depay = H264Depacketizer(out)
    feed = Feeder(depay)
    feed(stap_a(SPS, PPS), 1000)
    fragments = fu_a(IDR, 50)
    assert len(fragments) == 4
    for index, payload in enumerate(fragments):
        feed(payload, 1000, marker=index == len(fragments) - 1)
    assert out.units == [(bitstream.join_annexb([SPS, PPS, IDR]), 1000, True, 1.5)]
    feed(SLICE, 4600, marker=True)
    assert out.units[1] == (bitstream.START_CODE + SLICE, 4600, False, 1.5)
    assert depay.pictures == 2 and depay.lost == 0 and depay.dropped == 0


def test_waits_for_the_first_keyframe(out: Collector) -> None:
    feed = Feeder(H264Depacketizer(out))
    feed(SLICE, 0, marker=True)
    feed(SLICE, 3600, marker=True)
    assert out.units == []
    feed(IDR, 7200, marker=True)
    feed(SLICE, 10800, marker=True)
    assert [u[2] for u in out.units] == [True, False]


def test_timestamp_change_closes_without_marker(out: Collector) -> None:
    feed = Feeder(H264Depacketizer(out))
    feed(IDR, 0)  # the camera never sets the marker bit
    feed(SLICE, 3600)
    assert [(u[1], u[2]) for u in out.units] == [(0, True)]
    feed(SLICE, 7200)
    assert [u[1] for u in out.units] == [0, 3600]


def test_several_slices_per_picture(out: Collector) -> None:
    feed = Feeder(H264Depacketizer(out))
    feed(IDR, 0)
    feed(IDR, 0, marker=True)
    assert out.units[0][0] == bitstream.join_annexb([IDR, IDR])


def test_lost_fragment_drops_picture_until_next_keyframe(out: Collector) -> None:
    depay = H264Depacketizer(out)
    feed = Feeder(depay)
    feed(IDR, 0, marker=True)
    big_slice = bytes([0x41]) + bytes(350)
    fragments = fu_a(big_slice, 100)
    feed(fragments[0], 3600)
    feed(fragments[2], 3600, skip=1)  # fragments[1] lost
    feed(fragments[3], 3600, marker=True)
    feed(SLICE, 7200, marker=True)  # refers to the broken picture: dropped too
    assert len(out.units) == 1
    assert depay.lost == 1 and depay.dropped == 2
    feed(stap_a(SPS, PPS, IDR), 10800, marker=True)
    feed(SLICE, 14400, marker=True)
    assert [(u[1], u[2]) for u in out.units] == [(0, True), (10800, True), (14400, False)]


def test_lost_marker_packet_breaks_both_pictures(out: Collector) -> None:
    depay = H264Depacketizer(out)
    feed = Feeder(depay)
    feed(IDR, 0, marker=True)
    feed(SLICE, 3600)
    feed(SLICE, 7200, marker=True, skip=1)  # the gap may be either picture's
    assert len(out.units) == 1 and depay.dropped == 2


def test_fragment_without_start_is_dropped(out: Collector) -> None:
    depay = H264Depacketizer(out)
    fragments = fu_a(IDR, 50)
    feed = Feeder(depay)
    for payload in fragments[1:]:  # joined in the middle of a picture
        feed(payload, 0, marker=payload is fragments[-1])
    assert out.units == [] and depay.dropped == 1
    for index, payload in enumerate(fragments):
        feed(payload, 3600, marker=index == len(fragments) - 1)
    assert out.units == [(bitstream.START_CODE + IDR, 3600, True, 1.5)]


def test_sequence_number_wrap_is_not_a_loss(out: Collector) -> None:
    depay = H264Depacketizer(out)
    feed = Feeder(depay, seq=0xFFFE)
    feed(IDR, 0xFFFFFF00)
    feed(IDR, 0xFFFFFF00)
    feed(IDR, 0xFFFFFF00, marker=True)
    feed(SLICE, 0x00000E10, marker=True)  # the RTP timestamp wrapped as well
    assert depay.lost == 0 and len(out.units) == 2
    assert out.units[1][1] == 0xE10


def test_truncated_stap_a_breaks_picture(out: Collector) -> None:
    depay = H264Depacketizer(out)
    feed = Feeder(depay)
    feed(stap_a(SPS, PPS)[:-2], 0)
    feed(IDR, 0, marker=True)
    assert out.units == [] and depay.dropped == 1


def test_unsupported_packetization_breaks_picture(out: Collector) -> None:
    depay = H264Depacketizer(out)
    feed = Feeder(depay)
    feed(bytes([26, 0, 0, 0]), 0)  # MTAP16
    feed(IDR, 0, marker=True)
    assert out.units == []


def test_output_does_not_alias_input(out: Collector) -> None:
    feed = Feeder(H264Depacketizer(out))
    payload = bytearray(IDR)
    H264Depacketizer.feed(feed.depay, 1, 0, False, memoryview(payload), 0.0)
    H264Depacketizer.feed(feed.depay, 2, 0, True, memoryview(bytes(SLICE)), 0.0)
    payload[1] = 0xEE
    assert isinstance(out.units[0][0], bytes)
    assert out.units[0][0] == bitstream.join_annexb([IDR, SLICE])


# SPS parsing


def test_sps_dimensions_baseline() -> None:
    assert bitstream.sps_dimensions(SPS) == (640, 480)


@pytest.mark.parametrize(
    ("sprop", "size", "fps"),
    [
        # libx264 High 1920x1080 (1088 coded, cropped by 8), VUI timing 50/(2*1) -> 25 fps
        ("Z2QAKKzZQHgCJ+WEAAADAAQAAAMAyDxgxlg=", (1920, 1080), 25.0),
        ("Z0LAH9oBQBboQAAAAwBAAAAPA8YMqA==", (1280, 720), 30.0),
        ("Z0LAHtoCwEmhAAADAAEAAAMAMg8WLqA=", (704, 576), 25.0),
        # High 4:4:4 Predictive with odd cropping (crop units of 1 pixel)
        ("Z/QADJGWgWG+54QAAAMABAAAAwB4PFCqgA==", (350, 202), 15.0),
    ],
)
def test_sps_dimensions_and_fps(sprop: str, size: tuple[int, int], fps: float) -> None:
    sps = base64.b64decode(sprop)
    assert bitstream.sps_dimensions(sps) == size
    assert bitstream.sps_fps(sps) == fps


def test_sps_truncated_raises() -> None:
    with pytest.raises(ValueError):
        bitstream.sps_dimensions(SPS[:5])
    assert bitstream.sps_fps(SPS[:5]) == 0.0


def test_unescape_rbsp() -> None:
    assert bitstream.unescape_rbsp(b"\x00\x00\x03\x01\x00\x00\x03") == b"\x00\x00\x01\x00\x00"
