"""EXPERIMENTAL fire-like colour/flicker heuristic. Not a fire detector.

Flames are bright, saturated, red-to-yellow (R >= G > B) and flicker: the flame-coloured area
changes from picture to picture. The heuristic flags a camera when flame-coloured pixels cover
at least `min_fraction` of the picture AND that area fluctuates (coefficient of variation over
the last `window` pictures at least `min_flicker`) for `min_frames` pictures in a row. Red
clothes, sunsets, brake lights and sodium lamps fool it; alerts it raises carry
`experimental: true` and the console labels them 实验性 experimental. Like `MotionDetector`, it
runs in the camera's decode thread.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

from streams.decoded import DecodedFrame

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class FireSettings:
    height: int = 120  # analysis picture height, px
    min_red: int = 160  # R channel of a flame-coloured pixel
    min_saturation: int = 90  # HSV S (0..255)
    min_fraction: float = 0.01  # flame-coloured share of the picture
    min_flicker: float = 0.08  # coefficient of variation of that share over the window
    window: int = 10  # pictures
    min_frames: int = 5  # consecutive suspicious pictures before an alert
    cooldown: float = 120.0  # seconds


@dataclass(frozen=True, slots=True)
class FireEvent:
    at: float
    fraction: float
    flicker: float
    snapshot: bytes = field(repr=False)
    experimental: bool = True


def flame_mask(image: Image, settings: FireSettings) -> Image:
    b, g, r = (image[:, :, i].astype(np.int16) for i in range(3))
    hsv = cast(Image, cv2.cvtColor(image, cv2.COLOR_BGR2HSV))
    mask = (
        (r >= settings.min_red)
        & (r >= g)
        & (g > b)
        & (r - b > 60)
        & (hsv[:, :, 1] >= settings.min_saturation)
    )
    return mask.astype(np.uint8)


class FireHeuristic:
    def __init__(
        self,
        settings: FireSettings = FireSettings(),
        on_fire: Callable[[FireEvent], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_fire = on_fire
        self._fractions: deque[float] = deque(maxlen=settings.window)
        self._streak = 0
        self._last_alert = -1e18
        self.frames = 0
        self.alerts = 0

    def listener(self, frame: DecodedFrame) -> Callable[[], None] | None:
        event = self.process(frame.image, frame.captured)
        if event is None or self.on_fire is None:
            return None
        return functools.partial(self.on_fire, event)

    def process(self, image: Image, captured: float) -> FireEvent | None:
        s = self.settings
        self.frames += 1
        h = min(s.height, image.shape[0])
        w = max(2, round(image.shape[1] * h / image.shape[0]))
        small = cast(Image, cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA))
        fraction = float(flame_mask(small, s).mean())
        self._fractions.append(fraction)
        if len(self._fractions) < s.window:
            return None
        mean = float(np.mean(self._fractions))
        flicker = float(np.std(self._fractions)) / mean if mean > 0 else 0.0
        if fraction >= s.min_fraction and flicker >= s.min_flicker:
            self._streak += 1
        else:
            self._streak = 0
        if self._streak < s.min_frames or captured - self._last_alert < s.cooldown:
            return None
        self._last_alert = captured
        self._streak = 0
        self.alerts += 1
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
        snapshot = bytes(cast(npt.NDArray[np.uint8], jpeg).tobytes()) if ok else b""
        return FireEvent(captured, fraction, flicker, snapshot)
