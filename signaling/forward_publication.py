"""Publication: one room participant's camera and microphone, received once by the hub.

The publisher's encoded frames leave aiortc's jitter buffer into two Relays (ReceiverTap,
signaling/forward.py): `video` (H.264, or VP8 when that is all the browser sends) and `audio`
(Opus). Subscribers read those relays like camera viewers do; nothing is decoded or encoded
per receiver. Keyframe requests from subscribers become PLIs to the publisher, at most one per
`keyframe_interval` (a forced keyframe goes to every subscriber of the publication).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time

from aiortc import RTCPeerConnection

from signaling.forward import ReceiverTap
from streams.relay import Relay

log = logging.getLogger(__name__)

KEYFRAME_INTERVAL = 0.5  # seconds between two PLIs to one publisher


class Publication:
    """One participant's published tracks. Made by `Publications.publish()`."""

    def __init__(
        self,
        publication_id: str,
        owner: str,
        pc: RTCPeerConnection,
        *,
        video: Relay,
        audio: Relay | None,
        codec: str,
        keyframe_interval: float = KEYFRAME_INTERVAL,
    ) -> None:
        self.id = publication_id
        self.owner = owner
        self.pc = pc
        self.video = video
        self.audio = audio
        self.codec = codec  # "h264" | "vp8"; "" for a microphone-only publication
        self.video_tap: ReceiverTap | None = None
        self.audio_tap: ReceiverTap | None = None
        self.created = time.time()
        self.connected = asyncio.Event()
        self.closed = False
        self.keyframe_requests = 0  # asked for by subscribers (and new subscribers)
        self.plis = 0  # PLIs sent to the publisher after rate limiting
        self._keyframe_interval = keyframe_interval
        self._last_pli = -math.inf
        self._trailing: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def audio_muted(self) -> bool:
        """Muted by the room host: the microphone's packets are not forwarded."""
        return self.audio_tap is not None and self.audio_tap.muted

    @audio_muted.setter
    def audio_muted(self, value: bool) -> None:
        if self.audio_tap is not None:
            self.audio_tap.muted = value

    @property
    def audio_level(self) -> float:
        """0..1, smoothed, from the publisher's RTP audio-level header (0 if it sends none)."""
        return self.audio_tap.audio_level if self.audio_tap is not None else 0.0

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe (PLI), rate-limited. A request inside the quiet
        interval is sent when the interval ends, unless a keyframe came meanwhile."""
        tap = self.video_tap
        if self.closed or tap is None:
            return
        self.keyframe_requests += 1
        wait = self._last_pli + self._keyframe_interval - time.monotonic()
        if wait <= 0:
            self._send_pli()
        elif self._trailing is None:
            loop = asyncio.get_running_loop()
            self._trailing = loop.call_later(wait, self._send_trailing, tap.keyframes)

    def _send_trailing(self, keyframes_then: int) -> None:
        self._trailing = None
        if self.video_tap is not None and self.video_tap.keyframes == keyframes_then:
            self._send_pli()

    def _send_pli(self) -> None:
        if self.closed or self.video_tap is None:
            return
        coro = self.video_tap.send_pli()
        if coro is None:  # nothing received yet: its first frame will be a keyframe anyway
            return
        self._last_pli = time.monotonic()
        self.plis += 1
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """End the relays (and so every subscriber's tracks) and the publisher's peer."""
        self.closed = True
        if self._trailing is not None:
            self._trailing.cancel()
            self._trailing = None
        self.video.close()
        if self.audio is not None:
            self.audio.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.pc.close()

    def stats(self) -> dict[str, object]:
        return {
            "id": self.id,
            "owner": self.owner,
            "codec": self.codec,
            "state": self.pc.connectionState,
            "audio_level": round(self.audio_level, 3),
            "keyframe_requests": self.keyframe_requests,
            "plis": self.plis,
            "video": {
                **self.video.stats(),
                **(self.video_tap.stats() if self.video_tap is not None else {}),
            },
            "audio": {
                **(self.audio.stats() if self.audio is not None else {}),
                **(self.audio_tap.stats() if self.audio_tap is not None else {}),
            },
            "age": round(time.time() - self.created, 1),
        }
