"""StreamDecoder: the one decoder of a camera stream, shared by everything that needs pictures.

A stream's transcoder (H.264 for browsers) and its decoded tap (analysis, wall tiles) are both
`FrameSink`s of the stream's `StreamDecoder`: one relay subscription, one bounded packet queue
and one decoder in one dedicated thread, however many sinks there are. Each decoded picture is
handed to every sink in that thread, so frames never reach the event loop; a sink keeps its
work short and hands results to the loop through `emit`. A full queue drops its backlog
(counted) and feeding resumes at the next keyframe, so a slow host loses pictures, not latency.

While every sink is an analyser (`exact` false) the decoder skips the loop filter (about a
fifth of the H.264/H.265 decode time); while every sink wants keyframes only, only keyframes
are decoded. A change of either takes effect at the next keyframe, and an exact sink is never
handed a picture decoded without the loop filter. The last sink leaving stops the thread.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from fractions import Fraction
from typing import Protocol

import av
from av.video.codeccontext import VideoCodecContext

from streams.bitstream import with_parameter_sets
from streams.media import CLOCK_RATE, Codec, Packet, StreamInfo
from streams.relay import Relay
from streams.snapshot import DECODABLE, create_decoder
from streams.threads import Emit, Stopped, feed_thread

log = logging.getLogger(__name__)

Item = tuple[StreamInfo, Packet]


class FrameSink(Protocol):
    """A user of a stream's decoded pictures."""

    @property
    def exact(self) -> bool:
        """True: pictures must be decoded with the loop filter (they are shown or re-encoded)."""
        ...

    @property
    def keyframes_only(self) -> bool:
        """True: the pictures of keyframes are enough."""
        ...

    def on_frame(self, frame: av.VideoFrame, packet: Packet, info: StreamInfo, emit: Emit) -> None:
        """One decoded picture of `packet`; runs in the decode thread."""
        ...


class StreamDecoder:
    """Decode `relay` once for every attached `FrameSink` (see the module docstring)."""

    def __init__(self, relay: Relay, *, name: str, queue_size: int = 25) -> None:
        self.relay = relay
        self.name = name  # also the decode thread's name
        self._queue: queue.Queue[Item] = queue.Queue(maxsize=queue_size)
        self._sinks: tuple[FrameSink, ...] = ()  # replaced, never mutated (read by the thread)
        self._keyframes_only = False
        self._need_keyframe = True
        self._task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Task[None] | None = None
        # counters (decoded/errors/sink_errors are written by the decode thread only)
        self.packets = 0  # packets offered by the relay
        self.decoded = 0  # pictures decoded
        self.drops = 0  # packets dropped before decoding (queue full, waiting for a keyframe)
        self.errors = 0  # packets the decoder rejected
        self.sink_errors = 0  # exceptions raised by sinks

    @property
    def sinks(self) -> int:
        return len(self._sinks)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def stats(self) -> dict[str, int]:
        return {
            "sinks": len(self._sinks),
            "packets": self.packets,
            "decoded": self.decoded,
            "drops": self.drops,
            "errors": self.errors,
            "sink_errors": self.sink_errors,
            "queued": self._queue.qsize(),
        }

    async def serve(self, sink: FrameSink) -> None:
        """Hand this stream's pictures to `sink` until cancelled or the relay ends.

        The relay is subscribed before the first await, so no packet published after the
        call is missed."""
        while self._stopping is not None and not self._stopping.done():
            await asyncio.wait([self._stopping])  # the previous thread must end first
        task = self._attach(sink)
        try:
            await asyncio.wait([task])
        finally:
            await self._detach(sink)

    async def close(self) -> None:
        """Stop decoding now; every `serve()` returns."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    # -- event loop side -----------------------------------------------------------------
    def _attach(self, sink: FrameSink) -> asyncio.Task[None]:
        self._sinks = (*self._sinks, sink)
        self._update_keyframes_only()
        if self._task is None or self._task.done():
            consumer = self.relay.subscribe(f"decode:{self.name}")
            self._need_keyframe = True
            self._task = asyncio.get_running_loop().create_task(
                feed_thread(consumer, self._offer, self.name, self._work), name=self.name
            )
        return self._task

    async def _detach(self, sink: FrameSink) -> None:
        self._sinks = tuple(s for s in self._sinks if s is not sink)
        self._update_keyframes_only()
        if self._sinks:
            return
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        self._stopping = task
        await asyncio.wait([task])

    def _update_keyframes_only(self) -> None:
        keyframes_only = bool(self._sinks) and all(s.keyframes_only for s in self._sinks)
        if self._keyframes_only and not keyframes_only:
            self._need_keyframe = True  # the packets between keyframes were never decoded
        self._keyframes_only = keyframes_only

    def _offer(self, packet: Packet) -> None:
        info = self.relay.info
        self.packets += 1
        if info is None or info.codec not in DECODABLE:
            self.drops += 1
            return
        if not packet.keyframe and (self._keyframes_only or self._need_keyframe):
            if not self._keyframes_only:
                self.drops += 1
            return
        self._need_keyframe = False
        try:
            self._queue.put_nowait((info, packet))
        except queue.Full:
            # the decoder is behind: drop its backlog and restart at a keyframe
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
                self.drops += 1
            if packet.keyframe:
                self._queue.put_nowait((info, packet))
            else:
                self.drops += 1
                self._need_keyframe = True

    # -- decode thread -------------------------------------------------------------------
    def _work(self, emit: Emit, stop: threading.Event) -> None:
        decoder: VideoCodecContext | None = None
        mode: tuple[Codec, bool] | None = None  # (codec, exact) of the open decoder
        while not stop.is_set():
            try:
                info, packet = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            sinks = self._sinks
            wanted = (info.codec, any(s.exact for s in sinks))
            if (
                decoder is None
                or mode is None
                or info.codec is not mode[0]
                or (packet.keyframe and wanted != mode)
            ):
                decoder, mode = _open(info, wanted[1]), wanted
            data = with_parameter_sets(info, packet.data) if packet.keyframe else packet.data
            encoded = av.Packet(data)
            encoded.pts, encoded.time_base = packet.pts, Fraction(1, CLOCK_RATE)
            try:
                frames = decoder.decode(encoded)
            except av.FFmpegError:
                self.errors += 1
                continue
            for frame in frames:
                self.decoded += 1
                for sink in sinks:
                    if sink.exact and not mode[1]:
                        continue  # decoded without the loop filter: not for showing
                    if sink.keyframes_only and not packet.keyframe:
                        continue
                    try:
                        sink.on_frame(frame, packet, info, emit)
                    except Exception:
                        self.sink_errors += 1
                        log.exception("%s: a frame sink failed", self.name)
        raise Stopped


def _open(info: StreamInfo, exact: bool) -> VideoCodecContext:
    decoder = create_decoder(info)
    if not exact and info.codec in (Codec.H264, Codec.HEVC):
        # analysis does not need the deblocking filter: about a fifth of the decode time
        decoder.options = {"skip_loop_filter": "all"}
    return decoder
