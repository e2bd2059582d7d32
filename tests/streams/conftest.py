"""Fixtures for the RTSP client tests: GStreamer test cameras and a collecting sink."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from streams.media import Packet, Source, StreamInfo
from tests.fixtures.camera import RtspCamera


class CollectingSink:
    """A PacketSink that keeps everything, and checks the contract's ordering."""

    def __init__(self) -> None:
        self.info: StreamInfo | None = None
        self.info_calls = 0
        self.packets: list[Packet] = []
        self.first_packet = asyncio.Event()

    def on_info(self, info: StreamInfo) -> None:
        assert not self.packets, "on_info() after a packet"
        self.info = info
        self.info_calls += 1

    def on_packet(self, packet: Packet) -> None:
        assert self.info is not None, "on_packet() before on_info()"
        self.packets.append(packet)
        self.first_packet.set()


Collect = Callable[..., Awaitable[CollectingSink]]


@pytest.fixture
def collect() -> Collect:
    """`await collect(source, seconds)`: run the source that long, cancel it, return the sink.

    An exception from run() (SourceError) propagates; run() ending early is fine."""

    async def run(source: Source, seconds: float = 2.0) -> CollectingSink:
        sink = CollectingSink()
        task = asyncio.create_task(source.run(sink))
        done, _ = await asyncio.wait([task], timeout=seconds)
        if not done:
            task.cancel()
            await asyncio.wait([task])
            assert task.cancelled(), "run() swallowed its cancellation"
        else:
            task.result()
        return sink

    return run


CameraFactory = Callable[..., RtspCamera]


@pytest.fixture
def camera_factory() -> Iterator[CameraFactory]:
    """`camera_factory(codec="h265", ...)`: a started camera, stopped after the test."""
    cameras: list[RtspCamera] = []

    def make(**kwargs: Any) -> RtspCamera:
        camera = RtspCamera(**kwargs)
        cameras.append(camera)
        camera.start()
        return camera

    yield make
    for camera in cameras:
        camera.stop()


@pytest.fixture(scope="module")
def h264_camera() -> Iterator[RtspCamera]:
    """One 1280x720 25 fps H.264 camera shared by a module's tests (SPS/PPS in-band)."""
    with RtspCamera(codec="h264") as camera:
        yield camera
