"""PsDemuxer and PsMuxer: round trips with real H.264/H.265, FFmpeg and PyAV reading what we
write, our demuxer reading what FFmpeg writes, chunking, loss, garbage."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import av
import pytest

from streams.media import Codec, Packet
from streams.mpegps import (
    MAX_PES_LENGTH,
    TS_MASK,
    PsDemuxer,
    PsMuxer,
    StreamType,
    crc32_mpeg2,
    guess_codec,
    pack_header,
    read_timestamp,
    write_timestamp,
)
from tests.fixtures.media_files import decode
from tests.streams.ps_media import (
    STEP,
    clip,
    demux_all,
    fake_picture,
    mux_packs,
    random_chunks,
    summary,
)

FFMPEG = "/usr/bin/ffmpeg"
CODECS = [Codec.H264, Codec.HEVC]


def pes_packets(stream: bytes) -> list[tuple[int, int, int]]:
    """(offset, stream id, PES_packet_length) of every PES-like packet, walking the headers."""
    found = []
    pos = 0
    while pos < len(stream):
        assert stream.startswith(b"\x00\x00\x01", pos), pos
        sid = stream[pos + 3]
        if sid == 0xBA:
            pos += 14 + (stream[pos + 13] & 7)
            continue
        length = int.from_bytes(stream[pos + 4 : pos + 6], "big")
        found.append((pos, sid, length))
        pos += 6 + length
    return found


# the muxer's output


def test_crc32_mpeg2_check_value() -> None:
    assert crc32_mpeg2(b"123456789") == 0x0376E6E7


def test_timestamps_round_trip_33_bits() -> None:
    for ts in (0, 1, 3600, 2**32 + 5, TS_MASK):
        assert read_timestamp(write_timestamp(2, ts), 0) == ts
    assert read_timestamp(write_timestamp(2, TS_MASK + 7), 0) == 6


def test_pack_header_layout() -> None:
    head = pack_header(0x1_2345_6789, 6106, stuffing=3)
    assert head[:4] == b"\x00\x00\x01\xba" and len(head) == 17
    assert head[4] >> 6 == 1 and head[13] & 7 == 3 and head[14:] == b"\xff" * 3
    scr = (
        ((head[4] >> 3) & 7) << 30
        | (head[4] & 3) << 28
        | head[5] << 20
        | (head[6] >> 3) << 15
        | (head[6] & 3) << 13
        | head[7] << 5
        | head[8] >> 3
    )
    assert scr == 0x1_2345_6789
    assert (head[10] << 14 | head[11] << 6 | head[12] >> 2) == 6106


@pytest.mark.parametrize(
    ("codec", "audio", "types"),
    [
        (Codec.H264, None, [(0x1B, 0xE0)]),
        (Codec.HEVC, StreamType.G711A, [(0x24, 0xE0), (0x90, 0xC0)]),
        (Codec.H264, StreamType.G711U, [(0x1B, 0xE0), (0x91, 0xC0)]),
    ],
)
def test_program_stream_map(
    codec: Codec, audio: StreamType | None, types: list[tuple[int, int]]
) -> None:
    psm = PsMuxer(codec, audio).psm
    assert psm[:4] == b"\x00\x00\x01\xbc"
    assert int.from_bytes(psm[4:6], "big") == len(psm) - 6
    assert crc32_mpeg2(psm) == 0  # CRC over the whole map, CRC included, leaves 0
    assert psm[6] & 0x80  # current_next_indicator
    es_length = int.from_bytes(psm[10:12], "big")
    entries = psm[12 : 12 + es_length]
    assert [(entries[i], entries[i + 1]) for i in range(0, len(entries), 4)] == types


def test_keyframes_carry_system_header_and_map_and_others_do_not() -> None:
    material = clip(Codec.H264)
    packs = mux_packs(material)
    for pack, (_, _, key) in zip(packs, material.units, strict=True):
        ids = [sid for _, sid, _ in pes_packets(pack)]
        assert pack.startswith(b"\x00\x00\x01\xba")
        assert (ids[:2] == [0xBB, 0xBC]) is key
        assert ids[-1] == 0xE0


@pytest.mark.parametrize("max_pes", [MAX_PES_LENGTH, 1000])
def test_a_large_picture_is_split_into_pes_of_at_most_max_length(max_pes: int) -> None:
    picture = fake_picture(200_000)
    muxer = PsMuxer(Codec.H264, max_pes_length=max_pes)
    pack = muxer.video(picture, 9000, dts=5400, keyframe=True)
    pes = [(pos, length) for pos, sid, length in pes_packets(pack) if sid == 0xE0]
    assert len(pes) == -(-(len(picture) + 13) // (max_pes - 3))
    assert all(length <= max_pes for _, length in pes)
    first = pes[0][0]
    assert pack[first + 7] >> 6 == 3 and pack[first + 8] == 10  # PTS and DTS
    assert read_timestamp(pack, first + 9) == 9000 and read_timestamp(pack, first + 14) == 5400
    assert all(pack[pos + 7] == 0 for pos, _ in pes[1:])  # continuations carry no PTS
    units, demuxer = demux_all(pack)
    assert [(u.data, u.pts, u.dts, u.keyframe) for u in units] == [(picture, 9000, 5400, True)]
    assert demuxer.errors == 0


# round trips


@pytest.mark.parametrize("codec", CODECS)
def test_round_trip_gives_back_identical_access_units(codec: Codec) -> None:
    material = clip(codec)
    units, demuxer = demux_all(b"".join(mux_packs(material)))
    assert summary(units) == list(material.units)
    assert {u.codec for u in units} == {codec}
    assert {u.stream_type for u in units} == {0x1B if codec is Codec.H264 else 0x24}
    assert [u.keyframe for u in units].count(True) == 3
    counters = demuxer.counters()
    assert counters["frames"] == 30 and counters["packs"] == 30 and counters["psms"] == 3
    assert counters["errors"] == counters["resyncs"] == counters["dropped"] == 0
    assert counters["bad_crc"] == counters["internal_errors"] == 0
    assert demuxer.framing == "packs"
    packet = units[0].packet(captured=1.5)
    assert packet == Packet(units[0].data, 0, True, 1.5)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("chunks", [[1], [2, 3, 5, 7], random_chunks(1), random_chunks(2, 70_000)])
def test_arbitrary_chunking_gives_the_same_output(codec: Codec, chunks: list[int]) -> None:
    material = clip(codec)
    units, demuxer = demux_all(b"".join(mux_packs(material)), chunks)
    assert summary(units) == list(material.units)
    assert demuxer.errors == demuxer.resyncs == demuxer.internal_errors == 0


@pytest.mark.parametrize("codec", CODECS)
def test_without_a_program_stream_map_the_codec_is_guessed(codec: Codec) -> None:
    material = clip(codec)
    muxer = PsMuxer(codec)
    stream = b"".join(mux_packs(material)).replace(muxer.psm, b"").replace(muxer.system_header, b"")
    units, demuxer = demux_all(stream)
    assert summary(units) == list(material.units)
    assert {u.codec for u in units} == {codec}
    assert demuxer.psms == 0 and demuxer.errors == 0
    assert guess_codec(material.units[0][0]) is codec
    assert guess_codec(material.units[1][0]) is codec  # a P picture, no parameter sets


def test_timestamps_continue_past_the_33_bit_wrap() -> None:
    material = clip(Codec.H264)
    muxer = PsMuxer(Codec.H264)
    base = TS_MASK - 10 * STEP
    stream = b"".join(muxer.video(d, base + pts, keyframe=k) for d, pts, k in material.units)
    units, _ = demux_all(stream)
    assert [u.pts for u in units] == [base + pts for _, pts, _ in material.units]


def test_padding_private_streams_and_pack_stuffing_are_skipped() -> None:
    material = clip(Codec.H264)
    padding = b"\x00\x00\x01\xbe\x00\x10" + b"\xff" * 16
    private = b"\x00\x00\x01\xbf\x00\x05hello" + b"\x00\x00\x01\xbd\x00\x03\x80\x00\x00"
    stuffed = []
    for pack in mux_packs(material):
        head = pack_header(0, 6106, stuffing=6)
        stuffed.append(head + private + pack[14:] + padding + b"\x00" * 9)  # zeros: harmless
    units, demuxer = demux_all(b"".join(stuffed), [3, 11, 17])
    assert summary(units) == list(material.units)
    assert demuxer.errors == demuxer.resyncs == demuxer.skipped == 0


def test_video_pes_of_length_zero_and_end_of_frame() -> None:
    material = clip(Codec.H264)
    stamps = write_timestamp(2, 0)
    demuxer = PsDemuxer()
    out = []
    for data, pts, _ in material.units:
        pes = b"\x00\x00\x01\xe0\x00\x00\x80\x80\x05" + write_timestamp(2, pts) + data
        out += demuxer.feed(pack_header(pts, 6106) + pes)
    assert len(stamps) == 5
    assert summary(out) == list(material.units[:-1])  # each ended by the next pack
    out += demuxer.end_of_frame()  # the last one, held 3 bytes short, is complete now
    assert summary(out) == list(material.units)


def test_pictures_without_a_pts_are_ended_by_the_pack_and_given_an_estimated_one() -> None:
    """Some devices put a PTS on keyframes only."""
    material = clip(Codec.H264)
    stream = b""
    for data, pts, key in material.units:
        if key:
            stamp, flags = write_timestamp(2, pts), 0x80
        else:
            stamp, flags = b"", 0
        body = bytes((0x80, flags, len(stamp))) + stamp + data
        pes = b"\x00\x00\x01\xe0" + len(body).to_bytes(2, "big") + body
        stream += pack_header(pts, 6106) + pes
    for chunks in (None, [1400]):
        units, demuxer = demux_all(stream, chunks)
        assert summary(units) == list(material.units)
        assert demuxer.errors == 0


def test_mpeg1_pack_and_pes_headers() -> None:
    """FFmpeg's `-f mpeg` writes MPEG-1 system streams: 12-byte packs, MPEG-1 PES headers."""
    material = clip(Codec.H264)
    stream = b""
    for data, pts, _ in material.units:
        pack = b"\x00\x00\x01\xba\x21\x00\x01\x00\x01\x80\x00\x01"
        stamp = write_timestamp(3, pts) + write_timestamp(1, pts)
        body = b"\xff\xff" + b"\x40\x20" + stamp + data  # stuffing, STD buffer, PTS+DTS
        for pos in range(0, len(body), 60_000):
            part = body[pos : pos + 60_000] if pos == 0 else b"\x0f" + body[pos : pos + 60_000]
            stream += pack + b"\x00\x00\x01\xe0" + len(part).to_bytes(2, "big") + part
    units, demuxer = demux_all(stream, [5, 1000])
    assert summary(units) == list(material.units)
    assert demuxer.errors == 0


# frame boundaries and latency


def test_a_frame_is_handed_on_as_soon_as_the_next_frame_starts() -> None:
    """A camera that never sets the RTP marker: the next pack ends the frame, no later."""
    material = clip(Codec.H264)
    packs = mux_packs(material)
    demuxer = PsDemuxer()
    for index, pack in enumerate(packs):
        if index >= 4:  # alignment learned: the 4 bytes of a pack start code are enough
            assert summary(demuxer.feed(pack[:4])) == [material.units[index - 1]]
            assert demuxer.feed(pack[4:]) == []
        else:
            got = summary(demuxer.feed(pack))
            assert got == ([material.units[index - 1]] if index else [])
    assert summary(demuxer.flush()) == [material.units[-1]]
    assert demuxer.framing == "packs"


def test_end_of_frame_hands_the_frame_on_at_once() -> None:
    material = clip(Codec.HEVC)
    demuxer = PsDemuxer()
    for pack, unit in zip(mux_packs(material), material.units, strict=True):
        assert demuxer.feed(pack + b"\x00\x00") == []  # (a device padding with zeros)
        assert summary(demuxer.end_of_frame()) == [unit]
    assert demuxer.end_of_frame() == [] and demuxer.flush() == []


def test_end_of_frame_waits_for_an_incomplete_pes() -> None:
    material = clip(Codec.H264)
    pack = mux_packs(material)[0]
    demuxer = PsDemuxer()
    assert demuxer.feed(pack[:-10]) == [] and demuxer.end_of_frame() == []
    assert demuxer.feed(pack[-10:]) == []
    assert summary(demuxer.end_of_frame()) == [material.units[0]]


# loss, garbage, limits


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("where", ["middle of a frame", "across a pack header"])
def test_a_dropped_chunk_resyncs_and_later_frames_are_complete(codec: Codec, where: str) -> None:
    material = clip(codec)
    packs = mux_packs(material)
    stream = b"".join(packs)
    start = sum(len(p) for p in packs[:12])  # frame 12: a P picture
    if where == "middle of a frame":
        cut = (start + len(packs[12]) // 3, start + len(packs[12]) // 2)
    else:
        cut = (start - 300, start + 40)
    damaged = stream[: cut[0]] + stream[cut[1] :]
    for chunks in (None, [1400], random_chunks(3)):
        units, demuxer = demux_all(damaged, chunks, wait_keyframe=False)
        assert demuxer.resyncs >= 1 and demuxer.internal_errors == 0
        got = summary(units)
        lost = 1 if where == "middle of a frame" else 2  # the frame, or both sides of it
        first_lost = 12 if lost == 1 else 11
        expect = list(material.units[:first_lost]) + list(material.units[first_lost + lost :])
        assert got == expect
        # by default, pictures wait for the next keyframe, and all of them decode
        units, demuxer = demux_all(damaged, chunks)
        assert summary(units) == list(material.units[:first_lost]) + list(material.units[20:])
        frames = decode(codec, (u.packet() for u in units))
        assert len(frames) == len(units)


def test_garbage_before_the_stream_is_skipped_and_counted() -> None:
    material = clip(Codec.H264)
    garbage = random.Random(5).randbytes(5000).replace(b"\x00", b"\x07")
    units, demuxer = demux_all(garbage + b"".join(mux_packs(material)), [999])
    assert summary(units) == list(material.units)
    assert demuxer.skipped == 5000 and demuxer.resyncs == 1


@pytest.mark.parametrize("seed", range(6))
def test_random_bytes_never_raise(seed: int) -> None:
    rng = random.Random(seed)
    # random bytes, with start codes of every kind sprinkled in
    parts = []
    for _ in range(3000):
        parts.append(rng.randbytes(rng.randint(0, 60)))
        parts.append(
            b"\x00\x00\x01" + bytes((rng.choice([0xBA, 0xBB, 0xBC, 0xBE, 0xC0, 0xE0, 0xB9, 0x65]),))
        )
    stream = b"".join(parts)
    for chunks in (None, random_chunks(seed, 100)):
        _, demuxer = demux_all(stream, chunks)
        assert demuxer.internal_errors == 0
        assert demuxer.bytes == len(stream)


def test_truncated_and_corrupted_headers_never_raise_and_the_stream_recovers() -> None:
    material = clip(Codec.H264)
    packs = mux_packs(material)
    head = packs[0][:200]
    rng = random.Random(7)
    damaged = []
    for index, pack in enumerate(packs[:20]):
        damaged.append(head[: rng.randint(1, 199)])  # a truncated pack, PSM or PES header
        mutated = bytearray(pack)
        for _ in range(5):
            mutated[rng.randrange(min(len(pack), 80))] = rng.randrange(256)
        damaged.append(bytes(mutated) if index % 2 else pack)
    # a PES announcing 65535 bytes with 10 present, and a PSM announcing more than it has
    damaged.append(b"\x00\x00\x01\xe0\xff\xff\x80\x80\x05" + write_timestamp(2, 1) + b"\x00" * 10)
    damaged.append(b"\x00\x00\x01\xbc\xff\xf0\xe0\xff\xff\xff")
    stream = b"".join(damaged) + b"".join(packs[20:])
    for chunks in (None, [1], random_chunks(8)):
        units, demuxer = demux_all(stream, chunks)
        assert demuxer.internal_errors == 0 and demuxer.errors + demuxer.resyncs > 0
        assert summary(units)[-10:] == list(material.units[20:])


def test_a_picture_over_max_frame_is_dropped_and_counted() -> None:
    muxer = PsMuxer(Codec.H264)
    small, huge = fake_picture(5000, 1), fake_picture(300_000, 2)
    stream = b"".join(
        muxer.video(p, i * STEP, keyframe=True) for i, p in enumerate([small, huge, small])
    )
    units, demuxer = demux_all(stream, [1400], max_frame=100_000)
    assert [(u.data, u.pts) for u in units] == [(small, 0), (small, 2 * STEP)]
    assert demuxer.oversized == 1 and demuxer.dropped == 1
    assert len(demuxer._au) == 0


def test_discontinuity_drops_the_open_frame() -> None:
    material = clip(Codec.H264)
    packs = mux_packs(material)
    demuxer = PsDemuxer(wait_keyframe=False)
    out = demuxer.feed(b"".join(packs[:3]))
    out += demuxer.feed(packs[3][:500])
    demuxer.discontinuity()
    out += demuxer.feed(packs[3][900:] + b"".join(packs[4:]))
    out += demuxer.flush()
    assert summary(out) == list(material.units[:3] + material.units[4:])
    assert demuxer.dropped == 1 and demuxer.resyncs == 1


# audio


def test_g711_audio_is_surfaced_when_the_map_names_it() -> None:
    material = clip(Codec.H264)
    muxer = PsMuxer(Codec.H264, StreamType.G711A)
    stream = b""
    audio = []
    for index, (data, pts, key) in enumerate(material.units):
        stream += muxer.video(data, pts, keyframe=key)
        samples = bytes([0xD5 ^ (index & 0x7F)]) * 320  # 40 ms of A-law
        audio.append((samples, pts))
        stream += muxer.audio(samples, pts)
    units, demuxer = demux_all(stream, random_chunks(9))
    assert summary(units) == list(material.units)
    sound = [(u.data, u.pts) for u in units if not u.is_video]
    assert sound == audio
    assert {(u.stream_id, u.stream_type, u.codec) for u in units if not u.is_video} == {
        (0xC0, StreamType.G711A, Codec.OTHER)
    }
    assert demuxer.audio_frames == 30
    # without a map the audio stream's type is unknown: ignored
    stream = stream.replace(muxer.psm, b"")
    units, demuxer = demux_all(stream)
    assert summary(units) == list(material.units) and demuxer.audio_frames == 0


# other tools read what we write


@pytest.mark.parametrize("codec", CODECS)
def test_ffmpeg_and_pyav_decode_our_program_stream(codec: Codec, tmp_path: Path) -> None:
    material = clip(codec)
    muxer = PsMuxer(codec)
    path = tmp_path / "out.ps"
    units = material.units
    path.write_bytes(b"".join(muxer.video(d, pts + 9000, keyframe=k) for d, pts, k in units))
    null = [FFMPEG, "-v", "error", "-f", "mpeg", "-i", str(path), "-f", "null", "-"]
    checked = subprocess.run(null, capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0 and checked.stderr == ""
    run = subprocess.run(  # the same, counting the pictures
        [FFMPEG, "-v", "error", "-f", "mpeg", "-i", str(path), "-f", "framemd5", "-"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0 and run.stderr == ""
    assert len([line for line in run.stdout.splitlines() if not line.startswith("#")]) == 30
    with av.open(str(path), format="mpeg") as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == codec.value
        frames = list(container.decode(stream))
    assert len(frames) == 30
    assert {(f.width, f.height) for f in frames} == {(material.width, material.height)}
    assert frames[0].pts is not None


# we read what FFmpeg writes


@pytest.mark.parametrize(
    ("muxer", "codec"),
    [("vob", Codec.H264), ("mpeg", Codec.H264), ("dvd", Codec.H264), ("vob", Codec.HEVC)],
)
def test_program_streams_written_by_ffmpeg_demux_to_decodable_pictures(
    muxer: str, codec: Codec, tmp_path: Path
) -> None:
    path = tmp_path / f"out.{muxer}"
    encoder = (
        ["-c:v", "libx264"]
        if codec is Codec.H264
        else ["-c:v", "libx265", "-x265-params", "log-level=error"]
    )
    subprocess.run(
        [
            FFMPEG,
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
            "-t",
            "2",
            *encoder,
            "-threads",
            "1",
            "-f",
            muxer,
            str(path),
        ],
        check=True,
        timeout=60,
    )
    data = path.read_bytes()
    with av.open(str(path), format="mpeg") as container:
        theirs = [bytes(p) for p in container.demux(video=0) if p.size]
    for chunks in (None, [1400], random_chunks(10, 5000)):
        units, demuxer = demux_all(data, chunks)
        assert len(units) == 50 and demuxer.framing == "elementary"
        assert units[0].keyframe and {u.codec for u in units} == {codec}
        assert [u.data for u in units] == theirs  # the same pictures as FFmpeg's parser cuts
        assert demuxer.errors == demuxer.resyncs == demuxer.internal_errors == 0
        frames = decode(codec, (u.packet() for u in units))
        assert len(frames) == 50 and {(f.width, f.height) for f in frames} == {(320, 240)}
        dts = [u.dts for u in units]
        assert dts == sorted(dts) and len(set(dts)) == 50


@pytest.mark.parametrize("seed", range(8))
def test_after_random_losses_every_picture_handed_on_is_intact(seed: int) -> None:
    """Chunks of a raw stream dropped at random: what comes out is only whole, true pictures."""
    material = clip(Codec.H264 if seed % 2 else Codec.HEVC)
    stream = b"".join(mux_packs(material))
    rng = random.Random(seed)
    pieces, pos = [], 0
    while pos < len(stream):
        size = rng.randint(1, 1500)
        if rng.random() > 0.05:
            pieces.append(stream[pos : pos + size])
        pos += size
    units, demuxer = demux_all(b"".join(pieces), random_chunks(seed), wait_keyframe=False)
    originals = set(material.units)
    assert all(unit in originals for unit in summary(units))
    assert len(units) >= 5 and demuxer.internal_errors == 0
    assert demuxer.frames + demuxer.dropped >= 25


# cascading and changes


def test_remuxing_demuxed_units_gives_the_same_units() -> None:
    """What a cascade does: demux a camera's PS, mux it again for the upper platform."""
    material = clip(Codec.HEVC)
    first, _ = demux_all(b"".join(mux_packs(material)))
    muxer = PsMuxer(Codec.HEVC)
    again, _ = demux_all(b"".join(muxer.mux(unit) for unit in first))
    assert again == first


def test_a_camera_switching_codec_is_followed_through_its_map() -> None:
    h264, hevc = clip(Codec.H264), clip(Codec.HEVC)
    stream = b"".join(mux_packs(h264)) + b"".join(
        PsMuxer(Codec.HEVC).video(d, pts + 30 * STEP, keyframe=k) for d, pts, k in hevc.units
    )
    units, demuxer = demux_all(stream)
    assert [u.codec for u in units] == [Codec.H264] * 30 + [Codec.HEVC] * 30
    assert [u.stream_type for u in units] == [0x1B] * 30 + [0x24] * 30
    assert demuxer.stream_type(0xE0) == 0x24 and demuxer.psms == 6


def test_ffmpeg_copies_our_elementary_stream_out_unchanged(tmp_path: Path) -> None:
    material = clip(Codec.H264)
    path = tmp_path / "out.ps"
    path.write_bytes(b"".join(mux_packs(material)))
    run = subprocess.run(
        [FFMPEG, "-v", "error", "-f", "mpeg", "-i", str(path), "-c", "copy", "-f", "h264", "-"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert run.stdout == b"".join(data for data, _, _ in material.units)


def test_counters_are_plain_numbers() -> None:
    _, demuxer = demux_all(b"".join(mux_packs(clip(Codec.H264))))
    counters = demuxer.counters()
    assert set(counters) >= {"frames", "errors", "resyncs", "skipped", "dropped", "oversized"}
    assert all(isinstance(value, int) for value in counters.values())
    assert counters["bytes"] == demuxer.bytes > 0
