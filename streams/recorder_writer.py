"""SegmentWriter: the recorder's writer thread (PyAV remux into segmented, fragmented MP4).

The event loop hands packets over `put()` into a bounded queue; when it is full the packet is
dropped (counted) and writing resumes at the next keyframe. The thread muxes packets as they
are (no re-encode) into MP4 with `frag_keyframe+empty_moov+default_base_moof`: a fragment per
keyframe or per `fragment_seconds`, flushed to the file as it completes, so a `kill -9` loses
at most the fragment in progress. A segment is cut on the first keyframe after
`segment_seconds`, on a new StreamInfo, and on a wall-clock gap (camera outage). A closed
segment is hashed, fsynced and chained into its folder's manifest, then reported to the loop.
Disk errors (ENOSPC …) never kill the thread: it reports them and retries on a keyframe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol, cast

import av
from av.video.codeccontext import VideoCodecContext

from streams.bitstream import inband_parameter_sets
from streams.media import CLOCK_RATE, Codec, Packet, StreamInfo
from streams.recorder_manifest import ManifestBook, sha256_file, truncate_incomplete

log = logging.getLogger(__name__)

TIME_BASE = Fraction(1, CLOCK_RATE)
GAP_MS = 2000  # wall clock ahead of the packet clock by this much: an outage, cut here
RETRY_S = 1.0
_MUXABLE = {Codec.H264: "h264", Codec.HEVC: "hevc", Codec.MJPEG: "mjpeg", Codec.MPEG4: "mpeg4"}


@dataclass(frozen=True, slots=True)
class Segment:
    """One MP4 file of a recording. `end_ms` is None while it is being written."""

    source: str  # camera id, or room/<tag>/<track>
    name: str  # path relative to the recordings root (posix)
    start_ms: int
    end_ms: int | None = None
    bytes: int = 0
    sha256: str = ""
    codec: str = ""
    width: int = 0
    height: int = 0


class WriterEvents(Protocol):
    """What the writer reports; called on the event loop thread."""

    def segment_opened(self, segment: Segment) -> None: ...

    def segment_closed(self, segment: Segment) -> None: ...

    def write_failed(self, source: str, error: OSError) -> None: ...


@dataclass(frozen=True, slots=True)
class WriterOptions:
    root: Path  # recordings root
    folder: str  # the source's folder under root, e.g. "cameras/gate"
    segment_seconds: float = 60.0
    fragment_seconds: float = 2.0
    queue_packets: int = 250


class _Close:
    """Queue marker: close the current segment now."""


_CLOSE, _STOP = _Close(), _Close()
Item = Packet | StreamInfo | _Close


class SegmentWriter:
    def __init__(
        self,
        source: str,
        options: WriterOptions,
        events: WriterEvents,
        book: ManifestBook,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.source = source
        self.options = options
        self._events = events
        self._book = book
        self._loop = loop
        # packets fill up to queue_packets; the rest is room for markers (never blocks)
        self._queue: queue.Queue[Item] = queue.Queue(options.queue_packets + 16)
        self._thread = threading.Thread(target=self._main, name=f"zzhub-rec-{source}", daemon=True)
        self._need_keyframe = False  # event loop side: after a drop
        # counters
        self.packets = 0
        self.bytes = 0
        self.drops = 0
        self.segments = 0
        self.errors = 0
        # writer thread state
        self._info: StreamInfo | None = None
        self._container: Any = None
        self._stream: Any = None
        self._segment: Segment | None = None
        self._path: Path | None = None
        self._first_pts = 0
        self._last_pts = -1
        self._last_step = CLOCK_RATE // 25
        self._cut = False
        self._retry_at = 0.0

    # -- event loop side ------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def put(self, item: Item) -> bool:
        """Queue a packet (or info / close marker); False if it was dropped."""
        if isinstance(item, Packet):
            if self._need_keyframe and not item.keyframe:
                self.drops += 1
                return False
            if self._queue.qsize() >= self.options.queue_packets:
                self.drops += 1
                self._need_keyframe = True
                return False
            self._need_keyframe = False
        try:
            self._queue.put_nowait(item)
        except queue.Full:  # only markers get here, and only if 16 of them pile up
            log.error("[%s] recorder queue full: %r lost", self.source, item)
            return False
        return True

    async def stop(self) -> None:
        """Close the current segment and end the thread (awaits it)."""
        await asyncio.to_thread(self._queue.put, _STOP)
        await asyncio.to_thread(self._thread.join)

    def close_segment(self) -> None:
        self.put(_CLOSE)

    def _report(self, method: str, *args: object) -> None:
        with contextlib.suppress(RuntimeError):  # loop closed: nobody listens any more
            self._loop.call_soon_threadsafe(lambda: getattr(self._events, method)(*args))

    # -- writer thread --------------------------------------------------------------------
    def _main(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                self._close_quietly()
                return
            try:
                if isinstance(item, StreamInfo):
                    self._cut = self._info is not None and item != self._info
                    self._info = item
                elif isinstance(item, _Close):
                    self._close()
                else:
                    self._write(item)
            except OSError as err:
                self.errors += 1
                log.warning("[%s] recording write failed: %s", self.source, err)
                self._close_quietly()
                self._retry_at = time.monotonic() + RETRY_S
                self._report("write_failed", self.source, err)
            except Exception:  # a bad packet must not end recording
                self.errors += 1
                log.exception(
                    "[%s] recording failed; next segment on the next keyframe", self.source
                )
                self._close_quietly()

    def _write(self, packet: Packet) -> None:
        if packet.keyframe and self._should_cut(packet):
            self._close()
        if self._container is None:
            if not packet.keyframe or time.monotonic() < self._retry_at or self._info is None:
                return
            self._open(packet)
        pts = packet.pts if packet.pts > self._last_pts else self._last_pts + 1
        if self._last_pts >= 0:
            self._last_step = max(1, min(pts - self._last_pts, CLOCK_RATE))
        self._last_pts = pts
        out = av.Packet(packet.data)
        out.pts = out.dts = pts - self._first_pts
        out.time_base = TIME_BASE
        out.is_keyframe = packet.keyframe
        out.stream = self._stream
        self._container.mux(out)
        self.packets += 1
        self.bytes += len(packet.data)

    def _should_cut(self, packet: Packet) -> bool:
        if self._container is None or self._segment is None:
            return False
        if self._cut:
            return True
        elapsed = packet.pts - self._first_pts
        if elapsed >= self.options.segment_seconds * CLOCK_RATE:
            return True
        expected_ms = self._segment.start_ms + elapsed * 1000 // CLOCK_RATE
        return _wall_ms(packet) - expected_ms > GAP_MS

    def _open(self, packet: Packet) -> None:
        info = self._info
        assert info is not None
        codec = _MUXABLE.get(info.codec)
        if codec is None:
            raise ValueError(f"cannot record codec {info.codec}")
        start_ms = _wall_ms(packet)
        when = datetime.fromtimestamp(start_ms / 1000, UTC)
        folder = self.options.root / self.options.folder / when.strftime("%Y%m%d")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{when.strftime('%H%M%S')}{start_ms % 1000:03d}Z.mp4"
        frag_us = int(self.options.fragment_seconds * 1_000_000)
        container = av.open(
            str(path),
            "w",
            format="mp4",
            options={
                "movflags": "frag_keyframe+empty_moov+default_base_moof",
                "frag_duration": str(frag_us),
                "flush_packets": "1",
            },
        )
        try:
            # self-describing (and so unique) segments: source and start in the moov
            container.metadata["title"] = self.source
            container.metadata["creation_time"] = when.isoformat(timespec="milliseconds")
            container.metadata["comment"] = f"zzhub {self.source} {start_ms}"
            stream = container.add_stream(codec)
            ctx = cast(VideoCodecContext, stream.codec_context)
            ctx.width, ctx.height = info.width or 16, info.height or 16
            extradata = inband_parameter_sets(info.codec, packet.data) or info.parameter_sets
            if extradata:
                ctx.extradata = extradata
            stream.time_base = TIME_BASE
        except BaseException:
            container.close()
            raise
        self._container, self._stream, self._path = container, stream, path
        self._first_pts, self._last_pts, self._cut = packet.pts, -1, False
        name = path.relative_to(self.options.root).as_posix()
        self._segment = Segment(
            self.source, name, start_ms, None, 0, "", str(info.codec), info.width, info.height
        )
        self._report("segment_opened", self._segment)

    def _close(self) -> None:
        container, segment, path = self._container, self._segment, self._path
        if container is None or segment is None or path is None:
            return
        self._container = self._stream = self._segment = None
        duration = max(0, self._last_pts - self._first_pts) + self._last_step
        failure: OSError | None = None
        try:
            container.close()
        except OSError as err:  # e.g. disk full at the trailer: keep the complete fragments
            failure = err
            truncate_incomplete(path)
        digest = sha256_file(path)
        with path.open("rb") as f:
            os.fsync(f.fileno())
        size = path.stat().st_size
        closed = replace(
            segment,
            end_ms=segment.start_ms + duration * 1000 // CLOCK_RATE,
            bytes=size,
            sha256=digest,
        )
        try:
            self._book.append(
                path.parent,
                {
                    "file": path.name,
                    "sha256": digest,
                    "bytes": size,
                    "start_ms": closed.start_ms,
                    "end_ms": closed.end_ms,
                    "source": self.source,
                },
            )
        except OSError as err:
            failure = failure or err
        self.segments += 1
        self._report("segment_closed", closed)
        if failure is not None:
            raise failure

    def _close_quietly(self) -> None:
        try:
            self._close()
        except Exception as err:  # disk full while closing: the file keeps what it has
            log.warning("[%s] closing segment failed: %s", self.source, err)
            container, self._container = self._container, None
            self._segment = self._stream = None
            if container is not None:
                with contextlib.suppress(Exception):
                    container.close()

    def current_segment(self) -> str | None:
        segment = self._segment  # read from the loop thread: one attribute load
        return segment.name if segment is not None else None

    def stats(self) -> dict[str, object]:
        return {
            "packets": self.packets,
            "bytes": self.bytes,
            "drops": self.drops,
            "segments": self.segments,
            "errors": self.errors,
            "queued": self._queue.qsize(),
            "current": self._segment.name if self._segment else None,
        }


def _wall_ms(packet: Packet) -> int:
    return int((packet.captured or time.time()) * 1000)
