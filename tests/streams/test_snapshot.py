"""snapshot_jpeg: a JPEG of the cached GOP's keyframe, decoded by a fresh decoder in a thread."""

from __future__ import annotations

import asyncio
import threading

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from streams import bitstream
from streams.media import CLOCK_RATE, Codec, Packet, StreamInfo
from streams.registry import SourceOptions
from streams.relay import Relay
from streams.snapshot import SnapshotUnavailable, snapshot_jpeg
from streams.synthetic import SyntheticParams, SyntheticSource, encoded_loop
from tests.fixtures.media_files import native_threads

Image = npt.NDArray[np.uint8]


def camera(codec: Codec, size: str = "320x240") -> tuple[StreamInfo, list[Packet]]:
    """Info and cached GOP of a relay fed with the start of a synthetic loop (frame 0 first)."""
    url = f"synthetic://snap?size={size}&fps=25&gop=5&loop=0.4&codec={codec.value}"
    params = SyntheticParams.from_url(url)
    encoded = encoded_loop(params).packets(threading.Event())
    relay = Relay("snap")
    relay.publish_info(SyntheticSource(url, SourceOptions()).info(encoded))
    count = 1 if codec is Codec.MJPEG else 4  # every MJPEG packet restarts the relay's GOP
    for i, (data, keyframe) in enumerate(encoded[:count]):
        relay.publish(Packet(data, i * CLOCK_RATE // 25, keyframe, captured=1.0))
    assert relay.info is not None
    return relay.info, relay.gop()


def jpeg_image(jpeg: bytes) -> Image:
    assert jpeg.startswith(b"\xff\xd8") and jpeg.endswith(b"\xff\xd9")
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return np.asarray(image, dtype=np.uint8)


def assert_first_frame(image: Image) -> None:
    """Frame 0 of the synthetic picture: grey first bar bottom-left, blue bar bottom-right."""
    h, w = image.shape[:2]
    assert np.abs(image[h - 4, 4].astype(int) - (191, 191, 191)).max() < 40
    assert np.abs(image[h - 4, w - 4].astype(int) - (191, 0, 0)).max() < 40


@pytest.mark.parametrize("codec", [Codec.H264, Codec.HEVC, Codec.MJPEG])
async def test_snapshot_of_each_codec(codec: Codec) -> None:
    info, gop = camera(codec)
    image = jpeg_image(await snapshot_jpeg(info, gop))
    assert image.shape == (240, 320, 3)
    assert_first_frame(image)


async def test_max_width_and_quality() -> None:
    info, gop = camera(Codec.H264, "640x360")
    full = await snapshot_jpeg(info, gop, quality=95)
    small = await snapshot_jpeg(info, gop, max_width=160, quality=30)
    assert jpeg_image(full).shape == (360, 640, 3)
    assert jpeg_image(small).shape == (90, 160, 3)
    assert len(small) < len(full) / 4
    assert jpeg_image(await snapshot_jpeg(info, gop, max_width=2000)).shape == (360, 640, 3)


async def test_keyframe_without_sps_uses_the_stream_parameter_sets() -> None:
    info, gop = camera(Codec.H264)
    bare = [
        n for n in bitstream.split_annexb(gop[0].data) if bitstream.nal_type(n) == bitstream.NAL_IDR
    ]
    stripped = [Packet(bitstream.join_annexb(bare), gop[0].pts, True), *gop[1:]]
    assert not bitstream.has_sps(stripped[0].data)
    assert_first_frame(jpeg_image(await snapshot_jpeg(info, stripped)))
    # without any parameter sets there is nothing to decode: a clear error, not garbage
    blind = StreamInfo(Codec.H264, 320, 240, 25.0)
    with pytest.raises(SnapshotUnavailable):
        await snapshot_jpeg(blind, stripped)


async def test_starts_at_the_keyframe_when_the_gop_has_leading_packets() -> None:
    info, gop = camera(Codec.H264)
    assert_first_frame(jpeg_image(await snapshot_jpeg(info, [*gop[2:4], *gop])))


async def test_no_keyframe_yet() -> None:
    info, gop = camera(Codec.H264)
    with pytest.raises(SnapshotUnavailable, match="no keyframe"):
        await snapshot_jpeg(info, [])
    with pytest.raises(SnapshotUnavailable, match="no keyframe"):
        await snapshot_jpeg(info, gop[1:])
    with pytest.raises(SnapshotUnavailable):
        await snapshot_jpeg(StreamInfo(Codec.OTHER), gop)


async def test_decoder_is_dropped_and_no_thread_left() -> None:
    info, gop = camera(Codec.HEVC, "640x360")

    def ours() -> set[str]:  # the loop's own executor threads (asyncio_N) are not ours
        return {t.name for t in threading.enumerate() if not t.name.startswith("asyncio_")}

    def ffmpeg_threads() -> int:  # kernel threads that are not Python threads
        return native_threads() - len(threading.enumerate())

    before, before_native = ours(), ffmpeg_threads()
    for _ in range(3):
        await snapshot_jpeg(info, gop)
    await asyncio.sleep(0.05)
    assert ours() == before
    assert ffmpeg_threads() == before_native, "a decoder (or its threads) was kept"
