"""Stream: the supervisor of one camera.

It pulls the camera on demand (while something holds a lease, plus a linger time, or always
when the camera records or is analysed), reconnects with backoff, and publishes into one
`Relay` that outlives every connection, so viewers keep their peer connection across a camera
reconnect and resume when packets flow again. One upstream pull per camera, whatever the
number of consumers. The output timeline stays monotonic across reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from streams.hooks import Hook
from streams.media import CLOCK_RATE, Codec, Packet, Source, SourceError, StreamInfo
from streams.registry import SourceOptions, open_source, redact_url
from streams.relay import Relay

if TYPE_CHECKING:
    from streams.decoder import StreamDecoder

log = logging.getLogger(__name__)

DEFAULT_BACKOFF: tuple[tuple[float, int], ...] = ((1.0, 5), (5.0, 5), (10.0, 10), (60.0, 1))


class StreamState(enum.StrEnum):
    IDLE = "idle"  # nobody needs the camera; not pulled
    CONNECTING = "connecting"
    ONLINE = "online"
    OFFLINE = "offline"  # wanted but unreachable; retrying


def backoff_delays(schedule: Sequence[tuple[float, int]]) -> Callable[[int], float]:
    """Delay before retry number `attempt` (0-based); the last step repeats forever."""

    def delay(attempt: int) -> float:
        for seconds, times in schedule:
            if attempt < times:
                return seconds
            attempt -= times
        return schedule[-1][0] if schedule else 1.0

    return delay


class Lease:
    """A claim on a stream; release it (or use `with`) when done."""

    def __init__(self, stream: Stream, holder: str, viewer: bool) -> None:
        self.stream = stream
        self.holder = holder
        self.viewer = viewer  # a person watching (counted in `viewers`), not a probe or snapshot
        self.released = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.stream._release(self)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Stream:
    def __init__(
        self,
        name: str,
        url: str,
        options: SourceOptions | None = None,
        *,
        linger: float = 10.0,
        always_on: bool = False,
        instant_start: bool = True,
        backoff: Sequence[tuple[float, int]] = DEFAULT_BACKOFF,
        source_factory: Callable[[str, SourceOptions], Source] = open_source,
    ) -> None:
        self.name = name
        self.url = url
        self.options = options or SourceOptions(name=name)
        self.linger = linger
        self.always_on = always_on
        self.relay = Relay(name, replay=instant_start)
        self._delay = backoff_delays(backoff)
        self._source_factory = source_factory
        self._leases: set[Lease] = set()
        self._task: asyncio.Task[None] | None = None
        self._linger_handle: asyncio.TimerHandle | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._state = StreamState.IDLE
        self._state_changed = asyncio.Event()
        # called as listener(stream, old, new) on every state change (event loop thread)
        self.state_listeners: Hook[[Stream, StreamState, StreamState]] = Hook(f"{name} state")
        # timeline continuity across connections
        self._offset = 0
        self._last_pts: int | None = None
        self._new_session = True
        self._frame_ticks = CLOCK_RATE // 25
        # counters
        self.connects = 0
        self.attempt = 0  # connection attempts of this pull that failed so far (0: the first)
        self.reconnects = 0
        self.last_error = ""
        self.online_since = 0.0
        self._fps_window: list[float] = []
        self._source: Source | None = None
        self._h264: Relay | None = None
        self._transcoder: _Transcoder | None = None
        self._decoder: StreamDecoder | None = None

    # -- state ----------------------------------------------------------------------------
    @property
    def state(self) -> StreamState:
        return self._state

    def _set_state(self, state: StreamState) -> None:
        if state is not self._state:
            old = self._state
            log.info("[%s] %s -> %s", self.name, old, state)
            self._state = state
            self._state_changed.set()
            self._state_changed = asyncio.Event()
            self.state_listeners.emit(self, old, state)

    async def wait_state(self, *states: StreamState, timeout: float) -> StreamState:
        async with asyncio.timeout(timeout):
            while self._state not in states:
                await self._state_changed.wait()
        return self._state

    @property
    def viewers(self) -> int:
        return sum(1 for lease in self._leases if lease.viewer)

    @property
    def fps(self) -> float:
        w = self._fps_window
        if len(w) < 2 or time.time() - w[-1] > 2.0:
            return 0.0
        return (len(w) - 1) / (w[-1] - w[0]) if w[-1] > w[0] else 0.0

    # -- demand ---------------------------------------------------------------------------
    def acquire(self, holder: str, *, viewer: bool = False) -> Lease:
        lease = Lease(self, holder, viewer)
        self._leases.add(lease)
        if self._linger_handle is not None:
            self._linger_handle.cancel()
            self._linger_handle = None
        self._ensure_running()
        return lease

    def _release(self, lease: Lease) -> None:
        self._leases.discard(lease)
        if not self._leases and not self.always_on and self._task is not None:
            if self._linger_handle is not None:
                self._linger_handle.cancel()
            loop = asyncio.get_running_loop()
            self._linger_handle = loop.call_later(self.linger, self._linger_expired)

    def _linger_expired(self) -> None:
        self._linger_handle = None
        if not self._leases and not self.always_on and self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_task(self._stop_pull())

    async def _stop_pull(self) -> None:
        try:
            await self._cancel_task()
            await self._stop_transcoder()
            self.relay.clear_gop()
            self._set_state(StreamState.IDLE)
        finally:
            self._stopping = None
            if self._leases or self.always_on:  # someone came back while we stopped
                self._ensure_running()

    def _ensure_running(self) -> None:
        if self._stopping is not None:
            return  # _stop_pull restarts when it sees the new lease
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._supervise(), name=f"stream:{self.name}"
            )

    def start(self) -> None:
        """Start pulling now (always-on cameras)."""
        self._ensure_running()

    async def _cancel_task(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        if self._linger_handle is not None:
            self._linger_handle.cancel()
            self._linger_handle = None
        if self._stopping is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._stopping
        self._leases.clear()
        self.always_on = False
        await self._cancel_task()
        await self._stop_transcoder()
        if self._decoder is not None:
            await self._decoder.close()
        self.relay.close()
        self._set_state(StreamState.IDLE)

    # -- the pull loop --------------------------------------------------------------------
    async def _supervise(self) -> None:
        attempt = 0
        while True:
            self.attempt = attempt  # before the state change: its listeners read it
            self._set_state(StreamState.CONNECTING)
            self._new_session = True
            started = time.monotonic()
            self.connects += 1
            try:
                source = self._source_factory(self.url, self.options)
                self._source = source
                await source.run(self)
                self.last_error = "camera ended the stream"
            except SourceError as err:
                self.last_error = str(err)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a bug in a source must not kill the supervisor
                log.exception("[%s] source failed", self.name)
                self.last_error = f"{type(err).__name__}: {err}"
            if self._state is StreamState.ONLINE and time.monotonic() - started > 30:
                attempt = 0  # a long healthy session resets the backoff
            self._set_state(StreamState.OFFLINE)
            delay = self._delay(attempt)
            log.warning(
                "[%s] %s: %s; retry %d in %.0f s",
                self.name,
                redact_url(self.url),
                self.last_error,
                attempt + 1,
                delay,
            )
            attempt += 1
            self.reconnects += 1
            await asyncio.sleep(delay)

    # -- PacketSink -----------------------------------------------------------------------
    def on_info(self, info: StreamInfo) -> None:
        if info.fps > 0:
            self._frame_ticks = int(CLOCK_RATE / info.fps)
        self.relay.publish_info(info)

    def on_packet(self, packet: Packet) -> None:
        if self._new_session:
            self._new_session = False
            if self._last_pts is not None:
                self._offset = self._last_pts + self._frame_ticks - packet.pts
            self.relay.clear_gop()
            self.online_since = time.time()
            self._set_state(StreamState.ONLINE)
        pts = packet.pts + self._offset
        if self._last_pts is not None and pts <= self._last_pts - 10 * CLOCK_RATE:
            # the source's clock jumped back (camera restart inside one session): rebase
            self._offset += self._last_pts + self._frame_ticks - pts
            pts = self._last_pts + self._frame_ticks
        self._last_pts = pts
        now = packet.captured or time.time()
        w = self._fps_window
        w.append(now)
        if len(w) > 50:
            del w[0]
        if pts != packet.pts:
            packet = Packet(packet.data, pts, packet.keyframe, packet.captured, packet.meta)
        self.relay.publish(packet)

    # -- decoded pictures and H.264 for WebRTC -------------------------------------------
    def decoder(self) -> StreamDecoder:
        """The stream's one decoder, shared by its transcoder and its decoded tap; it runs
        only while one of them reads it."""
        if self._decoder is None:
            from streams.decoder import StreamDecoder  # imported only when pictures are needed

            self._decoder = StreamDecoder(self.relay, name=f"decode-{self.name}")
        return self._decoder

    def h264_relay(self) -> Relay:
        """The relay WebRTC viewers read: the camera's own when it sends H.264, else one
        shared transcoder output (decoded by the stream's one decoder, encoded once for
        every viewer)."""
        info = self.relay.info
        if info is None or info.codec is Codec.H264:
            return self.relay
        if self._h264 is None or self._h264.closed:
            from streams.transcode import Transcoder  # imported only when a camera needs it

            self._h264 = Relay(f"{self.name}/h264")
            self._transcoder = Transcoder(
                self.relay, self._h264, name=f"{self.name}/h264", decoder=self.decoder()
            )
            self._transcoder.start()
        return self._h264

    @property
    def transcoder(self) -> _Transcoder | None:
        return self._transcoder

    async def _stop_transcoder(self) -> None:
        transcoder, self._transcoder = self._transcoder, None
        if transcoder is not None:
            await transcoder.stop()
        if self._h264 is not None:
            self._h264.close()
            self._h264 = None

    def stats(self) -> dict[str, object]:
        out: dict[str, object] = {
            "state": str(self._state),
            "viewers": self.viewers,
            "connects": self.connects,
            "reconnects": self.reconnects,
            "last_error": self.last_error,
            "fps": round(self.fps, 2),
            **self.relay.stats(),
        }
        if self._transcoder is not None:
            out["transcoder"] = self._transcoder.stats()
        if self._decoder is not None and self._decoder.running:
            out["decoder"] = self._decoder.stats()
        source_stats = getattr(self._source, "stats", None)
        if callable(source_stats):
            out["source"] = source_stats()
        return out


class _Transcoder(Protocol):
    """What the stream needs of `streams.transcode.Transcoder`."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    def request_keyframe(self) -> None: ...

    def stats(self) -> dict[str, int]: ...
