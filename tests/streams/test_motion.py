"""Motion detection: zones, schedules, one alert per episode; a synthetic intruder camera."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from streams.decoded import DecodedTaps
from streams.fire import FireHeuristic
from streams.motion import MotionDetector, MotionEvent, MotionSettings, Schedule, Window, Zone
from streams.stream import Stream

Image = npt.NDArray[np.uint8]
RIGHT = Zone("right", ((0.5, 0.2), (0.95, 0.2), (0.95, 0.8), (0.5, 0.8)))
TOP = Zone("top", ((0.0, 0.0), (1.0, 0.0), (1.0, 0.2), (0.0, 0.2)))
ALL_WEEK = frozenset(range(1, 8))
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
FAST = MotionSettings(quiet=1.0, cooldown=5.0)


def scene(box_x: float | None, *, y: float = 0.4, size: float = 0.2) -> Image:
    """A still grey room (320×240) with a dark box whose left edge is at `box_x`."""
    img: Image = np.full((240, 320, 3), 170, np.uint8)
    cv2.rectangle(img, (30, 30), (90, 90), (90, 120, 150), -1)
    if box_x is not None:
        x, yy, s = int(box_x * 320), int(y * 240), int(size * 240)
        img[yy : yy + s, max(0, x) : max(0, x + s)] = 40
    return img


def run(
    detector: MotionDetector,
    positions: Sequence[float | None],
    *,
    start: float = 1000.0,
    fps: float = 5.0,
    y: float = 0.4,
) -> list[MotionEvent]:
    events = []
    for i, pos in enumerate(positions):
        event = detector.process(scene(pos, y=y), start + i / fps)
        if event is not None:
            events.append(event)
    return events


def walk_in(until: float = 0.7, still: int = 30) -> list[float | None]:
    """Nothing for 2 s, then the box walks in from the left and stops at `until`."""
    path: list[float | None] = [None] * 10
    path += [x / 100 for x in range(-20, int(until * 100), 6)]
    return path + [until] * still


def test_object_entering_the_zone_raises_exactly_one_alert() -> None:
    detector = MotionDetector(zones=[RIGHT], settings=FAST)
    events = run(detector, walk_in())
    assert len(events) == 1
    event = events[0]
    assert event.zone == "right"
    assert event.area >= FAST.min_area
    x, y, w, h = event.box
    assert x >= 0.5 - 0.05 and 0.3 <= y <= 0.5 and w > 0 and h > 0
    assert event.snapshot.startswith(b"\xff\xd8"), "a JPEG snapshot"
    assert detector.alerts == 1


def test_motion_outside_the_zone_raises_nothing() -> None:
    detector = MotionDetector(zones=[TOP], settings=FAST)
    assert run(detector, walk_in()) == []
    assert detector.moving_frames == 0  # masked out, not just suppressed


def test_motion_outside_the_schedule_raises_nothing() -> None:
    # 1000 s after the epoch is Thursday 08:16 in Shanghai; the window is 18:00 → 06:00
    night = Window(ALL_WEEK, dt.time(18), dt.time(6))
    detector = MotionDetector(zones=[RIGHT], schedule=Schedule((night,)), settings=FAST)
    assert run(detector, walk_in()) == []
    assert detector.suppressed == 1
    inside = MotionDetector(zones=[RIGHT], schedule=Schedule((night,)), settings=FAST)
    evening = dt.datetime(2026, 3, 5, 21, 30, tzinfo=SHANGHAI).timestamp()
    assert len(run(inside, walk_in(), start=evening)) == 1


def test_still_scene_and_whole_picture() -> None:
    assert run(MotionDetector(settings=FAST), [None] * 40) == []
    assert len(run(MotionDetector(settings=FAST), walk_in())) == 1  # no zones: whole picture


def test_one_alert_per_episode_and_cooldown() -> None:
    detector = MotionDetector(zones=[RIGHT], settings=FAST)
    # moving back and forth inside the zone for 6 s: one episode, one alert
    wander: list[float | None] = [0.55 + 0.1 * ((i // 3) % 2) for i in range(30)]
    assert len(run(detector, [None] * 10 + wander)) == 1
    # quiet for 4 s, then a new episode after the 5 s cooldown: a second alert
    later = MotionDetector(zones=[RIGHT], settings=FAST)
    path: list[float | None] = [None] * 10 + wander[:10] + [None] * 20 + wander[:10]
    events = run(later, path)
    assert len(events) == 2 and events[1].at - events[0].at >= FAST.cooldown
    # a second episode inside the cooldown is suppressed
    short = MotionDetector(zones=[RIGHT], settings=MotionSettings(quiet=0.5, cooldown=60))
    path = [None] * 10 + wander[:6] + [None] * 15 + wander[:6]
    assert len(run(short, path)) == 1 and short.suppressed == 1


def test_windows_wrap_midnight_and_follow_weekdays() -> None:
    weekday_nights = Window(frozenset({1, 2, 3, 4, 5}), dt.time(18), dt.time(8))
    friday_late = dt.datetime(2026, 3, 6, 23, 0)  # a Friday
    saturday_early = dt.datetime(2026, 3, 7, 3, 0)  # the Friday night's tail
    saturday_late = dt.datetime(2026, 3, 7, 23, 0)
    monday_early = dt.datetime(2026, 3, 9, 3, 0)  # Sunday night is not in the window
    assert weekday_nights.contains(friday_late)
    assert weekday_nights.contains(saturday_early)
    assert not weekday_nights.contains(saturday_late)
    assert not weekday_nights.contains(monday_early)
    office = Window(ALL_WEEK, dt.time(9), dt.time(17))
    ts = dt.datetime(2026, 3, 6, 10, 0, tzinfo=SHANGHAI).timestamp()  # 02:00 UTC
    assert Schedule((office,)).active(ts)
    assert not Schedule((office,), timezone="UTC").active(ts)
    assert Schedule().active(ts)


def test_fire_heuristic_is_experimental_and_needs_flicker() -> None:
    rng = np.random.default_rng(1)

    def flame(radius: int) -> Image:
        img = scene(None)
        cv2.circle(img, (200, 150), radius, (0, 140, 255), -1)  # orange (BGR)
        return img

    flicker = FireHeuristic(on_fire=lambda e: None)
    events = [flicker.process(flame(int(rng.integers(12, 30))), i / 5) for i in range(40)]
    fired = [e for e in events if e is not None]
    assert len(fired) == 1 and fired[0].experimental and fired[0].fraction > 0.01
    steady = FireHeuristic()
    assert all(steady.process(flame(25), i / 5) is None for i in range(40))
    grey = FireHeuristic()
    assert all(grey.process(scene(0.5), i / 5) is None for i in range(40))


async def test_synthetic_intruder_camera() -> None:
    """A camera where a box walks into the right half after 2 s: the right zone gets exactly
    one alert; a zone the box never enters and a closed schedule get none. One decode."""
    url = "synthetic://intruder?size=320x240&fps=15&gop=15&scene=intruder&enter=2&loop=30"
    stream = Stream("intruder", url, linger=0.2)
    taps = DecodedTaps()
    seen: dict[str, list[MotionEvent]] = {"right": [], "top": [], "closed": []}
    closed = Schedule((Window(ALL_WEEK, dt.time(0), dt.time(0, 0, 1)),))
    detectors = {
        "right": MotionDetector(zones=[RIGHT], settings=FAST, on_motion=seen["right"].append),
        "top": MotionDetector(zones=[TOP], settings=FAST, on_motion=seen["top"].append),
        "closed": MotionDetector(
            zones=[RIGHT], schedule=closed, settings=FAST, on_motion=seen["closed"].append
        ),
    }
    try:
        for det in detectors.values():
            taps.lease("intruder", stream, fps=5, height=100, listener=det.listener)
        async with asyncio.timeout(20):
            while not seen["right"]:
                await asyncio.sleep(0.1)
        await asyncio.sleep(3.0)  # the box stops inside the zone: still one alert
        assert len(seen["right"]) == 1
        assert seen["top"] == [] and seen["closed"] == []
        assert detectors["closed"].suppressed == 1
        tap = taps.get("intruder")
        assert tap is not None and tap.users == 3
        assert tap.decoded >= 3 * (tap.delivered - 2)  # 15 fps decoded once, 5 fps converted
    finally:
        await taps.close()
        await stream.close()
