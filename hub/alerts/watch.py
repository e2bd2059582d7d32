"""The alerts the hub raises itself: camera status changes and per-camera picture analysis.

- `camera_offline` when a camera the hub pulls becomes unreachable, `camera_online` when it
  comes back (with a fresh snapshot);
- `motion` from `streams.motion.MotionDetector` on cameras with `analyse: true`;
- `fire_experimental` from the EXPERIMENTAL `streams.fire.FireHeuristic` where a camera sets
  `fire_experimental: true`.
The detectors run in the camera's decode thread (one `DecodedTap`, on the substream when
configured); only their results come to the event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from collections.abc import Callable

from aiohttp import web

from config.schema import HubConfig, MotionConfig
from hub.alerts.service import AlertKind, Alerts
from hub.cameras.service import Camera, CameraRegistry, PictureSources
from streams.decoded import TapLease
from streams.fire import FireEvent, FireHeuristic
from streams.hooks import Connection
from streams.motion import MotionDetector, MotionEvent, MotionSettings, Schedule, Window, Zone
from streams.snapshot import SnapshotUnavailable
from streams.stream import Stream, StreamState

StateListener = Callable[[Stream, StreamState, StreamState], None]

log = logging.getLogger(__name__)
SNAPSHOT_TIMEOUT = 3.0


def schedule_of(motion: MotionConfig) -> Schedule:
    windows = tuple(
        Window(frozenset(w.days), dt.time.fromisoformat(w.start), dt.time.fromisoformat(w.end))
        for w in motion.schedule
    )
    return Schedule(windows, motion.timezone)


def detector_of(motion: MotionConfig) -> MotionDetector:
    settings = MotionSettings(
        height=motion.height,
        threshold=motion.threshold,
        min_area=motion.min_area,
        alpha=motion.alpha,
        min_frames=motion.min_frames,
        quiet=motion.quiet,
        cooldown=motion.cooldown,
    )
    zones = [Zone(z.name, tuple(z.polygon)) for z in motion.zones]
    return MotionDetector(zones=zones, schedule=schedule_of(motion), settings=settings)


class AlertWatch:
    def __init__(
        self, alerts: Alerts, cameras: CameraRegistry, pictures: PictureSources, config: HubConfig
    ) -> None:
        self.alerts = alerts
        self.cameras = cameras
        self.pictures = pictures
        self.config = config
        self.detectors: dict[str, MotionDetector] = {}
        self.fire: dict[str, FireHeuristic] = {}
        self._leases: list[TapLease] = []
        self._down: set[str] = set()
        self._last: dict[str, str] = {}  # camera id → API status last seen
        self._listeners: list[Connection] = []  # on the cameras' stream states, additions

    def start(self) -> None:
        if self.config.alerts.camera_status:
            # our own stream listeners, not `registry.on_status()`: that one keeps a single
            # last status per camera, so only its first listener sees a change
            for cam in self.cameras.all():
                self._listen(cam)
        for cam in self.cameras.all():
            if cam.config.analyse:
                self._analyse(cam)
        self._listeners.append(self.cameras.on_added.connect(self._added))

    def _added(self, cam: Camera) -> None:
        """A camera found after start (a GB/T 28181 channel): watched like the others."""
        if self.config.alerts.camera_status:
            self._listen(cam)
        if cam.config.analyse:
            self._analyse(cam)

    def _listen(self, cam: Camera) -> None:
        self._last[cam.id] = cam.status()

        def changed(stream: Stream, old: StreamState, new: StreamState) -> None:
            self._state_changed(cam)

        self._listeners.append(cam.stream.state_listeners.connect(changed))

    async def close(self) -> None:
        for listener in self._listeners:
            listener.disconnect()
        self._listeners.clear()
        for lease in self._leases:
            lease.release()
        self._leases.clear()

    def _analyse(self, cam: Camera) -> None:
        motion = cam.config.motion
        if motion.enabled:
            detector = detector_of(motion)
            detector.on_motion = functools.partial(self._motion, cam)
            self.detectors[cam.id] = detector
            self._leases.append(
                self.pictures.lease(
                    cam,
                    fps=motion.fps,
                    height=motion.height,
                    listener=detector.listener,
                    keyframes_only=motion.keyframes_only,
                )
            )
        if cam.config.fire_experimental:
            fire = FireHeuristic(on_fire=functools.partial(self._fire, cam))
            self.fire[cam.id] = fire
            self._leases.append(
                self.pictures.lease(cam, fps=5, height=fire.settings.height, listener=fire.listener)
            )

    # -- event loop callbacks ------------------------------------------------------------
    def _motion(self, cam: Camera, event: MotionEvent) -> None:
        details = {
            "zone": event.zone,
            "area": round(event.area, 4),
            "box": [round(v, 3) for v in event.box],
        }
        self.alerts.submit(
            self.alerts.raise_alert(
                AlertKind.MOTION, cam.id, cam.centre, details, event.snapshot or None, at=event.at
            )
        )

    def _fire(self, cam: Camera, event: FireEvent) -> None:
        details = {
            "experimental": True,
            "fraction": round(event.fraction, 4),
            "flicker": round(event.flicker, 3),
            "note": "实验性火情颜色/闪烁启发式 experimental colour/flicker heuristic",
        }
        self.alerts.submit(
            self.alerts.raise_alert(
                AlertKind.FIRE_EXPERIMENTAL,
                cam.id,
                cam.centre,
                details,
                event.snapshot or None,
                at=event.at,
            )
        )

    def _state_changed(self, cam: Camera) -> None:
        new = cam.status()
        old = self._last.get(cam.id, "idle")
        if new != old:
            self._last[cam.id] = new
            self._status(cam, old, new)

    def _status(self, cam: Camera, old: str, new: str) -> None:
        if new == "offline" and cam.id not in self._down:
            self._down.add(cam.id)
            details = {"was": old, "error": cam.stream.last_error or None}
            self.alerts.submit(
                self.alerts.raise_alert(AlertKind.CAMERA_OFFLINE, cam.id, cam.centre, details)
            )
        elif new == "online" and cam.id in self._down:
            self._down.discard(cam.id)
            self.alerts.submit(self._online(cam))

    async def _online(self, cam: Camera) -> None:
        snapshot: bytes | None = None
        if cam.stream.state is not StreamState.ONLINE:
            # back, but not pulled (a GB/T 28181 channel whose device re-registered): no
            # snapshot, rather than a burst of INVITEs to an NVR whose channels all came back
            await self.alerts.raise_alert(
                AlertKind.CAMERA_ONLINE, cam.id, cam.centre, {"reconnects": 0}, None
            )
            return
        try:
            async with asyncio.timeout(SNAPSHOT_TIMEOUT):
                snapshot = await cam.snapshot(SNAPSHOT_TIMEOUT)
        except (SnapshotUnavailable, TimeoutError) as err:
            log.info("%s back online, no snapshot: %s", cam.id, err)
        await self.alerts.raise_alert(
            AlertKind.CAMERA_ONLINE,
            cam.id,
            cam.centre,
            {"reconnects": cam.stream.reconnects},
            snapshot,
        )


ALERT_WATCH = web.AppKey("alert_watch", AlertWatch)
