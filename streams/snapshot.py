"""JPEG snapshots from a relay's cached GOP, decoded with a fresh decoder in a worker thread.

No decoder is kept between snapshots: a snapshot is rare and a parked decoder per camera would
cost memory for nothing. The cached GOP starts on a keyframe, so decoding its first packets is
enough (one packet for intra-only codecs and most encoders; more when the decoder has delay).
"""

from __future__ import annotations

import asyncio
from typing import cast

import av
import cv2
import numpy as np
import numpy.typing as npt
from av.video.codeccontext import VideoCodecContext

from streams.bitstream import with_parameter_sets
from streams.media import Codec, Packet, StreamInfo

DECODABLE = (Codec.H264, Codec.HEVC, Codec.MJPEG, Codec.MPEG4)
MAX_PACKETS = 30  # give up if this many packets after the keyframe still yield no picture


class SnapshotUnavailable(Exception):
    """No picture to give: no keyframe cached yet, or the cached packets do not decode."""


def create_decoder(info: StreamInfo) -> VideoCodecContext:
    """A fresh single-threaded video decoder (no frame-thread delay, no extra threads)."""
    ctx = cast(VideoCodecContext, av.CodecContext.create(info.codec.value, "r"))
    ctx.thread_count = 1
    if info.codec is Codec.MPEG4 and info.parameter_sets:
        ctx.extradata = info.parameter_sets  # MPEG-4 Part 2: the VOL header
    return ctx


def _first_frame(info: StreamInfo, packets: list[Packet]) -> av.VideoFrame:
    decoder = create_decoder(info)
    try:
        for i, packet in enumerate(packets[:MAX_PACKETS]):
            data = with_parameter_sets(info, packet.data) if i == 0 else packet.data
            try:
                frames = decoder.decode(av.Packet(data))
            except av.FFmpegError:
                continue
            if frames:
                return frames[0]
        try:
            frames = decoder.decode(None)
        except av.FFmpegError:
            frames = []
        if frames:
            return frames[0]
        raise SnapshotUnavailable(f"{info.codec} keyframe did not decode")
    finally:
        del decoder


def _encode_jpeg(frame: av.VideoFrame, max_width: int | None, quality: int) -> bytes:
    width, height = frame.width, frame.height
    if max_width is not None and 0 < max_width < width:
        height = max(2, round(height * max_width / width / 2) * 2)
        width = max_width - max_width % 2
    image = frame.to_ndarray(format="bgr24", width=width, height=height)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, max(1, min(100, quality))])
    if not ok:
        raise SnapshotUnavailable("JPEG encoding failed")
    return bytes(cast(npt.NDArray[np.uint8], jpeg).tobytes())


def _snapshot(
    info: StreamInfo, packets: list[Packet], max_width: int | None, quality: int
) -> bytes:
    return _encode_jpeg(_first_frame(info, packets), max_width, quality)


async def snapshot_jpeg(
    info: StreamInfo, gop: list[Packet], *, max_width: int | None = None, quality: int = 80
) -> bytes:
    """A JPEG of the cached keyframe (`Relay.gop()`), scaled down to `max_width` if given."""
    if info.codec not in DECODABLE:
        raise SnapshotUnavailable(f"cannot decode {info.codec} for a snapshot")
    start = next((i for i, p in enumerate(gop) if p.keyframe), None)
    if start is None:
        raise SnapshotUnavailable("no keyframe yet")
    return await asyncio.to_thread(_snapshot, info, gop[start:], max_width, quality)
