"""DecodedTap: one camera decoded ONCE, at a reduced rate and size, for every analyser.

Motion detection, the fire heuristic, alert snapshots and wall mosaics all need pictures, and
decoding is the expensive part, so each camera has at most one tap however many of them look.
The tap holds a lease on the camera's stream and reads the pictures of the stream's one
`StreamDecoder` (`streams.decoder`), which the stream's transcoder shares when browsers watch a
camera they cannot play as is: one decode per camera either way. Each user takes a `TapLease`
saying how often (`fps`) and how large (`height`) it wants pictures; the tap converts only the
frames someone is due for, scaled once to the largest height asked for. `keyframes_only` asks
for keyframes alone (when nothing else reads the decoder, only they are decoded, and a camera
with a short GOP then costs next to nothing). The last lease released stops the tap after
`linger`.

A lease's `listener(frame)` runs in the decode thread (keep it to small numpy/OpenCV work); it
may return a callback, which is then run on the event loop. `tap.latest` is the newest picture,
for readers that poll at their own pace (the mosaic thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

import av
import numpy as np
import numpy.typing as npt

from streams.decoder import StreamDecoder
from streams.media import CLOCK_RATE, Packet, StreamInfo
from streams.relay import Relay
from streams.threads import Emit

log = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    image: Image  # BGR, scaled to the tap's height (aspect kept); shared: read only
    pts: int  # 90 kHz
    captured: float  # time.time() when the picture entered the hub
    seq: int  # pictures delivered by this tap so far
    source_size: tuple[int, int]  # the camera's width, height


FrameListener = Callable[[DecodedFrame], Callable[[], None] | None]


class Releasable(Protocol):
    def release(self) -> None: ...


class Pullable(Protocol):
    """What a tap needs of a camera's stream (`streams.stream.Stream` fits)."""

    relay: Relay

    def acquire(self, holder: str, *, viewer: bool = False) -> Releasable: ...

    def decoder(self) -> StreamDecoder: ...


class TapLease:
    """One user's claim on a tap: pictures at `fps`, at least `height` pixels high."""

    def __init__(
        self, tap: DecodedTap, fps: float, height: int, listener: FrameListener | None
    ) -> None:
        self.tap = tap
        self.fps = fps
        self.height = height
        self.listener = listener
        self.due = -CLOCK_RATE  # decode thread: pts of the next picture for this lease
        self.released = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.tap._release(self)


class DecodedTap:
    exact = False  # FrameSink: analysis does not need the loop filter

    def __init__(
        self,
        stream: Pullable,
        *,
        name: str,
        keyframes_only: bool = False,
        linger: float = 2.0,
        on_stopped: Callable[[DecodedTap], None] | None = None,
    ) -> None:
        self.stream = stream
        self.name = name
        self.keyframes_only = keyframes_only
        self.linger = linger
        self._on_stopped = on_stopped
        self._leases: tuple[TapLease, ...] = ()  # replaced, never mutated (read by the thread)
        self._task: asyncio.Task[None] | None = None
        self._linger: asyncio.TimerHandle | None = None
        self.latest: DecodedFrame | None = None
        # counters (decoded/delivered/errors written by the decode thread only); packets,
        # drops and decoder errors are counted by the stream's decoder
        self.decoded = 0  # pictures received from the decoder
        self.delivered = 0
        self.errors = 0  # listener failures

    # -- event loop side -----------------------------------------------------------------
    def lease(
        self, *, fps: float, height: int = 0, listener: FrameListener | None = None
    ) -> TapLease:
        lease = TapLease(self, fps, height, listener)
        self._leases = (*self._leases, lease)
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), name=f"tap:{self.name}")
        return lease

    def _release(self, lease: TapLease) -> None:
        self._leases = tuple(x for x in self._leases if x is not lease)
        if not self._leases and self._task is not None and self._linger is None:
            loop = asyncio.get_running_loop()
            self._linger = loop.call_later(self.linger, self._linger_expired)

    def _linger_expired(self) -> None:
        self._linger = None
        if not self._leases and self._on_stopped is not None:
            self._on_stopped(self)  # the owner stops us (it owns the stopping task)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def users(self) -> int:
        return len(self._leases)

    async def stop(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.latest = None

    def stats(self) -> dict[str, int | float]:
        decoder = self.stream.decoder()
        return {
            "users": len(self._leases),
            "packets": decoder.packets,
            "decoded": self.decoded,
            "delivered": self.delivered,
            "drops": decoder.drops,
            "errors": self.errors + decoder.errors,
            "queued": decoder.queued,
        }

    async def _run(self) -> None:
        pull = self.stream.acquire(f"decoded:{self.name}")
        try:
            await self.stream.decoder().serve(self)
        finally:
            pull.release()

    # -- decode thread (FrameSink) -------------------------------------------------------
    def on_frame(self, frame: av.VideoFrame, packet: Packet, info: StreamInfo, emit: Emit) -> None:
        self.decoded += 1
        self._deliver(frame, packet, emit)

    def _deliver(self, frame: av.VideoFrame, packet: Packet, emit: Emit) -> None:
        pts = packet.pts
        leases = self._leases
        due = [x for x in leases if pts >= x.due or x.due - pts > 10 * CLOCK_RATE]
        if not due:
            return
        for lease in due:  # even cadence per lease; after a gap restart it here
            step = int(CLOCK_RATE / max(0.1, lease.fps))
            lease.due = lease.due + step if 0 <= pts - lease.due < step else pts + step
        height = max((x.height for x in leases), default=0) or frame.height
        height = min(height, frame.height)
        width = max(2, round(frame.width * height / frame.height / 2) * 2)
        image = cast(Image, frame.to_ndarray(format="bgr24", width=width, height=height))
        picture = DecodedFrame(
            image, pts, packet.captured, self.delivered, (frame.width, frame.height)
        )
        self.delivered += 1
        self.latest = picture
        for lease in due:
            if lease.listener is None or lease.released:
                continue
            try:
                callback = lease.listener(picture)
            except Exception:
                self.errors += 1
                log.exception("%s: frame listener failed", self.name)
                continue
            if callback is not None:
                emit(callback)


class DecodedTaps:
    """The taps of a hub, one per key (camera id, or `id/sub` for a substream)."""

    def __init__(self, *, linger: float = 2.0) -> None:
        self.linger = linger
        self._taps: dict[str, DecodedTap] = {}
        self._stopping: set[asyncio.Task[None]] = set()

    def lease(
        self,
        key: str,
        stream: Pullable,
        *,
        fps: float,
        height: int = 0,
        listener: FrameListener | None = None,
        keyframes_only: bool = False,
    ) -> TapLease:
        tap = self._taps.get(key)
        if tap is None:
            tap = DecodedTap(
                stream,
                name=key,
                keyframes_only=keyframes_only,
                linger=self.linger,
                on_stopped=self._stop,
            )
            self._taps[key] = tap
        return tap.lease(fps=fps, height=height, listener=listener)

    def get(self, key: str) -> DecodedTap | None:
        return self._taps.get(key)

    def _stop(self, tap: DecodedTap) -> None:
        if self._taps.get(tap.name) is tap:
            del self._taps[tap.name]
        task = asyncio.get_running_loop().create_task(tap.stop(), name=f"tap-stop:{tap.name}")
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def stats(self) -> dict[str, dict[str, int | float]]:
        return {key: tap.stats() for key, tap in self._taps.items()}

    async def close(self) -> None:
        taps, self._taps = list(self._taps.values()), {}
        await asyncio.gather(*(tap.stop() for tap in taps), *self._stopping)
