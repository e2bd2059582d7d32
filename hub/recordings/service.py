"""RecordingService: the hub's recorders, their index, retention and event triggers.

One `Recorder` per camera set to `record: continuous | on_alert` (on_alert cameras are kept
pulled for their pre-event ring), plus `record_room()` for any Relay bound to a case tag
(hearings). Writer reports go through one bounded queue to one index task. At start, segments
left open by a crash are cut back to their last complete fragment, hashed and indexed as
`recovered`. `alert.raised` events that name a camera (motion, manual mark) trigger on_alert
recording. `close()` stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
from aiohttp import web

from config.schema import HubConfig, RecordMode
from hub.cameras.service import Camera, CameraRegistry
from hub.core.auth import Principal
from hub.core.events import EventBus
from hub.recordings.export import temp_path, write_export_zip
from hub.recordings.retention import Retention
from hub.recordings.store import RecordingIndex
from streams.hooks import Hook
from streams.media import CLOCK_RATE
from streams.recorder import Recorder, RecorderMode
from streams.recorder_manifest import ManifestBook, sha256_file, truncate_incomplete
from streams.recorder_writer import Segment, WriterOptions
from streams.relay import Relay
from streams.stream import Lease

log = logging.getLogger(__name__)

TAG_RE = re.compile(r"^[^\W_][\w.-]{0,63}$")  # letters (CJK too), digits, _ . - ; no slash
INDEX_QUEUE = 1000


def valid_tag(tag: str) -> bool:
    return bool(TAG_RE.match(tag)) and ".." not in tag


@dataclass(eq=False)
class _Events:
    """WriterEvents for one recorder: index rows carry its tag and centre."""

    service: RecordingService
    tag: str
    centre: str

    def segment_opened(self, segment: Segment) -> None:
        self.service._queue_index(
            lambda: self.service.index.opened(segment, tag=self.tag, centre=self.centre)
        )

    def segment_closed(self, segment: Segment) -> None:
        self.service._queue_index(
            lambda: self.service.index.closed(segment, tag=self.tag, centre=self.centre)
        )
        self.service.segments_closed += 1

    def write_failed(self, source: str, error: OSError) -> None:
        self.service._write_failed(source, error)


class RoomRecording:
    """A Relay recorded under a case tag; `await stop()` when the hearing ends."""

    def __init__(self, service: RecordingService, recorder: Recorder, tag: str) -> None:
        self.service = service
        self.recorder = recorder
        self.tag = tag

    @property
    def source(self) -> str:
        return self.recorder.source

    async def stop(self) -> None:
        self.service._rooms.discard(self)
        await self.recorder.stop()


class RecordingService:
    def __init__(
        self, config: HubConfig, index: RecordingIndex, cameras: CameraRegistry, events: EventBus
    ) -> None:
        self.config = config.recording
        self.root = Path(self.config.dir or Path(config.http.data_dir) / "recordings")
        self.index = index
        self.cameras = cameras
        self.events = events
        self.book = ManifestBook()
        self.retention = Retention(self.config, self.root, index, self.book, self._alert)
        self.recorders: dict[str, Recorder] = {}
        self._leases: list[Lease] = []
        self._rooms: set[RoomRecording] = set()
        self._queue: asyncio.Queue[Callable[[], Awaitable[None]] | None] = asyncio.Queue(
            INDEX_QUEUE
        )
        self._tasks: list[asyncio.Task[None]] = []  # index worker first
        self._retention_now = asyncio.Event()
        self._enospc = False
        # who may read recordings bound to a tag (a case code, a broadcast id): each owner of
        # tags answers (tag, who) -> awaitable of True / False, or None for a tag not its own
        self.tag_readers: Hook[[str, Principal]] = Hook("recording tag readers")
        self.segments_closed = 0
        self.index_drops = 0

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        await self.index.migrate()
        await self.recover()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._index_worker(), name="recordings:index"),
            loop.create_task(self._retention_loop(), name="recordings:retention"),
            loop.create_task(self._alerts_loop(), name="recordings:alerts"),
        ]
        for cam in self.cameras.all():
            if cam.config.record is not RecordMode.OFF:
                self._start_camera(cam)

    def _start_camera(self, cam: Camera) -> None:
        cfg = self.config
        mode = RecorderMode(str(cam.config.record))
        pre = cam.config.pre_event if cam.config.pre_event is not None else cfg.pre_event_seconds
        recorder = Recorder(
            cam.id,
            cam.stream.relay,
            self._options(f"cameras/{cam.id}"),
            _Events(self, "", cam.centre),
            self.book,
            mode=mode,
            pre_event=pre,
            pre_event_max_bytes=cfg.pre_event_max_bytes,
            post_event=cfg.post_event_seconds,
        )
        self._leases.append(cam.stream.acquire(f"recorder:{cam.id}"))  # keep it pulled
        recorder.start()
        self.recorders[cam.id] = recorder

    def _options(self, folder: str) -> WriterOptions:
        cfg = self.config
        return WriterOptions(
            self.root, folder, cfg.segment_seconds, cfg.fragment_seconds, cfg.queue_packets
        )

    async def close(self) -> None:
        for lease in self._leases:
            lease.release()
        await asyncio.gather(
            *(r.stop() for r in self.recorders.values()),
            *(room.stop() for room in list(self._rooms)),
        )
        await asyncio.sleep(0)  # the writers' last reports (call_soon_threadsafe) run now
        tasks, self._tasks = self._tasks, []
        for task in tasks[1:]:
            task.cancel()
        for task in tasks[1:]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if tasks:
            await self._queue.put(None)  # the index worker drains the queue, then ends
            await tasks[0]

    # -- room / hearing recording ---------------------------------------------------------
    async def may_read_tag(self, tag: str, who: Principal) -> bool:
        """Whether `who` may read the recordings bound to `tag`: every owner that knows the
        tag must agree (a case's rules, a broadcast's audience); a tag nobody owns is read by
        centre scope alone."""
        for verdict in self.tag_readers.emit(tag, who):
            if verdict is not None and not await verdict:
                return False
        return True

    async def export_zip(
        self, tag: str, header: dict[str, Any], documents: dict[str, Any] | None = None
    ) -> tuple[Path, dict[str, Any], int]:
        """An evidence zip of the closed recordings bound to `tag` (a case code), with the
        case's `documents`: (a temporary file to send and remove, its manifest, segments)."""
        rows = [r for r in await self.index.by_tag(tag) if r.end_ms is not None]
        out = temp_path(self.root, ".zip")
        write = write_export_zip
        manifest = await asyncio.to_thread(write, self.root, rows, header, out, documents)
        return out, manifest, len(rows)

    async def record_room(
        self, relay: Relay, *, tag: str, track: str, centre: str
    ) -> RoomRecording:
        """Record `relay` (e.g. a participant's track) into the store under case `tag`."""
        if not valid_tag(tag) or not valid_tag(track):
            raise ValueError(f"invalid tag or track name: {tag!r} / {track!r}")
        source = f"room/{tag}/{track}"
        recorder = Recorder(
            source,
            relay,
            self._options(source),
            _Events(self, tag, centre),
            self.book,
            mode=RecorderMode.CONTINUOUS,
        )
        recorder.start()
        room = RoomRecording(self, recorder, tag)
        self._rooms.add(room)
        return room

    # -- triggers -------------------------------------------------------------------------
    def trigger(self, camera_id: str, reason: str) -> bool:
        """Start (or extend) an event recording; False if the camera does not record."""
        recorder = self.recorders.get(camera_id)
        if recorder is None:
            return False
        recorder.trigger(reason)
        return True

    async def _alerts_loop(self) -> None:
        sub = self.events.subscribe("recorder", "")
        try:
            while True:
                event = await sub.get()
                camera = event.data.get("camera")
                if (
                    event.topic == "alert.raised"
                    and isinstance(camera, str)
                    and event.data.get("kind") != "disk_full"
                ):
                    self.trigger(camera, str(event.data.get("kind", "alert")))
        finally:
            sub.close()

    # -- index and retention --------------------------------------------------------------
    def _queue_index(self, op: Callable[[], Awaitable[None]]) -> None:
        try:
            self._queue.put_nowait(op)
        except asyncio.QueueFull:
            self.index_drops += 1
            log.error("recordings index queue full: a segment report was lost")

    async def _index_worker(self) -> None:
        while True:
            op = await self._queue.get()
            if op is None:
                return
            try:
                await op()
            except Exception:
                log.exception("recordings index update failed")

    def _write_failed(self, source: str, error: OSError) -> None:
        if error.errno == errno.ENOSPC:
            self._enospc = True
        self._retention_now.set()

    async def _retention_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.cleanup_interval):
                    await self._retention_now.wait()
            self._retention_now.clear()
            enospc, self._enospc = self._enospc, False
            try:
                await self.retention.run_once(enospc=enospc)
            except Exception:
                log.exception("recordings retention pass failed")

    def _alert(self, data: dict[str, object]) -> None:
        centres = {c.centre for c in self.cameras.all()} or {""}
        roots = {c for c in centres if not any(c != o and c.startswith(o) for o in centres)}
        for centre in sorted(roots):
            self.events.publish("alert.raised", centre, data)

    # -- crash recovery -------------------------------------------------------------------
    async def recover(self) -> int:
        """Index the segments a crash left open (cut back to their last whole fragment)."""
        writing = {r.current_segment() for r in self.recorders.values()}
        writing |= {room.recorder.current_segment() for room in self._rooms}
        rows = [r for r in await self.index.open_rows() if r.name not in writing]
        for row in rows:
            seg = Segment(row.source, row.name, row.start_ms)
            result = await asyncio.to_thread(self._recover_file, seg)
            if result is None:
                await self.index.delete([row.id])
            else:
                await self.index.closed(result, tag=row.tag, centre=row.centre, status="recovered")
        if rows:
            log.info("recovered %d segment(s) left open by a crash", len(rows))
        return len(rows)

    def _recover_file(self, seg: Segment) -> Segment | None:
        path = self.root / seg.name
        if not path.exists() or truncate_incomplete(path) == 0:
            path.unlink(missing_ok=True)
            return None
        span = _duration_ticks(path)
        if span is None:
            path.unlink(missing_ok=True)
            return None
        size, digest = path.stat().st_size, sha256_file(path)
        end_ms = seg.start_ms + span * 1000 // CLOCK_RATE
        self.book.append(
            path.parent,
            {
                "file": path.name,
                "sha256": digest,
                "bytes": size,
                "start_ms": seg.start_ms,
                "end_ms": end_ms,
                "source": seg.source,
                "recovered": True,
            },
        )
        return Segment(seg.source, seg.name, seg.start_ms, end_ms, size, digest)

    def stats(self) -> dict[str, object]:
        return {
            "root": str(self.root),
            "segments_closed": self.segments_closed,
            "index_drops": self.index_drops,
            "retention": self.retention.stats(),
            "recorders": [r.stats() for r in self.recorders.values()],
            "rooms": [room.recorder.stats() for room in self._rooms],
        }


def _duration_ticks(path: Path) -> int | None:
    """Span of the packets in an MP4 file, 90 kHz ticks (None: nothing readable)."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            tb = stream.time_base
            first = last = None
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                first = packet.pts if first is None else first
                last = packet.pts
    except (av.FFmpegError, IndexError):
        return None
    if first is None or last is None or tb is None:
        return None
    return int((last - first) * tb * CLOCK_RATE) + CLOCK_RATE // 25


RECORDINGS = web.AppKey("recordings", RecordingService)
