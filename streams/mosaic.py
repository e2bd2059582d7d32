"""Wall mosaics: N cameras composed into one picture, encoded ONCE for every viewer.

`MosaicSource` is a `Source` (streams/media.py), so a wall is an ordinary `Stream`: pulled on
demand while someone watches, its relay keeps the current GOP (instant start), viewers share
its packets. Its `run()` opens one tile feed per slot (the hub hands pictures from each
camera's `DecodedTap`, decoded once at the tile's size), then composes in one thread at
`fps`: each tile is copied in with numpy only when its camera delivered a new picture, the
camera label and a clock are drawn with OpenCV, the canvas is converted to I420 and encoded
by one libx264 (ultrafast, zerolatency, constrained baseline, one thread). Cancelling `run()`
stops the thread and closes the feeds (the taps stop when nobody else uses them).

Labels are drawn with OpenCV's Hershey font, which has no CJK glyphs: a camera whose name is
not ASCII is labelled with its id.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol, cast
from zoneinfo import ZoneInfo

import av
import cv2
import numpy as np
import numpy.typing as npt
from av.video.codeccontext import VideoCodecContext

from streams.bitstream import inband_parameter_sets
from streams.decoded import DecodedFrame
from streams.media import CLOCK_RATE, Codec, Packet, PacketSink, StreamInfo
from streams.threads import Emit, Stopped, run_in_thread

Image = npt.NDArray[np.uint8]
LAYOUTS = (1, 4, 9, 16)
STALE_SECONDS = 5.0  # a tile whose newest picture is older than this is marked stale
FONT = cv2.FONT_HERSHEY_SIMPLEX


class TileFeed(Protocol):
    """One slot's pictures; `frame()` is called from the mosaic thread."""

    label: str

    def frame(self) -> DecodedFrame | None: ...

    def close(self) -> None: ...


TileOpener = Callable[[int, int], Sequence[TileFeed | None]]  # (tile w, tile h) → feeds


@dataclass(frozen=True, slots=True)
class MosaicSpec:
    layout: int = 4  # 1, 4, 9 or 16 tiles
    width: int = 1920
    height: int = 1080
    fps: float = 15.0
    bitrate: int = 3_000_000
    timezone: str = "Asia/Shanghai"

    @property
    def grid(self) -> int:
        return math.isqrt(self.layout)

    @property
    def tile_size(self) -> tuple[int, int]:
        n = self.grid
        return (self.width // n) & ~1, (self.height // n) & ~1

    def tile_origin(self, index: int) -> tuple[int, int]:
        w, h = self.tile_size
        return (index % self.grid) * w, (index // self.grid) * h


def label_of(camera_id: str, name: str) -> str:
    return name if name and name.isascii() else camera_id


class MosaicSource:
    """A `Source` that composes tiles (see the module docstring)."""

    def __init__(self, spec: MosaicSpec, open_tiles: TileOpener, *, name: str) -> None:
        if spec.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}")
        self.spec = spec
        self.open_tiles = open_tiles
        self.name = name
        self.frames = 0  # composed pictures (mosaic thread)
        self.tile_updates = 0

    async def run(self, sink: PacketSink) -> None:
        feeds = list(self.open_tiles(*self.spec.tile_size))[: self.spec.layout]
        try:
            await run_in_thread(
                f"mosaic-{self.name}", lambda emit, stop: self._work(feeds, sink, emit, stop)
            )
        finally:
            for feed in feeds:
                if feed is not None:
                    feed.close()

    def stats(self) -> dict[str, int]:
        return {"frames": self.frames, "tile_updates": self.tile_updates}

    # -- mosaic thread -------------------------------------------------------------------
    def _encoder(self) -> VideoCodecContext:
        s = self.spec
        encoder = VideoCodecContext.create("libx264", "w")
        encoder.width, encoder.height, encoder.pix_fmt = s.width, s.height, "yuv420p"
        encoder.time_base = Fraction(1, CLOCK_RATE)
        encoder.framerate = Fraction(s.fps).limit_denominator(1001)
        encoder.gop_size = max(1, round(2 * s.fps))
        encoder.bit_rate = s.bitrate
        encoder.thread_count = 1  # sliced threads + in-band SPS break pictures (MEDIA-NOTES)
        encoder.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline"}
        return encoder

    def _work(
        self, feeds: list[TileFeed | None], sink: PacketSink, emit: Emit, stop: threading.Event
    ) -> None:
        s = self.spec
        encoder = self._encoder()
        canvas: Image = np.zeros((s.height, s.width, 3), np.uint8)
        seen: list[int] = [-1] * len(feeds)
        stale: list[bool] = [False] * len(feeds)
        for i, feed in enumerate(feeds):
            self._blank(
                canvas, i, feed.label if feed else "", "NO CAMERA" if feed is None else "CONNECTING"
            )
        for i in range(len(feeds), s.layout):
            self._blank(canvas, i, "", "")
        step = CLOCK_RATE / s.fps
        informed = False
        tz = ZoneInfo(s.timezone)
        start, index = time.monotonic(), 0
        while True:
            delay = start + index / s.fps - time.monotonic()
            if delay < -1.0:  # the host stalled: skip ahead rather than burst
                start -= delay
            elif delay > 0 and stop.wait(delay):
                raise Stopped
            if stop.is_set():
                raise Stopped
            now = time.time()
            for i, feed in enumerate(feeds):
                frame = feed.frame() if feed is not None else None
                if frame is None:
                    continue
                if frame.seq != seen[i]:
                    seen[i], stale[i] = frame.seq, False
                    self._paste(canvas, i, frame.image, feed.label if feed else "")
                    self.tile_updates += 1
                elif not stale[i] and now - frame.captured > STALE_SECONDS:
                    stale[i] = True
                    self._mark_stale(canvas, i)
            self._clock(canvas, now, tz)
            yuv = cast(Image, cv2.cvtColor(canvas, cv2.COLOR_BGR2YUV_I420))
            picture = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            picture.pts, picture.time_base = int(index * step), Fraction(1, CLOCK_RATE)
            self.frames += 1
            for out in encoder.encode(picture):
                data = bytes(out)
                if not informed:
                    if not out.is_keyframe:
                        continue
                    params = inband_parameter_sets(Codec.H264, data)
                    info = StreamInfo(Codec.H264, s.width, s.height, s.fps, params)
                    emit(functools.partial(sink.on_info, info))
                    informed = True
                pts = out.pts if out.pts is not None else int(index * step)
                packet = Packet(data, pts, out.is_keyframe, captured=now)
                emit(functools.partial(sink.on_packet, packet))
            index += 1

    def _paste(self, canvas: Image, index: int, image: Image, label: str) -> None:
        x, y = self.spec.tile_origin(index)
        w, h = self.spec.tile_size
        if image.shape[0] != h or image.shape[1] != w:
            image = cast(Image, cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA))
        canvas[y : y + h, x : x + w] = image
        self._label(canvas, x, y, h, label)

    def _label(self, canvas: Image, x: int, y: int, h: int, label: str) -> None:
        if not label:
            return
        scale = max(0.4, h / 540)
        (tw, th), base = cv2.getTextSize(label, FONT, scale, 1)
        cv2.rectangle(canvas, (x, y + h - th - base - 8), (x + tw + 10, y + h), (0, 0, 0), -1)
        cv2.putText(
            canvas, label, (x + 5, y + h - base - 4), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA
        )

    def _blank(self, canvas: Image, index: int, label: str, text: str) -> None:
        x, y = self.spec.tile_origin(index)
        w, h = self.spec.tile_size
        canvas[y : y + h, x : x + w] = 24
        if text:
            scale = max(0.4, h / 400)
            cv2.putText(
                canvas,
                text,
                (x + w // 10, y + h // 2),
                FONT,
                scale,
                (160, 160, 160),
                1,
                cv2.LINE_AA,
            )
        self._label(canvas, x, y, h, label)

    def _mark_stale(self, canvas: Image, index: int) -> None:
        x, y = self.spec.tile_origin(index)
        w, h = self.spec.tile_size
        cv2.rectangle(canvas, (x + 2, y + 2), (x + w - 3, y + h - 3), (0, 0, 255), 3)
        cv2.putText(
            canvas,
            "NO SIGNAL",
            (x + w // 10, y + h // 2),
            FONT,
            max(0.4, h / 400),
            (0, 0, 255),
            2,
            cv2.LINE_AA,
        )

    def _clock(self, canvas: Image, now: float, tz: ZoneInfo) -> None:
        text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now + _offset(now, tz)))
        scale = max(0.45, self.spec.height / 1080)
        (tw, th), base = cv2.getTextSize(text, FONT, scale, 1)
        right = self.spec.width
        cv2.rectangle(canvas, (right - tw - 12, 0), (right, th + base + 10), (0, 0, 0), -1)
        cv2.putText(
            canvas, text, (right - tw - 6, th + 5), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA
        )


def _offset(now: float, tz: ZoneInfo) -> float:
    delta = dt.datetime.fromtimestamp(now, tz).utcoffset()
    return delta.total_seconds() if delta else 0.0
