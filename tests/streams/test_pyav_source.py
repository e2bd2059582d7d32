"""PyAVSource and FileSource against real servers (ffmpeg -listen 1) and real files."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from streams import bitstream
from streams.bitstream import hevc_parameter_sets_from_hvcc
from streams.media import CLOCK_RATE, Codec, SourceError
from streams.pyav_source import FileSource, PyAVSource, open_options
from streams.registry import SourceOptions, open_source
from tests.fixtures.camera import RtspCamera, requires_rtsp_camera
from tests.fixtures.media_files import (
    RecordingSink,
    decode,
    ffmpeg_server,
    free_port,
    make_video,
    worker_threads,
)

X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "5"]


async def pull(source: PyAVSource | FileSource, want: int, within: float = 10.0) -> RecordingSink:
    """Run `source` until `want` packets arrived, then cancel it and check its thread is gone."""
    sink = RecordingSink(want)
    task = asyncio.create_task(source.run(sink))
    waiter = asyncio.create_task(sink.enough.wait())
    await asyncio.wait([task, waiter], timeout=within, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task.done():
        task.result()  # raises the source's error
    task.cancel()
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1.0, "cancelling a flowing source took too long"
    assert worker_threads() == [], "the demux thread outlived run()"
    assert len(sink.packets) >= want, f"only {len(sink.packets)} packets in {within} s"
    return sink


def assert_annexb_h264(sink: RecordingSink) -> None:
    info = sink.infos[0]
    assert info.codec is Codec.H264
    assert bitstream.has_sps(info.parameter_sets)
    first = sink.packets[0]
    assert first.keyframe and bitstream.is_keyframe(first.data), "must start on a keyframe"
    for packet in sink.packets:
        assert packet.data.startswith(b"\x00\x00\x01") or packet.data.startswith(
            bitstream.START_CODE
        )
        assert set(bitstream.nal_types(packet.data)) & {bitstream.NAL_IDR, bitstream.NAL_SLICE}
    assert [p.keyframe for p in sink.packets] == [
        bitstream.is_keyframe(p.data) for p in sink.packets
    ]


def assert_live_timing(sink: RecordingSink) -> None:
    pts = [p.pts for p in sink.packets]
    assert pts == sorted(pts) and len(set(pts)) == len(pts)
    now = time.time()
    assert all(now - 15 < p.captured <= now for p in sink.packets)


async def test_mjpeg_over_http() -> None:
    url = f"http://127.0.0.1:{free_port()}/cam.mjpg"
    async with ffmpeg_server(url, ["-c:v", "mjpeg", "-f", "mpjpeg"]):
        sink = await pull(PyAVSource(url, SourceOptions(name="mj")), 8)
    info = sink.infos[0]
    assert (info.codec, info.width, info.height) == (Codec.MJPEG, 320, 240)
    assert all(p.keyframe and p.data.startswith(b"\xff\xd8") for p in sink.packets)
    assert_live_timing(sink)
    # multipart MJPEG has no timestamps: pts follow arrival at ~15 fps, not FFmpeg's 25 fps guess
    span = (sink.packets[-1].pts - sink.packets[0].pts) / CLOCK_RATE
    assert span > (len(sink.packets) - 1) / 15 * 0.6
    frames = decode(Codec.MJPEG, sink.packets)
    assert len(frames) == len(sink.packets)
    assert {(f.width, f.height) for f in frames} == {(320, 240)}


async def test_mpegts_over_http() -> None:
    url = f"http://127.0.0.1:{free_port()}/cam.ts"
    async with ffmpeg_server(url, [*X264, "-f", "mpegts"]):
        sink = await pull(PyAVSource(url, SourceOptions(name="ts")), 12)
    info = sink.infos[0]
    assert (info.width, info.height, info.fps) == (320, 240, 15.0)
    assert_annexb_h264(sink)
    assert_live_timing(sink)
    frames = decode(Codec.H264, sink.packets)
    assert len(frames) == len(sink.packets) and frames[0].width == 320


async def test_rtmp_flv_becomes_annexb() -> None:
    url = f"rtmp://127.0.0.1:{free_port()}/live/cam"
    async with ffmpeg_server(url, [*X264, "-f", "flv"]):
        sink = await pull(PyAVSource(url, SourceOptions(name="rtmp")), 12)
    assert (sink.infos[0].width, sink.infos[0].height) == (320, 240)
    assert_annexb_h264(sink)  # FLV carries avcC: the bitstream filter made it Annex-B
    assert_live_timing(sink)
    steps = {b.pts - a.pts for a, b in itertools.pairwise(sink.packets)}
    assert all(abs(step - CLOCK_RATE // 15) <= 90 for step in steps)  # FLV's ms clock, 90 kHz
    frames = decode(Codec.H264, sink.packets)
    assert len(frames) == len(sink.packets)


async def test_camera_ending_its_stream_ends_run() -> None:
    url = f"http://127.0.0.1:{free_port()}/short.ts"
    sink = RecordingSink()
    async with ffmpeg_server(url, [*X264, "-t", "4", "-f", "mpegts"]):
        async with asyncio.timeout(10):
            await PyAVSource(url, SourceOptions(name="short")).run(sink)  # returns by itself
    assert sink.infos and sink.packets and sink.packets[0].keyframe
    assert worker_threads() == []


async def test_registry_routes_http_and_rtmp_here() -> None:
    assert isinstance(open_source("http://127.0.0.1:1/x", SourceOptions()), PyAVSource)
    assert isinstance(open_source("rtmp://127.0.0.1:1/x", SourceOptions()), PyAVSource)
    assert isinstance(open_source("file:///tmp/x.mp4", SourceOptions()), FileSource)


def test_rtsp_fallback_options() -> None:
    opts = open_options("rtsp://127.0.0.1/x", SourceOptions(transport="udp", timeout=3))
    assert opts["rtsp_transport"] == "udp" and opts["timeout"] == "3000000"
    assert opts["fflags"] == "nobuffer"
    assert "rtsp_transport" not in open_options("http://127.0.0.1/x", SourceOptions())


@requires_rtsp_camera
async def test_rtsp_fallback_reads_a_camera() -> None:
    """rtsp:// through FFmpeg, for codecs our own RTSP client does not depacketize."""
    # (the fixture's MJPEG camera answers DESCRIBE with 503, so H.265 it is)
    with RtspCamera(codec="h265", size="320x240", fps=15, gop=5) as camera:
        sink = await pull(PyAVSource(camera.url, SourceOptions(name="rtsp")), 6, within=15)
    assert (sink.infos[0].codec, sink.infos[0].width) == (Codec.HEVC, 320)
    assert sink.packets[0].keyframe and sink.packets[0].data.startswith(bitstream.START_CODE)
    assert len(decode(Codec.HEVC, sink.packets)) == len(sink.packets)


async def test_refused_connection_is_a_quick_source_error_without_password() -> None:
    url = f"http://admin:hunter2@127.0.0.1:{free_port()}/cam.mjpg"
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        await PyAVSource(url, SourceOptions(name="gone", timeout=5)).run(RecordingSink())
    assert time.monotonic() - started < 3
    assert "hunter2" not in str(caught.value) and "admin:***@127.0.0.1" in str(caught.value)
    assert worker_threads() == []


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts and never answers: a camera that hangs."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_hanging_camera_times_out() -> None:
    async with silent_server() as port:
        started = time.monotonic()
        with pytest.raises(SourceError, match="cannot open"):
            source = PyAVSource(f"http://127.0.0.1:{port}/x", SourceOptions(timeout=1.0))
            await source.run(RecordingSink())
        assert 0.8 < time.monotonic() - started < 4
    assert worker_threads() == []


async def test_cancel_while_opening_joins_the_thread() -> None:
    async with silent_server() as port:
        source = PyAVSource(f"http://127.0.0.1:{port}/x", SourceOptions(timeout=1.0))
        task = asyncio.create_task(source.run(RecordingSink()))
        await asyncio.sleep(0.3)
        assert len(worker_threads()) == 1
        task.cancel()
        started = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 2  # bounded by the open timeout
        assert worker_threads() == []


async def test_file_source_loops_at_real_time_with_continuous_pts(tmp_path: Path) -> None:
    path = make_video(tmp_path / "short.mp4", seconds=0.4, gop=5)  # 10 frames at 25 fps
    started = time.monotonic()
    sink = await pull(FileSource(f"file://{path}", SourceOptions(name="file")), 26)
    elapsed = time.monotonic() - started
    packets = sink.packets[:26]
    assert len(sink.infos) == 1, "one on_info for the whole run, not one per loop"
    assert (sink.infos[0].codec, sink.infos[0].width, sink.infos[0].fps) == (Codec.H264, 320, 25)
    assert [p.pts for p in packets] == [i * 3600 for i in range(26)]
    assert [i for i, p in enumerate(packets) if p.keyframe] == [0, 5, 10, 15, 20, 25]
    assert elapsed > 25 / 25 * 0.9, "not paced at real time"
    assert_annexb_h264(sink)  # MP4 avcC -> Annex-B
    assert len(decode(Codec.H264, packets)) == 26  # three loops decode as one stream
    captured = [p.captured for p in packets]
    assert captured == sorted(captured) and captured[-1] - captured[0] > 0.8


async def test_file_source_hevc_mp4(tmp_path: Path) -> None:
    path = make_video(tmp_path / "hevc.mp4", codec="hevc", seconds=0.2, gop=5)
    sink = await pull(FileSource(f"file://{path}", SourceOptions()), 6)
    info = sink.infos[0]
    assert (info.codec, info.width, info.height) == (Codec.HEVC, 320, 240)
    assert {(n[0] >> 1) & 0x3F for n in bitstream.split_annexb(info.parameter_sets)} == {32, 33, 34}
    assert sink.packets[0].data.startswith(bitstream.START_CODE)
    frames = decode(Codec.HEVC, sink.packets)
    assert len(frames) == len(sink.packets) and frames[0].height == 240


def test_hvcc_parser_keeps_parameter_sets_only() -> None:
    vps, sps, pps, sei = b"\x40\x01\xaa", b"\x42\x01\xbb", b"\x44\x01\xcc", b"\x4e\x01\xdd"
    arrays = b"".join(
        bytes([0x80 | ((n[0] >> 1) & 0x3F), 0, 1]) + len(n).to_bytes(2, "big") + n
        for n in (vps, sps, pps, sei)
    )
    record = b"\x01" + bytes(21) + bytes([4]) + arrays
    assert hevc_parameter_sets_from_hvcc(record) == bitstream.join_annexb([vps, sps, pps])
    assert hevc_parameter_sets_from_hvcc(
        bitstream.join_annexb([vps, sei])
    ) == bitstream.join_annexb([vps])


async def test_missing_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot open"):
        await FileSource(f"file://{tmp_path}/nope.mp4", SourceOptions()).run(RecordingSink())
    assert worker_threads() == []
