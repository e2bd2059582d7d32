"""Recorder: one relay written to segmented MP4 without re-encoding.

It is an ordinary relay consumer (bounded queue, resumes at a keyframe after a drop) feeding a
`SegmentWriter` thread. Modes:

- `continuous`: every packet is written.
- `on_alert`: packets go to a `PreEventRing` (the last N seconds, bounded by seconds and bytes,
  whole GOPs so it starts on a keyframe); `trigger()` writes the ring, then live packets until
  `post_event` seconds after the last trigger, then closes the segment.

The same class records any Relay (a hearing participant's track): the caller chooses the
source name and folder (see `hub/recordings/service.py`, `record_room`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import deque

from streams.media import CLOCK_RATE, Packet, StreamInfo
from streams.recorder_manifest import ManifestBook
from streams.recorder_writer import SegmentWriter, WriterEvents, WriterOptions
from streams.relay import Consumer, Relay, RelayClosed

log = logging.getLogger(__name__)


class RecorderMode(enum.StrEnum):
    CONTINUOUS = "continuous"
    ON_ALERT = "on_alert"


class PreEventRing:
    """The last `seconds` of a stream as whole GOPs, at most `max_bytes` (keeps ≥ 1 GOP)."""

    def __init__(self, seconds: float, max_bytes: int) -> None:
        self.span = int(seconds * CLOCK_RATE)
        self.max_bytes = max_bytes
        self._gops: deque[list[Packet]] = deque()
        self.bytes = 0

    def add(self, packet: Packet) -> None:
        if packet.keyframe:
            self._gops.append([packet])
        elif self._gops:
            self._gops[-1].append(packet)
        else:
            return  # no keyframe yet: nothing decodable to keep
        self.bytes += len(packet.data)
        # the oldest GOP goes when the next one alone already reaches back `span`
        while len(self._gops) > 1 and (
            self._gops[1][0].pts <= packet.pts - self.span or self.bytes > self.max_bytes
        ):
            self.bytes -= sum(len(p.data) for p in self._gops.popleft())

    def drain(self) -> list[Packet]:
        out = [p for gop in self._gops for p in gop]
        self._gops.clear()
        self.bytes = 0
        return out

    def seconds(self) -> float:
        if not self._gops:
            return 0.0
        return (self._gops[-1][-1].pts - self._gops[0][0].pts) / CLOCK_RATE


class Recorder:
    def __init__(
        self,
        source: str,
        relay: Relay,
        options: WriterOptions,
        events: WriterEvents,
        book: ManifestBook,
        *,
        mode: RecorderMode = RecorderMode.CONTINUOUS,
        pre_event: float = 10.0,
        pre_event_max_bytes: int = 8_000_000,
        post_event: float = 30.0,
    ) -> None:
        self.source = source
        self.relay = relay
        self.mode = mode
        self.post_event = post_event
        self.ring = PreEventRing(pre_event, pre_event_max_bytes)
        self._options = options
        self._events = events
        self._book = book
        self._writer: SegmentWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._active_until = 0.0  # on_alert: write until this time.monotonic()
        self._consumer_drops = 0
        self._last_stats: dict[str, object] = {}
        self._consumer: Consumer | None = None
        self.triggers = 0

    @property
    def recording(self) -> bool:
        if self.mode is RecorderMode.CONTINUOUS:
            return True
        return time.monotonic() < self._active_until

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._writer = SegmentWriter(self.source, self._options, self._events, self._book, loop)
        self._writer.start()
        self._task = loop.create_task(self._run(), name=f"recorder:{self.source}")

    def trigger(self, reason: str = "alert") -> None:
        """on_alert: record from `pre_event` seconds ago until `post_event` from now."""
        if self.mode is not RecorderMode.ON_ALERT or self._writer is None:
            return
        self.triggers += 1
        starting = not self.recording
        self._active_until = time.monotonic() + self.post_event
        if starting:
            log.info(
                "[%s] event recording (%s), %.1f s before", self.source, reason, self.ring.seconds()
            )
            if self.relay.info is not None:
                self._writer.put(self.relay.info)
            for packet in self.ring.drain():
                self._writer.put(packet)

    async def _run(self) -> None:
        writer = self._writer
        assert writer is not None
        consumer = self.relay.subscribe(
            f"recorder:{self.source}", maxsize=writer.options.queue_packets
        )
        self._consumer = consumer
        info: StreamInfo | None = None
        was_recording = False
        try:
            while True:
                try:
                    packet = await consumer.get()
                except RelayClosed:
                    return
                if self.relay.info is not info and self.relay.info is not None:
                    info = self.relay.info
                    writer.put(info)
                recording = self.recording
                if recording:
                    writer.put(packet)
                else:
                    if was_recording:
                        writer.close_segment()
                    self.ring.add(packet)
                was_recording = recording
        finally:
            self._consumer_drops += consumer.drops
            self._consumer = None
            consumer.close()

    async def stop(self) -> None:
        """Stop consuming, close the current segment, end the writer thread."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        writer, self._writer = self._writer, None
        if writer is not None:
            await writer.stop()
            self._last_stats = writer.stats()

    def current_segment(self) -> str | None:
        """The name of the segment being written, if any."""
        return self._writer.current_segment() if self._writer else None

    def stats(self) -> dict[str, object]:
        writer_stats = self._writer.stats() if self._writer else self._last_stats
        drops = self._consumer_drops + (self._consumer.drops if self._consumer else 0)
        return {
            "source": self.source,
            "mode": str(self.mode),
            "recording": self.recording,
            "triggers": self.triggers,
            "ring_seconds": round(self.ring.seconds(), 1),
            "relay_drops": drops,
            **writer_stats,
        }
