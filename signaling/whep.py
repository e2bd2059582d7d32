"""WHEP playback sessions (draft-ietf-wish-whep): one aiortc peer connection per viewer.

The registry owns every session and the tasks that watch them: a peer that fails, closes or
never connects within the timeout is closed and its stream lease released. `close_all()` on
shutdown leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiortc import (
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpSender,
    RTCSessionDescription,
)

from config.schema import IceServer
from signaling.fastpath import FastSender
from signaling.ice import rtc_configuration
from signaling.track import RelayTrack
from streams.stream import Lease, Stream
from streams.tasks import TaskSet

log = logging.getLogger(__name__)


class OfferError(ValueError):
    """The SDP offer cannot be answered; the message says why."""


@dataclass(eq=False)
class WhepSession:
    id: str
    camera: str
    user: str
    pc: RTCPeerConnection
    track: RelayTrack
    lease: Lease
    fast: FastSender | None = None
    created: float = field(default_factory=time.time)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False

    def stats(self) -> dict[str, object]:
        return {
            "id": self.id,
            "camera": self.camera,
            "user": self.user,
            "state": self.pc.connectionState,
            "sent": self.track.sent,
            "drops": self.track.drops,
            "age": round(time.time() - self.created, 1),
        }


def _validate_offer(sdp: str) -> None:
    if not sdp.strip():
        raise OfferError("empty SDP offer")
    if not sdp.lstrip().startswith("v=0"):
        raise OfferError("not an SDP offer (must start with v=0)")
    if "\nm=video" not in sdp.replace("\r\n", "\n"):
        raise OfferError("the offer has no video media section")
    if "ice-ufrag" not in sdp or "fingerprint" not in sdp:
        raise OfferError("the offer lacks ICE credentials or a DTLS fingerprint")


def _h264_preferences() -> list[RTCRtpCodecCapability]:
    caps = RTCRtpSender.getCapabilities("video")
    return [c for c in caps.codecs if c.mimeType.lower() in ("video/h264", "video/rtx")]


class WhepSessions:
    def __init__(
        self,
        ice_servers: list[IceServer],
        *,
        connect_timeout: float = 30.0,
        queue_packets: int = 60,
        fast_rtp: bool = True,
        on_close: Callable[[WhepSession, str], None] | None = None,
        on_open: Callable[[WhepSession], None] | None = None,
    ) -> None:
        self._on_close = on_close
        self._on_open = on_open  # called once a session is answered (audit: view start)
        self._fast_rtp = fast_rtp
        self._ice_servers = ice_servers
        self._connect_timeout = connect_timeout
        self._queue_packets = queue_packets
        self._sessions: dict[str, WhepSession] = {}
        self._tasks = TaskSet("whep", log)

        self.created = 0
        self.failed = 0

    def get(self, session_id: str) -> WhepSession | None:
        return self._sessions.get(session_id)

    def __len__(self) -> int:
        return len(self._sessions)

    def sessions(self) -> list[WhepSession]:
        return list(self._sessions.values())

    async def create(
        self,
        stream: Stream,
        offer_sdp: str,
        *,
        user: str,
    ) -> tuple[WhepSession, str]:
        """Answer a viewer's offer for `stream`. Returns the session and the SDP answer."""
        _validate_offer(offer_sdp)
        pc = RTCPeerConnection(rtc_configuration(self._ice_servers))
        session_id = secrets.token_urlsafe(12)
        lease = stream.acquire(f"whep:{session_id}", viewer=True)
        track = RelayTrack(
            stream.h264_relay, name=f"whep:{session_id}", maxsize=self._queue_packets
        )
        session = WhepSession(session_id, stream.name, user, pc, track, lease)
        try:
            transceiver = pc.addTransceiver(track, direction="sendonly")
            # preferences must be set before setRemoteDescription: as answerer aiortc fixes
            # the negotiated codecs there (MEDIA-NOTES). Passthrough needs H.264.
            transceiver.setCodecPreferences(_h264_preferences())
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            except Exception as err:
                raise OfferError(f"cannot use the offer: {err or type(err).__name__}") from None
            if self._fast_rtp:
                session.fast = FastSender.install(transceiver.sender, track)
            transcoder = stream.transcoder
            if transcoder is not None:
                # a viewer's keyframe request reaches the shared encoder (rate-limited there)
                sender = transceiver.sender
                original = sender._send_keyframe

                def send_keyframe() -> None:
                    original()
                    transcoder.request_keyframe()

                sender._send_keyframe = send_keyframe  # type: ignore[method-assign]
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except BaseException:
            lease.release()
            track.stop()
            await pc.close()
            self.failed += 1
            raise
        self._sessions[session_id] = session
        self.created += 1
        if self._on_open is not None:
            self._on_open(session)

        @pc.on("connectionstatechange")
        def _state() -> None:
            state = pc.connectionState
            if state == "connected":
                session.connected.set()
            elif state in ("failed", "closed"):
                self._spawn_close(session_id, state)

        self._tasks.spawn(self._watch_connect(session))
        log.info("whep %s: %s viewing %s", session_id, user, stream.name)
        return session, pc.localDescription.sdp

    def _spawn_close(self, session_id: str, reason: str) -> None:
        # closing a peer must finish: cancelling aiortc's close() midway breaks it
        self._tasks.spawn(self.close(session_id, reason=reason), cancellable=False)

    async def _watch_connect(self, session: WhepSession) -> None:
        try:
            async with asyncio.timeout(self._connect_timeout):
                await session.connected.wait()
        except TimeoutError:
            self._spawn_close(session.id, "ICE did not connect in time")

    async def close(
        self,
        session_id: str,
        *,
        reason: str = "closed",
    ) -> bool:
        session = self._sessions.pop(session_id, None)
        if session is None or session.closed:
            return False
        session.closed = True
        session.lease.release()
        session.track.stop()
        await session.pc.close()
        log.info("whep %s closed (%s)", session_id, reason)
        if self._on_close is not None:
            self._on_close(session, reason)
        return True

    async def close_all(self) -> None:
        for session_id in list(self._sessions):
            await self.close(session_id, reason="shutdown")
        await self._tasks.close()
