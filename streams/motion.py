"""Motion detection: the cheap recipe proven in monitoring rooms.

Luma plane scaled to ~100 px high and blurred, compared with a running average of the scene
(`cv2.accumulateWeighted`), thresholded, dilated, masked by the camera's zones (polygons in
normalised 0..1 coordinates), and the largest contour's area compared with `min_area` (a
fraction of the picture). `min_frames` moving pictures in a row start an *episode*; an episode
raises at most one alert and ends after `quiet` seconds without motion; a new alert needs
`cooldown` seconds since the last one. Outside the camera's schedule nothing is raised (the
background keeps learning, so the scene is known when the schedule opens).

`MotionDetector.process()` is plain blocking numpy/OpenCV work: it runs in the camera's decode
thread (`DecodedTap` listener), never on the event loop.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import numpy.typing as npt

from streams.decoded import DecodedFrame

Image = npt.NDArray[np.uint8]
Point = tuple[float, float]
DILATE_KERNEL: Image = np.ones((3, 3), np.uint8)  # read only


@dataclass(frozen=True, slots=True)
class Zone:
    name: str
    polygon: tuple[Point, ...]  # normalised (x, y), 0..1, at least 3 points


@dataclass(frozen=True, slots=True)
class Window:
    """Weekdays (ISO: 1 = Monday) and a time range; `end <= start` runs past midnight (the
    part after midnight belongs to the day the window started)."""

    days: frozenset[int]
    start: dt.time
    end: dt.time

    def contains(self, when: dt.datetime) -> bool:
        day, t = when.isoweekday(), when.time()
        if self.start < self.end:
            return day in self.days and self.start <= t < self.end
        previous = 7 if day == 1 else day - 1
        return (day in self.days and t >= self.start) or (previous in self.days and t < self.end)


@dataclass(frozen=True, slots=True)
class Schedule:
    """When alerts may be raised; no windows means always."""

    windows: tuple[Window, ...] = ()
    timezone: str = "Asia/Shanghai"

    def active(self, timestamp: float) -> bool:
        if not self.windows:
            return True
        when = dt.datetime.fromtimestamp(timestamp, ZoneInfo(self.timezone))
        return any(w.contains(when) for w in self.windows)


@dataclass(frozen=True, slots=True)
class MotionSettings:
    height: int = 100  # analysis picture height, px
    threshold: int = 25  # luma difference that counts as change
    min_area: float = 0.005  # largest moving blob, fraction of the picture
    alpha: float = 0.1  # running-average weight of a new picture
    min_frames: int = 2  # moving pictures in a row to start an episode
    quiet: float = 3.0  # seconds without motion that end an episode
    cooldown: float = 30.0  # seconds between two alerts of one camera
    warmup: int = 5  # pictures to learn the scene before anything counts


@dataclass(frozen=True, slots=True)
class MotionEvent:
    at: float  # capture time of the picture that raised it
    zone: str  # the zone it was seen in ("" = whole picture)
    area: float  # the blob's area, fraction of the picture
    box: tuple[float, float, float, float]  # blob bounding box, normalised x, y, w, h
    snapshot: bytes = field(repr=False)  # JPEG of the picture with the box drawn


def zone_mask(polygon: Sequence[Point], width: int, height: int) -> Image:
    mask: Image = np.zeros((height, width), np.uint8)
    points = np.array(
        [[round(x * (width - 1)), round(y * (height - 1))] for x, y in polygon], np.int32
    )
    cv2.fillPoly(mask, [points], 255)
    return mask


class MotionDetector:
    def __init__(
        self,
        *,
        zones: Sequence[Zone] = (),
        schedule: Schedule = Schedule(),
        settings: MotionSettings = MotionSettings(),
        on_motion: Callable[[MotionEvent], None] | None = None,
    ) -> None:
        self.zones = tuple(zones)
        self.schedule = schedule
        self.settings = settings
        self.on_motion = on_motion
        self._background: npt.NDArray[np.float32] | None = None
        self._masks: list[tuple[str, Image | None]] = []
        self._streak = 0
        self._in_episode = False
        self._last_motion = 0.0
        self._last_alert = -1e18
        # counters (decode thread)
        self.frames = 0
        self.moving_frames = 0
        self.alerts = 0
        self.suppressed = 0  # episodes within the cooldown or outside the schedule

    def listener(self, frame: DecodedFrame) -> Callable[[], None] | None:
        """A `DecodedTap` listener: analyse in the decode thread, report on the event loop."""
        event = self.process(frame.image, frame.captured)
        if event is None or self.on_motion is None:
            return None
        return functools.partial(self.on_motion, event)

    def _prepare(self, image: Image) -> Image:
        gray = cast(Image, cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)) if image.ndim == 3 else image
        h = min(self.settings.height, gray.shape[0])
        w = max(2, round(gray.shape[1] * h / gray.shape[0]))
        small = cast(Image, cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA))
        return cast(Image, cv2.GaussianBlur(small, (5, 5), 0))

    def process(self, image: Image, captured: float) -> MotionEvent | None:
        small = self._prepare(image)
        h, w = small.shape
        if self._background is None or self._background.shape != small.shape:
            self._background = small.astype(np.float32)
            self._masks = [(z.name, zone_mask(z.polygon, w, h)) for z in self.zones] or [("", None)]
            self.frames = 0
            return None
        diff = cv2.absdiff(small, cv2.convertScaleAbs(self._background))
        cv2.accumulateWeighted(small, self._background, self.settings.alpha)
        self.frames += 1
        if self.frames < self.settings.warmup:
            return None
        _, moving = cv2.threshold(diff, self.settings.threshold, 255, cv2.THRESH_BINARY)
        moving = cv2.dilate(moving, DILATE_KERNEL, iterations=2)
        found = self._largest_blob(cast(Image, moving), w * h)
        if found is None:
            self._streak = 0
        else:
            self._streak += 1
            self.moving_frames += 1
            self._last_motion = captured
        if self._in_episode:
            if captured - self._last_motion >= self.settings.quiet:
                self._in_episode = False
            return None
        if found is None or self._streak < self.settings.min_frames:
            return None
        self._in_episode = True
        cooling = captured - self._last_alert < self.settings.cooldown
        if cooling or not self.schedule.active(captured):
            self.suppressed += 1
            return None
        self._last_alert = captured
        self.alerts += 1
        zone, area, box = found
        return MotionEvent(captured, zone, area, box, _snapshot(image, box))

    def _largest_blob(
        self, moving: Image, pixels: int
    ) -> tuple[str, float, tuple[float, float, float, float]] | None:
        best: tuple[str, float, tuple[float, float, float, float]] | None = None
        h, w = moving.shape
        for name, mask in self._masks:
            inside = moving if mask is None else cv2.bitwise_and(moving, mask)
            contours, _ = cv2.findContours(inside, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            for contour in contours:
                area = float(cv2.contourArea(contour)) / pixels
                if area >= self.settings.min_area and (best is None or area > best[1]):
                    x, y, bw, bh = cv2.boundingRect(contour)
                    best = (name, area, (x / w, y / h, bw / w, bh / h))
        return best


def _snapshot(image: Image, box: tuple[float, float, float, float], quality: int = 80) -> bytes:
    picture = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    h, w = picture.shape[:2]
    x, y, bw, bh = box
    cv2.rectangle(
        picture,
        (int(x * w), int(y * h)),
        (int((x + bw) * w), int((y + bh) * h)),
        (0, 0, 255),
        max(1, h // 120),
    )
    ok, jpeg = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return bytes(cast(npt.NDArray[np.uint8], jpeg).tobytes()) if ok else b""
