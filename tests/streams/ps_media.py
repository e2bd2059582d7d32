"""Test material for the PS tests: encoded clips from the synthetic camera's encoder, muxed."""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

from streams.media import CLOCK_RATE, Codec
from streams.mpegps import AccessUnit, PsDemuxer, PsMuxer
from streams.synthetic import Encoder, Painter, SyntheticParams

FPS = 25
STEP = CLOCK_RATE // FPS


@dataclass(frozen=True)
class Clip:
    codec: Codec
    width: int
    height: int
    units: tuple[tuple[bytes, int, bool], ...]  # (Annex-B data, pts, keyframe)


@functools.cache
def clip(codec: Codec = Codec.H264, frames: int = 30, gop: int = 10, size: str = "320x240") -> Clip:
    """`frames` pictures of the synthetic scene, a keyframe every `gop`, encoded once."""
    width, height = (int(x) for x in size.split("x"))
    params = SyntheticParams(
        "ps", width=width, height=height, fps=FPS, gop=gop, bitrate=600_000, codec=codec
    )
    painter, encoder = Painter(params, frames), Encoder(params)
    out: list[tuple[bytes, bool]] = []
    for i in range(frames):
        out += encoder.encode(painter.draw(i), i)
    out += encoder.encode(None, frames)
    assert len(out) == frames and out[0][1]
    units = tuple((data, i * STEP, key) for i, (data, key) in enumerate(out))
    return Clip(codec, width, height, units)


def mux_packs(material: Clip, **options: object) -> list[bytes]:
    """One pack per picture, as a GB/T 28181 camera sends them."""
    muxer = PsMuxer(material.codec, **options)  # type: ignore[arg-type]
    return [muxer.video(data, pts, keyframe=key) for data, pts, key in material.units]


def summary(units: list[AccessUnit]) -> list[tuple[bytes, int, bool]]:
    return [(u.data, u.pts, u.keyframe) for u in units if u.is_video]


def demux_all(
    stream: bytes, chunks: list[int] | None = None, **options: object
) -> tuple[list[AccessUnit], PsDemuxer]:
    """Feed `stream` whole, or cut at the chunk sizes given (cycled), then flush."""
    demuxer = PsDemuxer(**options)  # type: ignore[arg-type]
    out: list[AccessUnit] = []
    if chunks is None:
        out += demuxer.feed(stream)
    else:
        pos, index = 0, 0
        while pos < len(stream):
            size = chunks[index % len(chunks)]
            out += demuxer.feed(stream[pos : pos + size])
            pos += size
            index += 1
    out += demuxer.flush()
    return out, demuxer


def random_chunks(seed: int, largest: int = 3000, count: int = 500) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(1, largest) for _ in range(count)]


def fake_picture(size: int, seed: int = 1, idr: bool = True) -> bytes:
    """An H.264 access unit of `size` bytes: an SPS-less IDR/slice without any 00 00 in it."""
    body = random.Random(seed).randbytes(size - 6).replace(b"\x00", b"\x01")
    return b"\x00\x00\x00\x01" + bytes((0x65 if idr else 0x41,)) + b"\x88" + body
