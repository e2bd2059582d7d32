"""Playback sessions: a private Stream per WHEP playback, built on a PlaybackSource.

`whep_offer` with `?start=` asks `PlaybackRegistry.create()` for a Stream (named like the
camera, so the WHEP resource URL and its DELETE work unchanged) and binds the WHEP session id
to it once the session exists. A playback never bound (bad offer) is closed after a while;
one whose WHEP session ends is closed by `ended()`. `close()` stops them all.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from hub.cameras.service import Camera
from hub.recordings.store import RecordingIndex
from streams.media import Source
from streams.playback import PlaybackControl, PlaybackSource, PlaylistItem
from streams.registry import SourceOptions
from streams.stream import Stream
from streams.tasks import TaskSet

log = logging.getLogger(__name__)

UNBOUND_TIMEOUT = 60.0


class IndexPlaylist:
    """`Playlist` for the playback thread, read from the async index on the event loop."""

    def __init__(
        self, index: RecordingIndex, root: Path, source: str, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.index = index
        self.root = root
        self.source = source
        self.loop = loop

    def after(self, at_ms: int) -> list[PlaylistItem]:
        work = self.index.playlist(self.source, at_ms)
        try:
            future = asyncio.run_coroutine_threadsafe(work, self.loop)
        except RuntimeError:  # the loop is closed: the hub is stopping
            work.close()
            return []
        try:
            rows = future.result(10)
        except (concurrent.futures.TimeoutError, RuntimeError):
            future.cancel()
            return []
        return [PlaylistItem(self.root / r.name, r.start_ms, r.end_ms) for r in rows]


@dataclass(eq=False)
class Playback:
    camera: str
    centre: str
    user: str
    start_ms: int
    stream: Stream
    control: PlaybackControl
    source: PlaybackSource
    session: str = ""
    created: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, object]:
        return {
            "session": self.session,
            "camera": self.camera,
            "user": self.user,
            "start_ms": self.start_ms,
            "state": str(self.stream.state),
            "packets": self.source.packets,
            **self.control.snapshot(),
        }


class PlaybackRegistry:
    def __init__(self, index: RecordingIndex, root: Path) -> None:
        self.index = index
        self.root = root
        self._bound: dict[str, Playback] = {}
        self._unbound: dict[Playback, asyncio.TimerHandle] = {}
        self._closing = TaskSet("playback streams", log)  # closing: awaited, never cancelled
        self.created = 0

    def create(self, camera: Camera, start_ms: int, user: str) -> Playback:
        loop = asyncio.get_running_loop()
        control = PlaybackControl(start_ms)
        source = PlaybackSource(
            camera.id, IndexPlaylist(self.index, self.root, camera.id, loop), control
        )

        def factory(url: str, options: SourceOptions) -> Source:
            return source

        stream = Stream(
            camera.id,
            f"playback://{camera.id}",
            linger=0.0,
            backoff=((1.0, 1),),
            source_factory=factory,
        )
        playback = Playback(camera.id, camera.centre, user, start_ms, stream, control, source)
        self._unbound[playback] = loop.call_later(UNBOUND_TIMEOUT, self._drop, playback)
        self.created += 1
        return playback

    def bind(self, playback: Playback, session_id: str) -> None:
        handle = self._unbound.pop(playback, None)
        if handle is not None:
            handle.cancel()
        playback.session = session_id
        self._bound[session_id] = playback

    def get(self, session_id: str) -> Playback | None:
        return self._bound.get(session_id)

    def ended(self, session_id: str) -> Playback | None:
        """The WHEP session ended: close its playback (if it was one)."""
        playback = self._bound.pop(session_id, None)
        if playback is not None:
            self._spawn_close(playback)
        return playback

    def _drop(self, playback: Playback) -> None:
        if self._unbound.pop(playback, None) is not None:
            self._spawn_close(playback)

    def _spawn_close(self, playback: Playback) -> None:
        self._closing.spawn(playback.stream.close(), cancellable=False)

    def __len__(self) -> int:
        return len(self._bound)

    async def close(self) -> None:
        playbacks = [*self._bound.values(), *self._unbound]
        for handle in self._unbound.values():
            handle.cancel()
        self._bound.clear()
        self._unbound.clear()
        await asyncio.gather(*(p.stream.close() for p in playbacks))
        await self._closing.close()


PLAYBACKS = web.AppKey("playbacks", PlaybackRegistry)
