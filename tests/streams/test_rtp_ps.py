"""PS over RTP: packetizer → receiver round trips (marker-driven, marker-less, with loss), and
the RFC 4571 and `$`-interleaved TCP readers, on split reads and over a loopback socket."""

from __future__ import annotations

import asyncio
import random

import pytest

from streams.media import Codec
from streams.mpegps import AccessUnit, PsDemuxer
from streams.rtp import parse_rtp
from streams.rtp_ps import (
    PsRtpReceiver,
    PsRtpSender,
    TcpRtpReader,
    frame_interleaved,
    frame_rfc4571,
    ps_to_rtp,
)
from tests.fixtures.media_files import decode
from tests.streams.ps_media import STEP, clip, mux_packs, random_chunks, summary


def rtp_frames(
    codec: Codec = Codec.H264, marker: bool = True, mtu: int = 1400
) -> list[list[bytes]]:
    """The clip as RTP packets, one list per frame, as a GB/T 28181 camera sends it."""
    material = clip(codec)
    packs = mux_packs(material)
    frames, seq = [], 65500  # the sequence number wraps on the way
    for pack, (_, pts, _) in zip(packs, material.units, strict=True):
        packets = ps_to_rtp(pack, seq, pts, 0x1234, mtu=mtu, marker=marker)
        seq = (seq + len(packets)) & 0xFFFF
        frames.append(packets)
    return frames


def test_packetizer_headers_sizes_and_marker() -> None:
    ps = bytes(range(256)) * 20
    packets = ps_to_rtp(ps, 65534, 2**32 + 7, 0xABCDEF01, pt=96, mtu=1000)
    assert len(packets) == -(-len(ps) // 988) and all(len(p) <= 1000 for p in packets)
    parsed = [parse_rtp(memoryview(p)) for p in packets]
    assert all(p is not None for p in parsed)
    assert [p.seq for p in parsed if p] == [65534, 65535, 0, 1, 2, 3]
    assert [p.marker for p in parsed if p] == [False] * 5 + [True]
    assert {(p.payload_type, p.timestamp, p.ssrc) for p in parsed if p} == {(96, 7, 0xABCDEF01)}
    assert b"".join(bytes(p.payload) for p in parsed if p) == ps
    assert [p[1] & 0x80 for p in ps_to_rtp(ps, 0, 0, 1, marker=False)] == [0] * 4
    with pytest.raises(ValueError):
        ps_to_rtp(ps, 0, 0, 1, mtu=12)


def test_sender_keeps_the_sequence_number() -> None:
    sender = PsRtpSender(ssrc=5, seq=65535)
    first = sender.packetize(b"\x00" * 3000, 0)
    second = sender.packetize(b"\x00" * 10, 3600)
    seqs = [parse_rtp(memoryview(p)).seq for p in first + second]  # type: ignore[union-attr]
    assert seqs == [65535, 0, 1, 2] and sender.packets == 4


@pytest.mark.parametrize("codec", [Codec.H264, Codec.HEVC])
def test_each_frame_is_handed_on_with_its_last_rtp_packet(codec: Codec) -> None:
    material = clip(codec)
    receiver = PsRtpReceiver(payload_type=96)
    for packets, unit in zip(rtp_frames(codec), material.units, strict=True):
        for packet in packets[:-1]:
            assert receiver.feed_datagram(packet) == []
        assert summary(receiver.feed_datagram(packets[-1])) == [unit]  # on the marker, at once
    assert receiver.lost == 0 and receiver.demuxer.errors == 0


def test_a_camera_that_never_sets_the_marker() -> None:
    """The frame is complete when the next one's pack header arrives, in its first packet."""
    material = clip(Codec.H264)
    receiver = PsRtpReceiver()
    got: list[AccessUnit] = []
    for index, packets in enumerate(rtp_frames(marker=False)):
        first = receiver.feed_datagram(packets[0])
        if index:
            assert summary(first) == [material.units[index - 1]]
        for packet in packets[1:]:
            assert receiver.feed_datagram(packet) == []
        got += first
    got += receiver.demuxer.flush()
    assert summary(got) == list(material.units)


def test_small_mtu_and_one_byte_payloads() -> None:
    material = clip(Codec.H264)
    receiver = PsRtpReceiver()
    got: list[AccessUnit] = []
    for packets in rtp_frames(mtu=13):
        for packet in packets:
            got += receiver.feed_datagram(packet)
    assert summary(got) == list(material.units)


@pytest.mark.parametrize("marker", [True, False])
def test_a_lost_rtp_packet_drops_its_frame_and_the_stream_recovers(marker: bool) -> None:
    material = clip(Codec.H264)
    frames = rtp_frames(marker=marker, mtu=500)
    assert all(len(packets) >= 2 for packets in frames)
    receiver = PsRtpReceiver(PsDemuxer(wait_keyframe=False))
    got: list[AccessUnit] = []
    for index, packets in enumerate(frames):
        for number, packet in enumerate(packets):
            if index == 13 and number == 1:
                continue  # lost
            got += receiver.feed_datagram(packet)
    got += receiver.demuxer.flush()
    assert receiver.lost == 1 and receiver.demuxer.resyncs == 1
    assert summary(got) == list(material.units[:13] + material.units[14:])
    # waiting for a keyframe (the default) gives only pictures that decode cleanly
    receiver = PsRtpReceiver()
    got = []
    for index, packets in enumerate(frames):
        for number, packet in enumerate(packets):
            if (index, number) != (13, 1):
                got += receiver.feed_datagram(packet)
    got += receiver.demuxer.flush()
    assert summary(got) == list(material.units[:13] + material.units[20:])
    assert len(decode(Codec.H264, (u.packet() for u in got))) == len(got)


def test_reordered_duplicate_and_foreign_packets() -> None:
    frames = rtp_frames()
    receiver = PsRtpReceiver(payload_type=96)
    first = frames[0]
    assert receiver.feed_datagram(first[0]) == []
    assert receiver.feed_datagram(first[0]) == []  # duplicate: late, ignored
    assert receiver.feed_datagram(b"\x00" * 20) == []  # not RTP
    other = bytearray(first[1])
    other[1] = 0x08  # PCMA on the same port
    assert receiver.feed_datagram(bytes(other)) == []
    assert receiver.invalid == 2 and receiver.lost == 0
    for packet in first[1:]:
        out = receiver.feed_datagram(packet)
    assert len(out) == 1 and out[0].keyframe


# RTP over TCP


def tcp_stream(framing: str, packets: list[bytes]) -> bytes:
    if framing == "rfc4571":
        return b"".join(frame_rfc4571(p) for p in packets)
    rtcp = b"\x81\xc9\x00\x01\x00\x00\x00\x01"
    return b"".join(frame_interleaved(0, p) + frame_interleaved(1, rtcp) for p in packets)


@pytest.mark.parametrize("framing", ["rfc4571", "interleaved"])
@pytest.mark.parametrize("chunks", [[1], [2, 3], random_chunks(11, 5000)])
def test_tcp_readers_with_split_reads(framing: str, chunks: list[int]) -> None:
    packets = [p for frame in rtp_frames() for p in frame]
    stream = tcp_stream(framing, packets)
    reader = TcpRtpReader("auto")
    out: list[tuple[int, bytes]] = []
    pos, index = 0, 0
    while pos < len(stream):
        size = chunks[index % len(chunks)]
        out += reader.feed(stream[pos : pos + size])
        pos, index = pos + size, index + 1
    assert reader.framing == framing
    assert [p for channel, p in out if channel == 0] == packets
    assert reader.errors == reader.skipped == 0
    if framing == "interleaved":
        assert len([c for c, _ in out if c == 1]) == len(packets)


@pytest.mark.parametrize("framing", ["rfc4571", "interleaved"])
def test_tcp_readers_skip_garbage_between_frames(framing: str) -> None:
    packets = [p for frame in rtp_frames() for p in frame]
    rng = random.Random(12)
    parts = []
    spoiled = set()
    for index, packet in enumerate(packets):
        framed = tcp_stream(framing, [packet])
        if index % 17 == 5:  # garbage (no '$', not an RTP length) before this frame
            parts.append(bytes(rng.choice(b"\x00\x01\x02\x03\x04\x05") for _ in range(7)))
            spoiled.add(index)
        parts.append(framed)
    reader = TcpRtpReader(framing)
    out = [p for channel, p in reader.feed(b"".join(parts)) if channel == 0]
    assert reader.errors >= 1 and reader.skipped >= 7
    kept = [p for i, p in enumerate(packets) if i not in spoiled]
    assert set(kept) <= set(out) and len(out) >= len(packets) - len(spoiled)


def test_tcp_reader_rejects_an_unknown_framing_and_oversized_packets() -> None:
    with pytest.raises(ValueError):
        TcpRtpReader("udp")
    with pytest.raises(ValueError):
        frame_rfc4571(b"\x80" * 70_000)
    with pytest.raises(ValueError):
        frame_interleaved(0, b"\x80" * 70_000)


async def test_ps_over_rfc4571_on_a_loopback_socket() -> None:
    """A camera in GB/T 28181 TCP-active mode: it connects and streams RFC 4571 frames."""
    material = clip(Codec.HEVC)
    frames = rtp_frames(Codec.HEVC)
    got: list[AccessUnit] = []
    done = asyncio.Event()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tcp, receiver = TcpRtpReader(), PsRtpReceiver(payload_type=96)
        while data := await reader.read(997):
            for _, packet in tcp.feed(data):
                got.extend(receiver.feed_datagram(packet))
        writer.close()
        await writer.wait_closed()
        done.set()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        for packets in frames:
            writer.write(b"".join(frame_rfc4571(p) for p in packets))
            await writer.drain()
        writer.close()
        await writer.wait_closed()
        async with asyncio.timeout(10):
            await done.wait()
    assert summary(got) == list(material.units)
    assert [u.pts for u in got] == [i * STEP for i in range(len(got))]


@pytest.mark.parametrize("seed", range(6))
def test_random_rtp_loss_hands_on_only_intact_pictures(seed: int) -> None:
    material = clip(Codec.H264)
    rng = random.Random(seed)
    receiver = PsRtpReceiver(PsDemuxer(wait_keyframe=False))
    got: list[AccessUnit] = []
    sent = 0
    for packets in rtp_frames(marker=bool(seed % 2), mtu=400):
        for packet in packets:
            sent += 1
            if rng.random() > 0.04:
                got += receiver.feed_datagram(packet)
    got += receiver.demuxer.flush()
    originals = set(material.units)
    assert all(unit in originals for unit in summary(got))
    assert receiver.lost > 0 and len(got) >= 5
    assert receiver.packets + receiver.lost >= sent - 1  # (a loss at the very end is unseen)
