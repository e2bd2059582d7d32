"""Transcoder: HEVC/MJPEG relay -> one decode, one H.264 encode -> a relay many viewers share."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from streams import bitstream
from streams.media import CLOCK_RATE, Codec, Packet, StreamInfo
from streams.pyav_source import FileSource
from streams.registry import SourceOptions
from streams.relay import Consumer, Relay
from streams.synthetic import SyntheticParams, SyntheticSource, encoded_loop
from streams.transcode import Transcoder
from tests.fixtures.media_files import RelaySink, decode, make_video, worker_threads


@contextlib.asynccontextmanager
async def camera(codec: Codec, fps: int = 25) -> AsyncIterator[Relay]:
    """A relay fed by a synthetic camera of `codec` (320x240, 1 s GOP)."""
    relay = Relay(f"cam-{codec.value}")
    url = f"synthetic://tc?size=320x240&fps={fps}&gop={fps}&loop=1&codec={codec.value}"
    task = asyncio.create_task(SyntheticSource(url, SourceOptions()).run(RelaySink(relay)))
    try:
        yield relay
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        relay.close()


async def take(consumer: Consumer, count: int, within: float = 10.0) -> list[Packet]:
    async with asyncio.timeout(within):
        return [await consumer.get() for _ in range(count)]


@contextlib.asynccontextmanager
async def transcoding(source: Relay, **kwargs: float) -> AsyncIterator[tuple[Transcoder, Relay]]:
    output = Relay(f"{source.name}/h264")
    transcoder = Transcoder(source, output, name=output.name, **kwargs)  # type: ignore[arg-type]
    transcoder.start()
    try:
        yield transcoder, output
    finally:
        await transcoder.stop()
        assert not transcoder.running
        assert worker_threads() == [] or all("transcode" not in n for n in worker_threads())
        output.close()


@pytest.mark.parametrize("codec", [Codec.HEVC, Codec.MJPEG])
async def test_one_encode_serves_three_viewers(codec: Codec) -> None:
    async with camera(codec) as source, transcoding(source) as (transcoder, output):
        viewers = [output.subscribe(f"viewer{i}") for i in range(3)]
        got = await asyncio.gather(*(take(v, 15) for v in viewers))
        info = output.info
        assert info is not None
        assert (info.codec, info.width, info.height, info.fps) == (Codec.H264, 320, 240, 25.0)
        assert bitstream.has_sps(info.parameter_sets)
        for packets in got:
            assert packets[0].keyframe and bitstream.has_sps(packets[0].data)
            frames = decode(Codec.H264, packets)
            assert len(frames) == 15 and {(f.width, f.height) for f in frames} == {(320, 240)}
            assert [p.pts for p in packets] == sorted(p.pts for p in packets)
        # the three viewers saw the same encoded packets: one encode, not three
        assert [p.data for p in got[0]] == [p.data for p in got[1]] == [p.data for p in got[2]]
        assert transcoder.frames_out == output.packets
        assert transcoder.frames_out < 2 * 15 + 5, "frames_out must not triple with 3 viewers"
        assert transcoder.frames_in >= transcoder.frames_out
        assert transcoder.drops == 0 and transcoder.errors == 0
        # captured travels with the picture (latency measurements survive the conversion)
        assert all(p.captured > 0 for p in got[0])
    assert worker_threads() == []


async def test_mpeg4_file_with_config_in_extradata_only(tmp_path: Path) -> None:
    """MP4-muxed MPEG-4 Part 2 keeps its VOL header in extradata: StreamInfo must carry it."""
    path = make_video(tmp_path / "cam.mp4", codec="mpeg4", seconds=0.4, gop=5)
    source = Relay("mpeg4")
    task = asyncio.create_task(FileSource(f"file://{path}", SourceOptions()).run(RelaySink(source)))
    try:
        async with transcoding(source) as (transcoder, output):
            packets = await take(output.subscribe("v"), 12)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert source.info is not None and source.info.codec is Codec.MPEG4
    assert source.info.parameter_sets, "the VOL header is needed to decode"
    frames = decode(Codec.H264, packets)
    assert len(frames) == 12 and (frames[0].width, frames[0].height) == (320, 240)
    assert transcoder.errors == 0


async def test_keyframe_interval_and_forced_idr_rate_limit() -> None:
    async with camera(Codec.MJPEG) as source, transcoding(source) as (transcoder, output):
        viewer = output.subscribe("v")
        first = await take(viewer, 8)
        assert [p.keyframe for p in first].count(True) == 1, "keyint is 2 s, not every frame"
        transcoder.request_keyframe()
        transcoder.request_keyframe()  # within 0.5 s: ignored (it would hit every viewer)
        after = await take(viewer, 4)
        assert any(p.keyframe for p in after), "the forced IDR did not come within 4 frames"
        assert transcoder.keyframes_forced == 1 and transcoder.keyframe_requests_ignored == 1
        assert len(decode(Codec.H264, first + after)) == 12
        await asyncio.sleep(0.55)
        transcoder.request_keyframe()
        assert transcoder.keyframes_forced == 2


async def test_fps_reduction() -> None:
    async with camera(Codec.MJPEG) as source, transcoding(source, fps=10) as (transcoder, out):
        packets = await take(out.subscribe("v"), 11)
        steps = [b.pts - a.pts for a, b in itertools.pairwise(packets)]
        assert min(steps) >= CLOCK_RATE / 25  # whole source frames were dropped, none doubled
        assert sum(steps) / len(steps) == pytest.approx(CLOCK_RATE / 10, rel=0.1)  # 10 fps
        assert transcoder.frames_in > transcoder.frames_out
        assert out.info is not None and out.info.fps == 10


async def test_slow_worker_drops_to_the_next_keyframe() -> None:
    url = "synthetic://burst?size=640x360&fps=25&gop=10&loop=2&codec=hevc"
    params = SyntheticParams.from_url(url)
    encoded = await asyncio.to_thread(encoded_loop(params).packets, threading.Event())
    source = Relay("burst")
    source.publish_info(SyntheticSource(url, SourceOptions()).info(encoded))
    async with transcoding(source, queue_size=4) as (transcoder, output):
        viewer = output.subscribe("v", maxsize=200)
        await asyncio.sleep(0)  # let the transcoder subscribe
        for i, (data, keyframe) in enumerate(encoded[:40]):  # a burst the worker cannot take
            source.publish(Packet(data, i * 3600, keyframe, captured=1.0))
        await asyncio.sleep(0)  # the pump drains its consumer into the bounded queue
        assert transcoder.drops > 0
        for i, (data, keyframe) in enumerate(encoded[40:], start=40):  # then at a normal pace
            source.publish(Packet(data, i * 3600, keyframe, captured=1.0))
            await asyncio.sleep(0.02)
        async with asyncio.timeout(10):
            while transcoder.frames_in + transcoder.drops < len(encoded):
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.1)
        assert transcoder.errors == 0, "dropping mid-GOP would make the decoder fail"
        packets = list(iter(viewer.get_nowait, None))
        assert 10 <= len(packets) == transcoder.frames_out < len(encoded)
        assert transcoder.frames_in + transcoder.drops == len(encoded)
        assert len(decode(Codec.H264, packets)) == len(packets)


async def test_camera_restart_with_new_clock_and_size() -> None:
    """A reconnected camera may restart its pts and change resolution: the output's pts keep
    increasing and a new StreamInfo (new SPS) is published before the new size's keyframe."""
    small = "synthetic://restart?size=320x240&fps=25&gop=5&loop=0.2&codec=mjpeg"
    large = small.replace("320x240", "640x480")
    loops = [
        await asyncio.to_thread(
            encoded_loop(SyntheticParams.from_url(u)).packets, threading.Event()
        )
        for u in (small, large)
    ]
    source = Relay("restart")
    infos: list[StreamInfo | None] = []
    async with transcoding(source) as (transcoder, output):
        viewer = output.subscribe("v", maxsize=100)
        for url, encoded, base in zip((small, large), loops, (900_000, 0), strict=True):
            source.publish_info(SyntheticSource(url, SourceOptions()).info(encoded))
            for i, (data, keyframe) in enumerate(encoded):
                source.publish(Packet(data, base + i * 3600, keyframe, captured=1.0))
                await asyncio.sleep(0.01)
            async with asyncio.timeout(5):
                while transcoder.frames_in < len(encoded) * (len(infos) + 1):
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            infos.append(output.info)
        packets = list(iter(viewer.get_nowait, None))
    assert [(i.width, i.height) for i in infos if i] == [(320, 240), (640, 480)]
    pts = [p.pts for p in packets]
    assert len(pts) == 10 and pts == sorted(pts) and len(set(pts)) == 10
    assert packets[5].keyframe and bitstream.has_sps(packets[5].data)
    sizes = [(f.width, f.height) for f in decode(Codec.H264, packets)]
    assert sizes == [(320, 240)] * 5 + [(640, 480)] * 5


async def test_stop_is_idempotent_and_ends_on_relay_close() -> None:
    source, output = Relay("s"), Relay("o")
    transcoder = Transcoder(source, output, name="idle")
    transcoder.start()
    await asyncio.sleep(0.05)
    assert any("transcode-idle" in name for name in worker_threads())
    source.close()  # the camera's relay ends: the transcoder winds down by itself
    async with asyncio.timeout(2):
        while transcoder.running:
            await asyncio.sleep(0.02)
    await transcoder.stop()
    await transcoder.stop()
    assert worker_threads() == []
