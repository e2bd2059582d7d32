"""RtspSource against a real RTSP server we did not write (GStreamer's, via the system Python)."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
import types

import av
import pytest

from streams import bitstream
from streams.bitstream import HEVC_SPS, hevc_is_irap, hevc_nal_type
from streams.media import Codec, Packet, SourceError
from streams.registry import SourceOptions, open_source
from streams.rtsp import RtspSource
from tests.fixtures.camera import RtspCamera, free_port, requires_rtsp_camera
from tests.streams.conftest import CameraFactory, Collect, CollectingSink

pytestmark = [pytest.mark.rtsp, requires_rtsp_camera]


def decode(codec: str, packets: list[Packet], prefix: bytes = b"") -> list[tuple[int, int]]:
    """Decode Annex-B packets with FFmpeg; the (width, height) of every frame out."""
    context = av.CodecContext.create(codec, "r")
    assert isinstance(context, av.VideoCodecContext)
    sizes = []
    for index, packet in enumerate(packets):
        data = prefix + packet.data if index == 0 else packet.data
        try:
            frames = context.decode(av.Packet(data))
        except av.error.InvalidDataError:
            continue
        sizes += [(frame.width, frame.height) for frame in frames]
    for frame in context.decode(None):
        sizes.append((frame.width, frame.height))
    return sizes


def check_timing(packets: list[Packet]) -> None:
    assert packets[0].pts < 90_000, "pts should start near 0"
    deltas = {b.pts - a.pts for a, b in itertools.pairwise(packets)}
    assert deltas == {3600}, f"25 fps is 3600 ticks per picture, got {sorted(deltas)[:5]}"
    now = time.time()
    assert all(now - 10 < p.captured <= now for p in packets)


async def test_h264_tcp(h264_camera: RtspCamera, collect: Collect) -> None:
    sink = await collect(RtspSource(h264_camera.url, SourceOptions(timeout=5)), 2.5)
    assert sink.info_calls == 1 and sink.info is not None
    assert (sink.info.codec, sink.info.width, sink.info.height) == (Codec.H264, 1280, 720)
    assert sink.info.fps == 25.0
    assert bitstream.has_sps(sink.info.parameter_sets)  # learned from the in-band SPS/PPS
    packets = sink.packets
    assert len(packets) >= 25, f"only {len(packets)} pictures in 2.5 s at 25 fps"
    assert packets[0].keyframe, "the first packet handed on must be a keyframe"
    keyframes = [p for p in packets if p.keyframe]
    assert keyframes
    for packet in keyframes:
        assert bitstream.is_keyframe(packet.data)
        assert bitstream.has_sps(packet.data), "in-band SPS must stay in front of the IDR"
    assert not any(bitstream.is_keyframe(p.data) for p in packets if not p.keyframe)
    assert all(p.data.startswith(bitstream.START_CODE) for p in packets)
    check_timing(packets)
    sizes = decode("h264", packets)
    assert len(sizes) >= len(packets) - 2
    assert set(sizes) == {(1280, 720)}


async def test_registry_maps_rtsp_to_our_client(h264_camera: RtspCamera) -> None:
    source = open_source(h264_camera.url, SourceOptions())
    assert isinstance(source, RtspSource)


async def test_h264_udp(h264_camera: RtspCamera, collect: Collect) -> None:
    source = RtspSource(h264_camera.url, SourceOptions(transport="udp", timeout=5))
    sink = await collect(source, 2.5)
    assert sink.info is not None and (sink.info.width, sink.info.height) == (1280, 720)
    assert len(sink.packets) >= 25 and sink.packets[0].keyframe
    check_timing(sink.packets)
    assert source.receiver is not None and source.receiver.depacketizer.lost == 0
    assert set(decode("h264", sink.packets)) == {(1280, 720)}


async def test_sprop_only_camera(camera_factory: CameraFactory, collect: Collect) -> None:
    camera = camera_factory(codec="h264", size="640x360", inband_sps=False)
    sink = await collect(RtspSource(camera.url, SourceOptions(timeout=5)), 2.5)
    info = sink.info
    assert info is not None and (info.width, info.height) == (640, 360)
    assert bitstream.nal_types(info.parameter_sets) == [bitstream.NAL_SPS, bitstream.NAL_PPS]
    assert info.fps == 25.0
    assert sink.packets and sink.packets[0].keyframe
    assert not any(bitstream.has_sps(p.data) for p in sink.packets), "camera sends no in-band SPS"
    assert decode("h264", sink.packets) == [], "without the SDP's SPS/PPS nothing decodes"
    sizes = decode("h264", sink.packets, prefix=info.parameter_sets)
    assert len(sizes) >= len(sink.packets) - 2 and set(sizes) == {(640, 360)}


async def test_h265(camera_factory: CameraFactory, collect: Collect) -> None:
    camera = camera_factory(codec="h265", size="640x360", bitrate=800)
    sink = await collect(RtspSource(camera.url, SourceOptions(timeout=8)), 3.0)
    info = sink.info
    assert info is not None and info.codec == Codec.HEVC
    assert (info.width, info.height) == (640, 360)
    assert info.fps == 25.0  # from a=framerate or measured from the first two pictures
    assert sink.packets and sink.packets[0].keyframe
    for packet in sink.packets:
        kinds = [hevc_nal_type(n) for n in bitstream.split_annexb(packet.data)]
        assert packet.keyframe == any(hevc_is_irap(k) for k in kinds)
        if packet.keyframe:
            assert HEVC_SPS in kinds
    sizes = decode("hevc", sink.packets)
    assert len(sizes) >= len(sink.packets) - 3 and set(sizes) == {(640, 360)}


async def test_digest_auth(camera_factory: CameraFactory, collect: Collect) -> None:
    camera = camera_factory(size="320x240", user="admin", password="s3cret:pass")
    sink = await collect(RtspSource(camera.url, SourceOptions(timeout=5)), 1.5)
    assert sink.info is not None and sink.packets

    with pytest.raises(SourceError, match="401") as caught:
        await collect(RtspSource(camera.url_with("admin", "Wr0ngPa55"), SourceOptions(timeout=5)))
    assert "Wr0ngPa55" not in str(caught.value), "the password must never appear in messages"

    with pytest.raises(SourceError, match="401"):
        await collect(RtspSource(f"rtsp://127.0.0.1:{camera.port}/test", SourceOptions()))


async def test_basic_auth(camera_factory: CameraFactory, collect: Collect) -> None:
    camera = camera_factory(size="320x240", user="viewer", password="pw", basic=True)
    sink = await collect(RtspSource(camera.url, SourceOptions(timeout=5)), 1.5)
    assert sink.info is not None and sink.packets
    with pytest.raises(SourceError, match="401"):
        await collect(RtspSource(camera.url_with("viewer", "nope"), SourceOptions(timeout=5)))


async def test_stream_not_found(h264_camera: RtspCamera, collect: Collect) -> None:
    url = h264_camera.url.replace("/test", "/nothing-here")
    with pytest.raises(SourceError, match="404"):
        await collect(RtspSource(url, SourceOptions(timeout=5)))


async def test_connection_refused_fails_fast(collect: Collect) -> None:
    url = f"rtsp://user:topsecret@127.0.0.1:{free_port()}/test"
    started = time.monotonic()
    with pytest.raises(SourceError, match="cannot connect") as caught:
        await collect(RtspSource(url, SourceOptions(timeout=5)))
    assert time.monotonic() - started < 2
    assert "topsecret" not in str(caught.value)


async def test_silent_server_times_out(collect: Collect) -> None:
    async def accept_and_say_nothing(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.read()  # until the client gives up
        writer.close()

    server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        started = time.monotonic()
        with pytest.raises(SourceError, match="no answer to OPTIONS"):
            await collect(RtspSource(f"rtsp://127.0.0.1:{port}/x", SourceOptions(timeout=0.5)))
        assert time.monotonic() - started < 2


@pytest.mark.parametrize("transport", ["tcp", "udp"])
async def test_camera_dies(camera_factory: CameraFactory, transport: str) -> None:
    camera = camera_factory(size="320x240")
    sink = CollectingSink()
    task = asyncio.create_task(
        RtspSource(camera.url, SourceOptions(transport=transport, timeout=2)).run(sink)
    )
    await asyncio.wait_for(sink.first_packet.wait(), 5)
    camera.kill()
    started = time.monotonic()
    try:
        await asyncio.wait_for(task, 4)  # returns (TCP closed) or raises "no data"
    except SourceError as exc:
        assert "no data" in str(exc) or "closed" in str(exc)
    assert time.monotonic() - started < 3.5


async def test_cancel_leaves_nothing_behind(h264_camera: RtspCamera) -> None:
    before = asyncio.all_tasks()
    for transport in ("tcp", "udp"):
        sink = CollectingSink()
        task = asyncio.create_task(
            RtspSource(h264_camera.url, SourceOptions(transport=transport)).run(sink)
        )
        await asyncio.wait_for(sink.first_packet.wait(), 5)
        task.cancel()
        started = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 1.0
    await asyncio.sleep(0)
    assert asyncio.all_tasks() - before == set()


async def test_camera_restart_then_reconnect(
    camera_factory: CameraFactory, collect: Collect
) -> None:
    camera = camera_factory(size="320x240")
    first = await collect(RtspSource(camera.url, SourceOptions(timeout=5)), 1.0)
    camera.restart()
    second = await collect(RtspSource(camera.url, SourceOptions(timeout=5)), 1.0)
    assert first.packets and second.packets and second.packets[0].keyframe


async def test_mjpeg_is_handed_to_pyav(
    camera_factory: CameraFactory, collect: Collect, monkeypatch: pytest.MonkeyPatch
) -> None:
    camera = camera_factory(codec="mjpeg", size="320x240")
    handed: list[str] = []

    class FakePyAVSource:
        def __init__(self, url: str, options: SourceOptions) -> None:
            handed.append(url)

        async def run(self, sink: object) -> None:
            return None

    fake = types.ModuleType("streams.pyav_source")
    fake.PyAVSource = FakePyAVSource  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "streams.pyav_source", fake)
    await collect(RtspSource(camera.url, SourceOptions(timeout=5)))
    assert handed == [camera.url]

    monkeypatch.setitem(sys.modules, "streams.pyav_source", None)
    # GStreamer's shared media answers 503 for a moment after a client left without TEARDOWN
    camera.restart()
    with pytest.raises(SourceError, match="JPEG"):
        await collect(RtspSource(camera.url, SourceOptions(timeout=5)))
