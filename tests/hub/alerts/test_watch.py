"""`AlertWatch` without sockets: camera offline/online alerts driven by the cameras' stream
states, motion and fire callbacks, and the motion config it turns into a detector."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any, cast
from zoneinfo import ZoneInfo

import pydantic
import pytest

import hub.alerts.watch as watch_module
from config import HubConfig, parse_config
from config.schema import MotionConfig
from hub.alerts.service import Alert, Alerts
from hub.alerts.watch import AlertWatch, detector_of, schedule_of
from hub.cameras.service import Camera, CameraRegistry, PictureSources
from streams.decoded import FrameListener, TapLease
from streams.fire import FireEvent
from streams.motion import MotionEvent, Zone
from streams.snapshot import SnapshotUnavailable
from streams.stream import StreamState
from tests.conftest import OTHER_TOWN, TOWN, topology

JPEG = b"\xff\xd8\xff\xe0online\xff\xd9"
SMALL = "size=320x240&fps=25&gop=25"
GATE = {"name": "gate", "polygon": [[0.5, 0.2], [0.95, 0.2], [0.95, 0.8], [0.5, 0.8]]}


class FakeLease:
    def __init__(self, kwargs: dict[str, Any]) -> None:
        self.kwargs = kwargs
        self.released = False

    def release(self) -> None:
        self.released = True


class RecordingPictures(PictureSources):
    """Picture sources that hand out leases without decoding anything."""

    def __init__(self, config: HubConfig) -> None:
        super().__init__(config)
        self.leases: list[tuple[str, FakeLease]] = []

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
        fake = FakeLease(
            {"fps": fps, "height": height, "listener": listener, "keyframes_only": keyframes_only}
        )
        self.leases.append((camera.id, fake))
        return cast(TapLease, fake)


def config_of(**sections: Any) -> HubConfig:
    cams = {
        TOWN: [{"id": "gate", "name": "大门", "url": f"synthetic://gate?{SMALL}"}],
        OTHER_TOWN: [{"id": "yard", "name": "院子", "url": f"synthetic://yard?{SMALL}"}],
    }
    return parse_config(topology(cams, **sections))


class Rig:
    def __init__(self, alerts: Alerts, config: HubConfig) -> None:
        self.alerts = alerts
        self.config = config
        self.registry = CameraRegistry(config)
        self.pictures = RecordingPictures(config)
        self.watch = AlertWatch(alerts, self.registry, self.pictures, config)

    def cam(self, camera_id: str) -> Camera:
        cam = self.registry.get(camera_id)
        assert cam is not None
        return cam

    async def close(self) -> None:
        await self.watch.close()
        await self.registry.close()


@pytest.fixture
async def rig(alerts: Alerts) -> AsyncIterator[Rig]:
    r = Rig(alerts, config_of())
    try:
        yield r
    finally:
        await r.close()


def drive(cam: Camera, state: StreamState, *, attempt: int | None = None) -> None:
    """As the pull loop does: `attempt` (failed attempts of this pull) set before the state."""
    if attempt is not None:
        cam.stream.attempt = attempt
    cam.stream._set_state(state)


def fake_snapshot(cam: Camera, monkeypatch: pytest.MonkeyPatch, result: bytes | Exception) -> None:
    async def snapshot(timeout: float) -> bytes:
        if isinstance(result, Exception):
            raise result
        return result

    monkeypatch.setattr(cam, "snapshot", snapshot)


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)


async def wait_alerts(alerts: Alerts, n: int, timeout: float = 2.0) -> list[Alert]:
    async with asyncio.timeout(timeout):
        while len(found := await alerts.list("")) < n:
            await asyncio.sleep(0.01)
    await settle()
    found = await alerts.list("")
    assert len(found) == n, [a.kind for a in found]
    return found


# -- camera status -------------------------------------------------------------------------------
async def test_offline_then_online_alerts(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    rig.watch.start()
    cam = rig.cam("gate")
    fake_snapshot(cam, monkeypatch, JPEG)
    drive(cam, StreamState.CONNECTING, attempt=0)  # first attempt: still "idle", no alert
    await settle()
    assert await rig.alerts.list("") == []
    cam.stream.last_error = "connection refused"
    drive(cam, StreamState.OFFLINE)
    [offline] = await wait_alerts(rig.alerts, 1)
    assert offline.kind == "camera_offline" and offline.camera == "gate"
    assert offline.centre == TOWN
    assert offline.details == {"was": "idle", "error": "connection refused"}
    assert not offline.has_snapshot
    cam.stream.reconnects = 3
    drive(cam, StreamState.ONLINE)
    online, again = await wait_alerts(rig.alerts, 2)
    assert again.id == offline.id
    assert online.kind == "camera_online" and online.camera == "gate" and online.centre == TOWN
    assert online.details == {"reconnects": 3}
    assert online.has_snapshot and await rig.alerts.snapshot(online.id) == JPEG


async def test_retrying_while_offline_raises_one_offline_alert(rig: Rig) -> None:
    rig.watch.start()
    cam = rig.cam("gate")
    drive(cam, StreamState.OFFLINE)
    await wait_alerts(rig.alerts, 1)
    for attempt in range(1, 5):  # reconnect attempts: CONNECTING counts as offline past the 1st
        drive(cam, StreamState.CONNECTING, attempt=attempt)
        drive(cam, StreamState.OFFLINE)
    await settle()
    [only] = await rig.alerts.list("")
    assert only.kind == "camera_offline"


async def test_online_without_being_down_raises_nothing(rig: Rig) -> None:
    rig.watch.start()
    cam = rig.cam("gate")
    drive(cam, StreamState.CONNECTING, attempt=0)
    drive(cam, StreamState.ONLINE)
    drive(cam, StreamState.IDLE)  # nobody watching: stopped, not offline
    drive(cam, StreamState.ONLINE)
    await settle()
    assert await rig.alerts.list("") == []


async def test_an_on_demand_camera_starting_again_is_not_offline(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.watch.start()
    cam = rig.cam("gate")
    fake_snapshot(cam, monkeypatch, JPEG)
    for _pull in range(3):  # viewers come and go: pulled, online, stopped after the linger
        drive(cam, StreamState.CONNECTING, attempt=0)  # each pull starts with a first attempt
        drive(cam, StreamState.ONLINE)
        drive(cam, StreamState.IDLE)
    await settle()
    assert [a.kind for a in await rig.alerts.list("")] == []


async def test_online_without_a_snapshot_is_still_raised(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.watch.start()
    cam = rig.cam("gate")
    fake_snapshot(cam, monkeypatch, SnapshotUnavailable("no keyframe yet"))
    drive(cam, StreamState.OFFLINE)
    drive(cam, StreamState.ONLINE)
    online, _ = await wait_alerts(rig.alerts, 2)
    assert online.kind == "camera_online" and not online.has_snapshot


async def test_a_snapshot_that_hangs_is_given_up(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch_module, "SNAPSHOT_TIMEOUT", 0.1)
    rig.watch.start()
    cam = rig.cam("gate")

    async def never(timeout: float) -> bytes:
        await asyncio.sleep(30)
        return JPEG

    monkeypatch.setattr(cam, "snapshot", never)
    drive(cam, StreamState.OFFLINE)
    drive(cam, StreamState.ONLINE)
    online, _ = await wait_alerts(rig.alerts, 2)
    assert online.kind == "camera_online" and not online.has_snapshot


async def test_each_camera_is_watched_on_its_own(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    rig.watch.start()
    gate, yard = rig.cam("gate"), rig.cam("yard")
    fake_snapshot(yard, monkeypatch, JPEG)
    drive(gate, StreamState.OFFLINE)
    drive(yard, StreamState.OFFLINE)
    await wait_alerts(rig.alerts, 2)
    drive(yard, StreamState.ONLINE)
    found = await wait_alerts(rig.alerts, 3)
    assert found[0].kind == "camera_online" and found[0].camera == "yard"
    assert sorted((a.kind, a.camera, a.centre) for a in found) == [
        ("camera_offline", "gate", TOWN),
        ("camera_offline", "yard", OTHER_TOWN),
        ("camera_online", "yard", OTHER_TOWN),
    ]
    assert [a.kind for a in await rig.alerts.list(TOWN)] == ["camera_offline"]


async def test_down_again_after_coming_back_raises_again(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.watch.start()
    cam = rig.cam("gate")
    fake_snapshot(cam, monkeypatch, JPEG)
    for _ in range(2):
        drive(cam, StreamState.OFFLINE)
        await settle()
        drive(cam, StreamState.ONLINE)
        await settle()
    found = await wait_alerts(rig.alerts, 4)
    assert sorted(a.kind for a in found) == ["camera_offline"] * 2 + ["camera_online"] * 2


async def test_status_alerts_can_be_switched_off(alerts: Alerts) -> None:
    r = Rig(alerts, config_of(alerts={"camera_status": False}))
    try:
        r.watch.start()
        cam = r.cam("gate")
        drive(cam, StreamState.OFFLINE)
        drive(cam, StreamState.ONLINE)
        await settle()
        assert await alerts.list("") == []
    finally:
        await r.close()


async def test_close_stops_watching(rig: Rig) -> None:
    cam = rig.cam("gate")
    before = len(cam.stream.state_listeners)
    rig.watch.start()
    assert len(cam.stream.state_listeners) == before + 1
    await rig.watch.close()
    assert len(cam.stream.state_listeners) == before
    drive(cam, StreamState.OFFLINE)
    await settle()
    assert await rig.alerts.list("") == []
    await rig.watch.close()  # twice is fine


async def test_the_registry_status_hook_still_hears_changes(rig: Rig) -> None:
    heard: list[tuple[str, str, str]] = []
    rig.registry.on_status.connect(lambda cam, old, new: heard.append((cam.id, old, new)))
    rig.watch.start()
    drive(rig.cam("gate"), StreamState.OFFLINE)
    await wait_alerts(rig.alerts, 1)
    assert heard == [("gate", "idle", "offline")]


# -- motion and fire ------------------------------------------------------------------------------
def analysed_config(**camera: Any) -> HubConfig:
    yard = {
        "id": "yard",
        "name": "院子",
        "url": f"synthetic://yard?{SMALL}",
        "analyse": True,
        "motion": {"zones": [GATE], "fps": 4, "height": 90, "keyframes_only": True},
        **camera,
    }
    plain = {"id": "plain", "name": "普通", "url": f"synthetic://plain?{SMALL}"}
    return parse_config(topology({TOWN: [yard, plain]}))


async def test_motion_events_become_alerts(alerts: Alerts) -> None:
    r = Rig(alerts, analysed_config())
    try:
        r.watch.start()
        assert set(r.watch.detectors) == {"yard"} and r.watch.fire == {}
        [(cam_id, lease)] = r.pictures.leases
        assert cam_id == "yard"
        assert lease.kwargs["fps"] == 4 and lease.kwargs["height"] == 90
        assert lease.kwargs["keyframes_only"] is True
        detector = r.watch.detectors["yard"]
        assert lease.kwargs["listener"] == detector.listener
        assert detector.zones == (Zone("gate", ((0.5, 0.2), (0.95, 0.2), (0.95, 0.8), (0.5, 0.8))),)
        assert detector.on_motion is not None
        event = MotionEvent(1_700_000_000.0, "gate", 0.123456, (0.51234, 0.2, 0.3, 0.4), JPEG)
        detector.on_motion(event)
        [alert] = await wait_alerts(alerts, 1)
        assert alert.kind == "motion" and alert.camera == "yard" and alert.centre == TOWN
        assert alert.at == 1_700_000_000.0
        assert alert.details == {"zone": "gate", "area": 0.1235, "box": [0.512, 0.2, 0.3, 0.4]}
        assert await alerts.snapshot(alert.id) == JPEG
        await r.watch.close()
        assert lease.released
    finally:
        await r.close()


async def test_a_motion_event_without_a_picture_has_no_snapshot(alerts: Alerts) -> None:
    r = Rig(alerts, analysed_config())
    try:
        r.watch.start()
        on_motion = r.watch.detectors["yard"].on_motion
        assert on_motion is not None
        on_motion(MotionEvent(1.0, "", 0.5, (0.0, 0.0, 1.0, 1.0), b""))
        [alert] = await wait_alerts(alerts, 1)
        assert not alert.has_snapshot and alert.details["zone"] == ""
    finally:
        await r.close()


async def test_motion_disabled_leases_nothing(alerts: Alerts) -> None:
    r = Rig(alerts, analysed_config(motion={"enabled": False}))
    try:
        r.watch.start()
        assert r.watch.detectors == {} and r.pictures.leases == []
    finally:
        await r.close()


async def test_fire_events_become_experimental_alerts(alerts: Alerts) -> None:
    r = Rig(alerts, analysed_config(motion={"enabled": False}, fire_experimental=True))
    try:
        r.watch.start()
        fire = r.watch.fire["yard"]
        [(cam_id, lease)] = r.pictures.leases
        assert cam_id == "yard" and lease.kwargs["fps"] == 5
        assert lease.kwargs["height"] == fire.settings.height
        assert fire.on_fire is not None
        fire.on_fire(FireEvent(2_000.0, 0.0412345, 0.12345, JPEG))
        [alert] = await wait_alerts(alerts, 1)
        assert alert.kind == "fire_experimental" and alert.to_json()["experimental"] is True
        assert alert.details["fraction"] == 0.0412 and alert.details["flicker"] == 0.123
        assert alert.details["experimental"] is True and alert.at == 2_000.0
        await r.watch.close()
        assert lease.released and r.pictures.leases[0][1].released
    finally:
        await r.close()


# -- motion config ------------------------------------------------------------------------------
def test_detector_of_takes_zones_and_settings() -> None:
    motion = MotionConfig.model_validate(
        {
            "zones": [GATE, {"polygon": [[0, 0], [1, 0], [0, 1]]}],
            "threshold": 40,
            "min_area": 0.02,
            "alpha": 0.2,
            "min_frames": 3,
            "quiet": 1.5,
            "cooldown": 12,
            "height": 72,
        }
    )
    detector = detector_of(motion)
    assert [z.name for z in detector.zones] == ["gate", "zone"]
    assert detector.zones[1].polygon == ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0))
    s = detector.settings
    assert (s.threshold, s.min_area, s.alpha, s.min_frames, s.quiet, s.cooldown, s.height) == (
        40,
        0.02,
        0.2,
        3,
        1.5,
        12.0,
        72,
    )
    assert detector.schedule.windows == () and detector.schedule.active(0.0)


def test_schedule_of_after_hours_runs_past_midnight() -> None:
    motion = MotionConfig.model_validate(
        {"schedule": [{"days": [1, 2, 3, 4, 5], "start": "18:00", "end": "08:00"}]}
    )
    schedule = schedule_of(motion)
    [window] = schedule.windows
    assert window.days == frozenset({1, 2, 3, 4, 5})
    assert (window.start, window.end) == (dt.time(18, 0), dt.time(8, 0))
    assert schedule.timezone == "Asia/Shanghai"
    tz = ZoneInfo("Asia/Shanghai")

    def at(day: int, hour: int, minute: int = 0) -> float:
        return dt.datetime(2026, 12, day, hour, minute, tzinfo=tz).timestamp()

    assert schedule.active(at(1, 19))  # Tuesday evening
    assert schedule.active(at(2, 7, 59))  # Wednesday early, from Tuesday
    assert not schedule.active(at(2, 12))  # Wednesday noon
    assert not schedule.active(at(5, 20))  # Saturday evening
    assert schedule.active(at(5, 7))  # Saturday early, from Friday
    assert not schedule.active(at(7, 7))  # Monday early: Sunday is off


@pytest.mark.parametrize(
    "motion",
    [
        {"zones": [{"polygon": [[0, 0], [1, 0]]}]},  # fewer than 3 points
        {"zones": [{"polygon": [[0, 0], [1.5, 0], [0, 1]]}]},  # outside the picture
        {"schedule": [{"start": "25:00"}]},
        {"schedule": [{"days": [0]}]},
        {"timezone": "Mars/Olympus"},
        {"zone": []},  # a typo is an error, not a default
    ],
)
def test_bad_motion_config_is_refused(motion: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        MotionConfig.model_validate(motion)
