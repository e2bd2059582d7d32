"""SyntheticSource: encoded once, replayed at real time, decodable, live mode for latency."""

from __future__ import annotations

import asyncio
import time
import uuid

import numpy as np
import pytest

from streams import bitstream
from streams.media import CLOCK_RATE, Codec, SourceError
from streams.registry import SourceOptions, open_source
from streams.synthetic import SyntheticParams, SyntheticSource, encoded_loop
from tests.fixtures.media_files import RecordingSink, decode, worker_threads


def unique(name: str = "cam") -> str:
    """A camera name no other test used, so the loop cache starts cold for it."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def collect(url: str, want: int, within: float = 10.0) -> RecordingSink:
    sink = RecordingSink(want)
    task = asyncio.create_task(SyntheticSource(url, SourceOptions()).run(sink))
    try:
        await asyncio.wait_for(sink.enough.wait(), within)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert worker_threads() == []
    return sink


def test_url_parameters() -> None:
    p = SyntheticParams.from_url(
        "synthetic://hall%201?size=641x360&fps=10&gop=20&bitrate=2M&codec=h265&live=1&loop=2"
    )
    assert (p.name, p.width, p.height, p.fps, p.gop) == ("hall 1", 640, 360, 10, 20)
    assert (p.bitrate, p.codec, p.live, p.loop_frames) == (2_000_000, Codec.HEVC, True, 20)
    defaults = SyntheticParams.from_url("synthetic://x")
    assert (defaults.width, defaults.height, defaults.fps, defaults.gop) == (1280, 720, 25, 50)
    assert (defaults.bitrate, defaults.live, defaults.loop_frames) == (1_500_000, False, 100)
    assert isinstance(open_source("synthetic://x", SourceOptions()), SyntheticSource)


@pytest.mark.parametrize("query", ["size=big", "fps=0", "codec=vp8", "gop=x", "size=8x8"])
async def test_bad_url_is_a_source_error(query: str) -> None:
    source = SyntheticSource(f"synthetic://x?{query}", SourceOptions())  # must not raise here
    with pytest.raises(SourceError, match="synthetic"):
        source.check()
    with pytest.raises(SourceError, match="synthetic"):
        await source.run(RecordingSink())


async def test_h264_loop_replays_at_real_time_with_continuous_pts() -> None:
    # a 0.4 s loop (two GOPs of 5): 26 packets cross it twice
    url = f"synthetic://{unique()}?size=320x240&fps=25&gop=5&loop=0.4"
    started = time.monotonic()
    sink = await collect(url, 26)
    elapsed = time.monotonic() - started
    packets = sink.packets[:26]
    info = sink.infos[0]
    assert (info.codec, info.width, info.height, info.fps) == (Codec.H264, 320, 240, 25.0)
    assert bitstream.has_sps(info.parameter_sets)
    assert [p.pts for p in packets] == [i * CLOCK_RATE // 25 for i in range(26)]
    assert [i for i, p in enumerate(packets) if p.keyframe] == [0, 5, 10, 15, 20, 25]
    for packet in packets:  # SPS/PPS repeated on every keyframe, Annex-B throughout
        assert packet.data.startswith(bitstream.START_CODE)
        assert (
            bitstream.has_sps(packet.data) == packet.keyframe == bitstream.is_keyframe(packet.data)
        )
    assert elapsed > 25 / 25 * 0.9, "not paced at real time"
    now = time.time()
    assert all(now - 3 < p.captured <= now for p in packets)
    frames = decode(Codec.H264, packets)
    assert len(frames) == 26 and {(f.width, f.height) for f in frames} == {(320, 240)}
    # the picture moves: consecutive frames differ, and loops repeat exactly
    images = [f.to_ndarray(format="gray") for f in frames]
    assert np.abs(images[1].astype(int) - images[0]).mean() > 1
    assert packets[10].data == packets[0].data and packets[13].data == packets[3].data


async def test_same_parameters_encode_once() -> None:
    url = f"synthetic://{unique('shared')}?size=320x240&fps=25&gop=10&loop=0.4"
    first, second = await asyncio.gather(collect(url, 3), collect(url, 3))
    loop = encoded_loop(SyntheticParams.from_url(url))
    assert loop.encodes == 1, "two cameras with the same parameters must share one encode"
    assert first.packets[0].data == second.packets[0].data
    # other parameters: another loop
    other = await collect(url.replace("gop=10", "gop=5"), 1)
    assert other.infos[0].width == 320
    assert loop.encodes == 1
    assert encoded_loop(SyntheticParams.from_url(url.replace("gop=10", "gop=5"))).encodes == 1


async def test_replay_costs_next_to_no_cpu() -> None:
    url = f"synthetic://{unique()}?size=1280x720&fps=25&gop=50&loop=1"
    await collect(url, 1)  # encode (once) outside the measurement
    sink = RecordingSink(10_000)
    task = asyncio.create_task(SyntheticSource(url, SourceOptions()).run(sink))
    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.sleep(1.0)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(sink.packets) >= 20
    assert cpu < 0.1 * wall, f"replaying used {cpu:.3f} s of CPU in {wall:.2f} s"


@pytest.mark.parametrize("codec", [Codec.HEVC, Codec.MJPEG])
async def test_other_codecs_decode(codec: Codec) -> None:
    url = f"synthetic://{unique()}?size=320x240&fps=25&gop=5&loop=0.2&codec={codec.value}"
    sink = await collect(url, 6)
    info = sink.infos[0]
    assert (info.codec, info.width, info.height) == (codec, 320, 240)
    if codec is Codec.HEVC:
        types = {(n[0] >> 1) & 0x3F for n in bitstream.split_annexb(info.parameter_sets)}
        assert types == {32, 33, 34}
    else:
        assert all(p.keyframe and p.data.startswith(b"\xff\xd8") for p in sink.packets)
    frames = decode(codec, sink.packets)
    assert len(frames) == len(sink.packets) and frames[0].width == 320


async def test_live_mode_carries_capture_time() -> None:
    url = f"synthetic://{unique('live')}?size=320x240&fps=25&gop=10&live=1"
    sink = await collect(url, 12)
    info = sink.infos[0]
    assert (info.codec, info.width, info.fps) == (Codec.H264, 320, 25.0)
    assert sink.packets[0].keyframe and bitstream.has_sps(info.parameter_sets)
    stamps = [p.meta["capture_ms"] for p in sink.packets]
    ms = [s for s in stamps if isinstance(s, int)]
    assert len(ms) == len(stamps), "capture_ms must be an int on every packet"
    assert ms == sorted(ms) and ms[-1] - ms[0] > 300  # 12 frames at 25 fps, captured live
    assert abs(ms[-1] - time.time() * 1000) < 1000
    assert all(abs(p.captured * 1000 - s) < 2 for p, s in zip(sink.packets, ms, strict=True))
    assert len(decode(Codec.H264, sink.packets)) == len(sink.packets)


async def test_cancel_during_the_encode_caches_nothing_and_leaves_no_thread() -> None:
    url = f"synthetic://{unique('slow')}?size=1280x720&fps=25&gop=25&loop=4"
    loop = encoded_loop(SyntheticParams.from_url(url))
    task = asyncio.create_task(SyntheticSource(url, SourceOptions()).run(RecordingSink()))
    await asyncio.sleep(0.1)
    assert any(name.startswith("zzhub-synthetic-encode") for name in worker_threads())
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 0.5, "the encode must stop between frames"
    assert worker_threads() == [] and loop.encodes == 0
    sink = await collect(url, 1)  # the next camera encodes it for real
    assert loop.encodes == 1 and sink.packets[0].keyframe
