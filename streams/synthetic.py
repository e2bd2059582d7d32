"""Simulated cameras for demos and tests, with moving colour bars and a moving box:

    synthetic://NAME?size=1280x720&fps=25&gop=50&bitrate=1500k&codec=h264&live=0&loop=4

NAME and a frame counter are burned in.

- `live=0` (default) encodes a loop of a few seconds ONCE, in a worker thread, and replays its
  packets at real time from the event loop with fresh, continuous timestamps: next to no CPU.
  Loops are cached per parameter set (NAME included, since it is burned in): cameras sharing
  one URL share one encode; give demo cameras the same NAME to make twenty cost one encode.
- `live=1` encodes live in a thread with the wall-clock time (HH:MM:SS.mmm) burned in and the
  capture time in `Packet.meta["capture_ms"]`, for latency measurements.
- `codec=h264|hevc|mjpeg` makes non-H.264 cameras for tests of conversion paths.
- `scene=bars` (default) is the moving picture above. For motion analysis and mosaics:
  `scene=static` is a still room (NAME burned in, no counter), `scene=intruder` the same room
  where a dark box walks in from the left after `enter` seconds (default 2) and stops at 70 %
  of the width, on the middle band of the picture (give it a `loop` longer than the test),
  and `scene=solid&colour=RRGGBB` a plain colour (NAME small in a corner).
"""

from __future__ import annotations

import asyncio
import functools
import math
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import cast
from urllib.parse import parse_qs, unquote, urlsplit

import av
import cv2
import numpy as np
import numpy.typing as npt
from av.video.codeccontext import VideoCodecContext

from streams.bitstream import inband_parameter_sets
from streams.media import CLOCK_RATE, Codec, Packet, PacketSink, SourceError, StreamInfo
from streams.registry import SourceOptions
from streams.threads import Emit, Stopped, run_in_thread

LOOP_SECONDS = 4.0
Image = npt.NDArray[np.uint8]
Encoded = tuple[bytes, bool]  # (Annex-B or JPEG data, keyframe)
# 75 % colour bars, BGR: white, yellow, cyan, green, magenta, red, blue
BARS = [
    (191, 191, 191),
    (0, 191, 191),
    (191, 191, 0),
    (0, 191, 0),
    (191, 0, 191),
    (0, 0, 191),
    (191, 0, 0),
]


SCENES = ("bars", "static", "intruder", "solid")


def _colour(text: str) -> tuple[int, int, int]:
    """RRGGBB (hex) → a BGR tuple."""
    value = int(text.lstrip("#"), 16)
    return (value & 0xFF, (value >> 8) & 0xFF, (value >> 16) & 0xFF)


def _bitrate(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


@dataclass(frozen=True, slots=True)
class SyntheticParams:
    name: str
    width: int = 1280
    height: int = 720
    fps: int = 25
    gop: int = 50
    bitrate: int = 1_500_000
    codec: Codec = Codec.H264
    live: bool = False
    loop: float = LOOP_SECONDS  # length of the replayed loop, seconds (whole GOPs)
    scene: str = "bars"  # bars | static | intruder | solid (see the module docstring)
    colour: tuple[int, int, int] = (0, 0, 0)  # scene=solid, BGR
    enter: float = 2.0  # scene=intruder: seconds into the loop when the box starts to enter

    @classmethod
    def from_url(cls, url: str) -> SyntheticParams:
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            width, height = (int(x) for x in query.get("size", "1280x720").lower().split("x"))
            params = cls(
                name=unquote(parts.netloc + parts.path).strip("/") or "synthetic",
                width=width - width % 2,
                height=height - height % 2,
                fps=int(query.get("fps", "25")),
                gop=int(query.get("gop", "50")),
                bitrate=_bitrate(query.get("bitrate", "1500k")),
                codec=Codec.from_name(query.get("codec", "h264")),
                live=query.get("live", "0") in ("1", "true", "yes"),
                loop=float(query.get("loop", str(LOOP_SECONDS))),
                scene=query.get("scene", "bars"),
                colour=_colour(query.get("colour", "000000")),
                enter=float(query.get("enter", "2")),
            )
        except ValueError as exc:
            raise SourceError(f"bad synthetic camera URL {url!r}: {exc}") from None
        if params.codec not in (Codec.H264, Codec.HEVC, Codec.MJPEG):
            raise SourceError(f"synthetic camera: codec must be h264, hevc or mjpeg ({url!r})")
        if params.scene not in SCENES:
            raise SourceError(f"synthetic camera: scene must be one of {', '.join(SCENES)}")
        if not (
            16 <= params.width <= 4096
            and 16 <= params.height <= 4096
            and 1 <= params.fps <= 120
            and params.gop >= 1
            and params.bitrate > 0
            and 0 < params.loop <= 60
        ):
            raise SourceError(f"synthetic camera: parameters out of range ({url!r})")
        return params

    @property
    def loop_frames(self) -> int:
        """Whole GOPs covering about `loop` seconds, so every loop starts on a keyframe."""
        return self.gop * max(1, round(self.loop * self.fps / self.gop))


class Painter:
    """Draws the test picture (BGR) for frame `index` of a loop of `period` frames."""

    def __init__(self, params: SyntheticParams, period: int) -> None:
        self.params = params
        self.period = period
        w, h = params.width, params.height
        self.bars: Image = np.zeros((h, w, 3), np.uint8)
        for i, colour in enumerate(BARS):
            self.bars[:, i * w // len(BARS) : (i + 1) * w // len(BARS)] = colour
        self.scale = max(0.4, h / 720 * 1.2)
        self.box = max(8, h // 6)
        self._room_image: Image | None = None  # the still scenes' background, drawn once

    def draw(self, index: int, extra: str = "") -> Image:
        p = self.params
        if p.scene != "bars":
            return self._scene(index)
        phase = (index % self.period) / self.period  # one full cycle per loop: seamless
        img: Image = np.roll(self.bars, int(phase * p.width), axis=1)
        x = int((p.width - self.box) * (0.5 + 0.5 * math.sin(2 * math.pi * phase)))
        y = int((p.height - self.box) * (0.5 + 0.5 * math.cos(2 * math.pi * phase)))
        img[y : y + self.box, x : x + self.box] = 255
        lines = [p.name, f"#{index % self.period:05d}", *([extra] if extra else [])]
        line_h = int(36 * self.scale)
        cv2.rectangle(img, (0, 0), (int(420 * self.scale), line_h * len(lines) + 10), (0, 0, 0), -1)
        for i, text in enumerate(lines):
            cv2.putText(
                img,
                text,
                (8, line_h * (i + 1)),
                cv2.FONT_HERSHEY_SIMPLEX,
                self.scale,
                (255, 255, 255),
                max(1, int(2 * self.scale)),
                cv2.LINE_AA,
            )
        return img

    def _scene(self, index: int) -> Image:
        """The still scenes (static, intruder, solid): nothing moves but the intruder."""
        p = self.params
        if p.scene == "solid":
            img: Image = np.empty((p.height, p.width, 3), np.uint8)
            img[:] = p.colour
            cv2.putText(
                img,
                p.name,
                (4, max(12, p.height // 20)),
                cv2.FONT_HERSHEY_SIMPLEX,
                max(0.3, p.height / 1000),
                (255, 255, 255),
                1,
                cv2.LINE_AA,
            )
            return img
        img = self._room().copy()
        seconds = (index % self.period) / p.fps
        if p.scene == "intruder" and seconds >= p.enter:
            size = max(8, p.height // 4)
            x = min(int(0.7 * p.width), int(-size + (seconds - p.enter) * 0.35 * p.width))
            y = (p.height - size) // 2
            img[y : y + size, max(0, x) : max(0, x + size)] = (40, 40, 40)
        return img

    def _room(self) -> Image:
        room = self._room_image
        if room is None:
            p = self.params
            ramp = np.linspace(150, 210, p.width, dtype=np.float32).astype(np.uint8)
            room = np.repeat(np.repeat(ramp[None, :, None], p.height, 0), 3, 2)
            w, h = p.width, p.height
            cv2.rectangle(room, (w // 10, h // 10), (w // 4, h // 3), (90, 120, 150), -1)
            cv2.rectangle(
                room, (w * 3 // 4, h * 2 // 3), (w * 9 // 10, h * 9 // 10), (120, 150, 90), -1
            )
            cv2.putText(
                room,
                p.name,
                (8, max(16, int(30 * self.scale))),
                cv2.FONT_HERSHEY_SIMPLEX,
                self.scale,
                (0, 0, 0),
                2,
                cv2.LINE_AA,
            )
            self._room_image = room
        return room


class Encoder:
    """One PyAV encoder for the synthetic picture (thread side only)."""

    def __init__(self, params: SyntheticParams) -> None:
        name = {Codec.H264: "libx264", Codec.HEVC: "libx265", Codec.MJPEG: "mjpeg"}[params.codec]
        ctx = cast(VideoCodecContext, av.CodecContext.create(name, "w"))
        ctx.width, ctx.height = params.width, params.height
        ctx.pix_fmt = "yuvj420p" if params.codec is Codec.MJPEG else "yuv420p"
        ctx.time_base = Fraction(1, CLOCK_RATE)
        ctx.framerate = Fraction(params.fps)
        ctx.gop_size = params.gop
        ctx.bit_rate = params.bitrate
        ctx.thread_count = 1  # sliced threads + in-band SPS break pictures (MEDIA-NOTES)
        gop = f"keyint={params.gop}:min-keyint={params.gop}:scenecut=0"
        if params.codec is Codec.H264:  # constrained baseline: no B-frames
            ctx.options = {
                "preset": "ultrafast",
                "tune": "zerolatency",
                "profile": "baseline",
                "x264-params": f"{gop}:repeat-headers=1",
            }
        elif params.codec is Codec.HEVC:
            ctx.options = {
                "preset": "ultrafast",
                "tune": "zerolatency",
                "x265-params": f"{gop}:bframes=0:repeat-headers=1:log-level=error",
            }
        self.ctx = ctx
        self.period = CLOCK_RATE // params.fps

    def encode(self, img: Image | None, index: int) -> list[Encoded]:
        if img is None:
            return [(bytes(p), p.is_keyframe) for p in self.ctx.encode(None)]
        yuv = cast(Image, cv2.cvtColor(img, cv2.COLOR_BGR2YUV_I420))
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        if self.ctx.pix_fmt != "yuv420p":
            frame = frame.reformat(format=self.ctx.pix_fmt)
        frame.pts = index * self.period
        frame.time_base = self.ctx.time_base
        return [(bytes(p), p.is_keyframe) for p in self.ctx.encode(frame)]


class EncodedLoop:
    """A loop of encoded packets for one parameter set, encoded once on first use."""

    def __init__(self, params: SyntheticParams) -> None:
        self.params = params
        self.encodes = 0  # how many times the loop was encoded (tests: once per parameter set)
        self._lock = threading.Lock()
        self._packets: list[Encoded] = []

    def packets(self, stop: threading.Event) -> list[Encoded]:
        """Blocking: the loop's packets, encoding them first if no one has yet."""
        with self._lock:
            if not self._packets:
                self._packets = self._encode(stop)
                self.encodes += 1
            return self._packets

    def _encode(self, stop: threading.Event) -> list[Encoded]:
        n = self.params.loop_frames
        painter, encoder = Painter(self.params, n), Encoder(self.params)
        out: list[Encoded] = []
        for i in range(n):
            if stop.is_set():
                raise Stopped  # another source may still encode it; nothing cached
            out += encoder.encode(painter.draw(i), i)
        out += encoder.encode(None, n)
        if len(out) != n or not out[0][1]:
            raise SourceError(f"synthetic {self.params.name}: encoder gave {len(out)}/{n} packets")
        return out


# The one piece of module-level state: a cache of pure results (encoded loops keyed by their
# parameters), so that cameras with the same parameters encode once. Called from the event
# loop thread only; the encode itself happens later, in a worker thread, under the loop's lock.
@functools.lru_cache(maxsize=32)
def encoded_loop(params: SyntheticParams) -> EncodedLoop:
    return EncodedLoop(params)


class SyntheticSource:
    """A simulated camera (see the module docstring)."""

    def __init__(self, url: str, options: SourceOptions) -> None:
        # a bad URL is reported by run(), like any camera error (the supervisor calls us
        # outside its error handling); `check()` raises it at once for config validation
        self.error: SourceError | None = None
        try:
            self.params = SyntheticParams.from_url(url)
        except SourceError as exc:
            self.params, self.error = SyntheticParams("invalid"), exc
        self.options = options

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def info(self, packets: list[Encoded]) -> StreamInfo:
        p = self.params
        return StreamInfo(
            p.codec, p.width, p.height, float(p.fps), inband_parameter_sets(p.codec, packets[0][0])
        )

    async def run(self, sink: PacketSink) -> None:
        self.check()
        if self.params.live:
            name = f"synthetic-{self.params.name}"
            await run_in_thread(name, lambda emit, stop: self._live(sink, emit, stop))
            return
        loop = encoded_loop(self.params)
        got: list[list[Encoded]] = []
        await run_in_thread(
            f"synthetic-encode-{self.params.name}", lambda _e, stop: got.append(loop.packets(stop))
        )
        packets = got[0]
        sink.on_info(self.info(packets))
        clock = asyncio.get_running_loop()
        fps = self.params.fps
        start, index = clock.time(), 0
        while True:
            for data, keyframe in packets:
                delay = start + index / fps - clock.time()
                if delay < -1.0:  # the loop stalled: resync rather than burst
                    start -= delay
                elif delay > 0:
                    await asyncio.sleep(delay)
                pts = index * CLOCK_RATE // fps
                sink.on_packet(Packet(data, pts, keyframe, captured=time.time()))
                index += 1

    def _live(self, sink: PacketSink, emit: Emit, stop: threading.Event) -> None:
        p = self.params
        painter, encoder = Painter(p, p.loop_frames), Encoder(p)
        start, index, informed = time.monotonic(), 0, False
        while True:
            delay = start + index / p.fps - time.monotonic()
            if delay < -1.0:
                start -= delay
            elif delay > 0 and stop.wait(delay):
                raise Stopped
            if stop.is_set():
                raise Stopped
            now = time.time()
            clock = f"{time.strftime('%H:%M:%S', time.localtime(now))}.{int(now * 1000) % 1000:03d}"
            for data, keyframe in encoder.encode(painter.draw(index, clock), index):
                if not informed:
                    emit(functools.partial(sink.on_info, self.info([(data, keyframe)])))
                    informed = True
                packet = Packet(
                    data,
                    index * encoder.period,
                    keyframe,
                    captured=now,
                    meta={"capture_ms": int(now * 1000)},
                )
                emit(functools.partial(sink.on_packet, packet))
            index += 1
