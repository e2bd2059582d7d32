"""Cameras as the hub sees them: config + owning centre + the Stream that pulls it, and their
decoded pictures.

The registry owns every Stream; `close()` stops them all. `PictureSources` holds one
`DecodedTaps` for the hub (one decode per camera stream), plus the substream `Stream`s,
pulled only while a tap needs them. Motion analysis and wall tiles read the substream (cheap
to decode); a focused wall tile or anything asking for `main=True` reads the main stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from config.schema import CameraConfig, HubConfig, RecordMode
from hub.core.auth import Principal
from hub.core.centres import within
from hub.core.errors import (
    NotFound,
    Unavailable,
)
from signaling.whep import WhepSession, WhepSessions
from streams.decoded import DecodedTaps, FrameListener, TapLease
from streams.hooks import Hook
from streams.registry import SourceOptions, redact_url
from streams.snapshot import SnapshotUnavailable, snapshot_jpeg
from streams.stream import Stream, StreamState


@dataclass(eq=False)
class Camera:
    config: CameraConfig
    centre: str
    stream: Stream
    _snapshot: tuple[int, bytes] | None = None  # (keyframe counter, jpeg)

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def node(self) -> str:
        """The hub node pulling the camera ("": this one)."""
        return ""

    @property
    def available(self) -> bool:
        """Whether the node pulling it is reachable (always, for this node's own cameras)."""
        return True

    def status(self) -> str:
        """online | offline | idle, as the API promises."""
        state = self.stream.state
        if state is StreamState.ONLINE:
            return "online"
        if state is StreamState.IDLE:
            return "idle"
        if state is StreamState.CONNECTING and self.stream.attempt == 0:
            return "idle"  # the first connection attempt of this pull is under way
        return "offline"

    @property
    def source(self) -> str:
        """Where the hub gets the video: "url" (the camera's URL) or "gb28181" (a channel of
        a device registered over GB/T 28181)."""
        return "url"

    def notify(self) -> None:
        """Tell the stream's state listeners the camera's status may have changed without a
        stream state change (a GB/T 28181 device went offline): they read `status()` again."""
        state = self.stream.state
        self.stream.state_listeners.emit(self.stream, state, state)

    def to_json(self) -> dict[str, object]:
        info = self.stream.relay.info
        return {
            "id": self.id,
            "source": self.source,
            "name": self.config.name,
            "centre": self.centre,
            "status": self.status(),
            "codec": str(info.codec) if info else None,
            "width": info.width if info else None,
            "height": info.height if info else None,
            "fps": round(self.stream.fps, 1) or (info.fps if info else None),
            "viewers": self.stream.viewers,
            "record": str(self.config.record),
            "analyse": self.config.analyse,
            "url": redact_url(self.config.url),
            "has_substream": self.config.substream_url is not None,
            "last_error": self.stream.last_error or None,
        }

    def cluster_meta(self) -> dict[str, object]:
        """What other hub nodes list of this camera (hub/cluster/service.py stores it in Redis)."""
        return {
            "name": self.config.name,
            "centre": self.centre,
            "record": str(self.config.record),
            "analyse": self.config.analyse,
        }

    async def snapshot(self, timeout: float) -> bytes:
        """A JPEG from the cached keyframe; pulls the camera briefly if it is idle."""
        relay = self.stream.relay
        with self.stream.acquire("snapshot"):
            await relay.wait_keyframe(timeout)
            gop = relay.gop()
            info = relay.info
            if info is None or not gop:
                raise SnapshotUnavailable("the camera has sent no keyframe yet")
            key = relay.keyframes
            if self._snapshot is not None and self._snapshot[0] == key:
                return self._snapshot[1]
            jpeg = await snapshot_jpeg(info, gop[:1] + gop[1:8])
            self._snapshot = (key, jpeg)
            return jpeg


class RemoteDirectory(Protocol):
    """Cameras other hub nodes own, viewed here (the cluster add-on's `RemoteCameras`)."""

    def get(self, camera_id: str) -> Camera | None: ...

    async def refresh(self) -> None: ...

    def visible_to(self, scope: str) -> list[dict[str, object]]: ...


class CameraRegistry:
    def __init__(self, config: HubConfig) -> None:
        s = config.streams
        self._cameras: dict[str, Camera] = {}
        self.remote: RemoteDirectory | None = None  # set by the cluster add-on
        # (camera, old, new) when a camera's API status (online / offline / idle) changes
        self.on_status: Hook[[Camera, str, str]] = Hook("camera status")
        # (camera) added after start (a GB/T 28181 device's channel)
        self.on_added: Hook[[Camera]] = Hook("camera added")
        self._started = False
        for centre in config.centres:
            for cam in centre.cameras:
                stream = Stream(
                    cam.id,
                    cam.url,
                    SourceOptions(name=cam.id, transport=cam.transport, timeout=s.connect_timeout),
                    linger=s.linger,
                    always_on=cam.always_on or cam.analyse or cam.record is RecordMode.CONTINUOUS,
                    instant_start=s.instant_start,
                    backoff=s.backoff,
                )
                self._cameras[cam.id] = Camera(cam, centre.code, stream)
        for camera in self._cameras.values():
            self._watch_status(camera)

    def _watch_status(self, cam: Camera) -> None:
        """Emit `on_status(camera, old, new)` when the camera's API status changes."""
        last = [cam.status()]

        def changed(stream: Stream, old: StreamState, new: StreamState) -> None:
            status = cam.status()
            if status != last[0]:
                previous, last[0] = last[0], status
                self.on_status.emit(cam, previous, status)

        cam.stream.state_listeners.connect(changed)

    def add(self, cam: Camera) -> None:
        """A camera found after start (a GB/T 28181 channel). Its id must be new."""
        if cam.id in self._cameras:
            raise ValueError(f"camera {cam.id} exists")
        self._cameras[cam.id] = cam
        self._watch_status(cam)
        if self._started and cam.stream.always_on:
            cam.stream.start()
        self.on_added.emit(cam)

    def get(self, camera_id: str) -> Camera | None:
        return self._cameras.get(camera_id)

    def all(self) -> list[Camera]:
        return list(self._cameras.values())

    def visible_to(self, scope: str) -> list[Camera]:
        return [c for c in self._cameras.values() if within(c.centre, scope)]

    def visible(self, camera_id: str, who: Principal) -> Camera:
        """This node's camera `camera_id`, if `who` may see it. NotFound either way otherwise,
        so a caller cannot probe which ids exist outside its scope."""
        cam = self._cameras.get(camera_id)
        if cam is None or not who.can_see(cam.centre):
            raise NotFound(f"no camera {camera_id!r} in your scope")
        return cam

    async def viewable(self, camera_id: str, who: Principal) -> Camera:
        """Like `visible`, but also another node's camera, for live view: listing,
        snapshots, WHEP, walls."""
        if camera_id in self._cameras or self.remote is None:
            return self.visible(camera_id, who)
        cam = self.remote.get(camera_id)
        if cam is None:
            await self.remote.refresh()  # claimed since the last read? (re-read if changed)
            cam = self.remote.get(camera_id)
        if cam is None or not who.can_see(cam.centre):
            raise NotFound(f"no camera {camera_id!r} in your scope")
        return cam

    def find(self, camera_id: str) -> Camera | None:
        """This node's camera, else a camera of another hub node (pulled over one relay leg,
        shared with every other viewer here); no scope check."""
        cam = self._cameras.get(camera_id)
        if cam is None and self.remote is not None:
            cam = self.remote.get(camera_id)
        return cam

    def start(self) -> None:
        self._started = True
        for cam in self._cameras.values():
            if cam.stream.always_on:
                cam.stream.start()

    async def close(self) -> None:
        await asyncio.gather(*(c.stream.close() for c in self._cameras.values()))


class PictureSources:
    def __init__(self, config: HubConfig, *, tap_linger: float = 2.0) -> None:
        self.config = config
        self.taps = DecodedTaps(linger=tap_linger)
        self._substreams: dict[str, Stream] = {}

    def substream(self, camera: Camera) -> Stream | None:
        """The camera's substream (created on first use), or None when it has none."""
        url = camera.config.substream_url
        if not url:
            return None
        stream = self._substreams.get(camera.id)
        if stream is None:
            s = self.config.streams
            name = f"{camera.id}/sub"
            stream = Stream(
                name,
                url,
                SourceOptions(
                    name=name, transport=camera.config.transport, timeout=s.connect_timeout
                ),
                linger=s.linger,
                instant_start=s.instant_start,
                backoff=s.backoff,
            )
            self._substreams[camera.id] = stream
        return stream

    def lease(
        self,
        camera: Camera,
        *,
        fps: float,
        height: int = 0,
        listener: FrameListener | None = None,
        keyframes_only: bool = False,
        main: bool = False,
    ) -> TapLease:
        sub = None if main else self.substream(camera)
        stream = sub or camera.stream
        key = stream.name if sub is not None else camera.id
        return self.taps.lease(
            key, stream, fps=fps, height=height, listener=listener, keyframes_only=keyframes_only
        )

    def stats(self) -> dict[str, dict[str, int | float]]:
        return self.taps.stats()

    async def close(self) -> None:
        await self.taps.close()
        await asyncio.gather(*(s.close() for s in self._substreams.values()))
        self._substreams.clear()


class Viewers:
    """When a live-view or playback session (WHEP) opens and closes."""

    def __init__(self) -> None:
        self.opened: Hook[[WhepSession]] = Hook("viewer session opened")
        self.closed: Hook[[WhepSession, str]] = Hook("viewer session closed")


class PlaybackSource(Protocol):
    """Recorded video of a camera from a moment, played like a live stream (the recordings
    slice provides it): the Stream to view, and what to call with the viewer session's id
    once it is open."""

    async def open(
        self, camera: Camera, start: str, user: str
    ) -> tuple[Stream, Callable[[str], None]]: ...


CAMERAS = web.AppKey("cameras", CameraRegistry)
PLAYBACK = web.AppKey("playback_source", PlaybackSource)
VIEWERS = web.AppKey("viewers", Viewers)
WHEP = web.AppKey("whep", WhepSessions)
PICTURES = web.AppKey("pictures", PictureSources)


def require_node(cam: Camera) -> None:
    if not cam.available:
        raise Unavailable(
            f"camera {cam.id} is on hub node {cam.node}, which is unavailable",
            "node_unavailable",
        )
