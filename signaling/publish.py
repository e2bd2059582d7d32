"""Room media plane: browsers publish camera + microphone once, the hub forwards them (an SFU).

`Publications.publish()` answers a participant's WHIP-style offer: its encoded frames go into
the publication's relays without decoding (signaling/forward.py). `subscribe()` answers another
participant's offer to receive one publication: sendonly tracks that read those relays, so the
hub never encodes per receiver. H.264 video goes out through FastSender (one packetization per
frame for all subscribers); VP8 and Opus through aiortc's own sender with `pack()`.

Audio is forwarded, not mixed: each participant receives the other N-1 Opus streams and its
browser mixes them. The hub reads each microphone's RFC 6464 level from the RTP header
(`Publication.audio_level`) for the active speaker, without decoding.

The registry owns every peer and the tasks that watch them. A peer that fails, closes or does
not connect within `connect_timeout` is closed; `on_close(publication, reason)` is called once
for every publication that ends, whatever ended it (the room logic decides about seats).
`close_all()` leaves no task, thread or peer behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription

from config.schema import IceServer
from signaling.forward import ReceiverTap
from signaling.forward_offer import check_offer, publisher_preferences
from signaling.forward_publication import KEYFRAME_INTERVAL, Publication
from signaling.forward_subscription import Subscription, add_tracks
from signaling.ice import rtc_configuration
from signaling.whep import OfferError
from streams.relay import Relay

__all__ = ["OfferError", "Publication", "Publications", "Subscription", "UnknownPublication"]

log = logging.getLogger(__name__)

VIDEO_GOP_LIMIT = 60  # frames replayed to a late subscriber; longer GOPs → a PLI instead


class UnknownPublication(LookupError):
    """No live publication has this id."""


class Publications:
    def __init__(
        self,
        ice_servers: list[IceServer],
        *,
        connect_timeout: float = 30.0,
        on_close: Callable[[Publication, str], None] | None = None,
        fast_rtp: bool = True,
        on_unsubscribe: Callable[[Subscription, str], None] | None = None,
        gop_limit: int = VIDEO_GOP_LIMIT,
        queue_packets: int = 60,
        keyframe_interval: float = KEYFRAME_INTERVAL,
    ) -> None:
        self._ice_servers = ice_servers
        self._connect_timeout = connect_timeout
        self._on_close = on_close
        self._on_unsubscribe = on_unsubscribe
        self._fast_rtp = fast_rtp
        self._gop_limit = gop_limit
        self._queue_packets = queue_packets
        self._keyframe_interval = keyframe_interval
        self._publications: dict[str, Publication] = {}
        self._subscriptions: dict[str, Subscription] = {}
        self._watchers: set[asyncio.Task[None]] = set()  # wait for ICE; safe to cancel
        self._closers: set[asyncio.Task[bool]] = set()  # closing a peer; never cancelled
        self.published = 0
        self.subscribed = 0
        self.failed = 0

    # -- lookups ------------------------------------------------------------------------------
    def get(self, publication_id: str) -> Publication | None:
        return self._publications.get(publication_id)

    def publications(self) -> list[Publication]:
        return list(self._publications.values())

    def subscriptions(self, publication_id: str | None = None) -> list[Subscription]:
        return [
            s
            for s in self._subscriptions.values()
            if publication_id is None or s.publication.id == publication_id
        ]

    def subscribers(self, publication_id: str) -> int:
        return len(self.subscriptions(publication_id))

    def stats(self) -> dict[str, object]:
        """Counters for /api/streams and /metrics."""
        return {
            "publications": len(self._publications),
            "subscriptions": len(self._subscriptions),
            "published": self.published,
            "subscribed": self.subscribed,
            "failed": self.failed,
        }

    # -- publishers ---------------------------------------------------------------------------
    async def publish(
        self, offer_sdp: str, *, owner: str, publication_id: str | None = None
    ) -> tuple[Publication, str]:
        """Answer a participant's offer to send its camera and microphone (WHIP-style)."""
        kinds = check_offer(offer_sdp, publish=True)
        pid = publication_id or secrets.token_urlsafe(12)
        if pid in self._publications:
            raise ValueError(f"publication {pid} exists: unpublish it first")
        pc = RTCPeerConnection(rtc_configuration(self._ice_servers))
        video = Relay(f"pub:{pid}:video", gop_limit=self._gop_limit)
        audio = Relay(f"pub:{pid}:audio", gop_limit=1) if "audio" in kinds else None
        try:
            transceivers: dict[str, RTCRtpTransceiver] = {}
            for kind in sorted(kinds, key=("video", "audio").index):
                transceivers[kind] = pc.addTransceiver(kind, direction="recvonly")
                # as answerer aiortc fixes the codecs in setRemoteDescription (MEDIA-NOTES)
                transceivers[kind].setCodecPreferences(publisher_preferences(kind))
            await _set_offer(pc, offer_sdp)
            video_t = transceivers.get("video")
            codec = video_t._codecs[0].name.lower() if video_t is not None else ""
            pub = Publication(
                pid,
                owner,
                pc,
                video=video,
                audio=audio,
                codec=codec,
                keyframe_interval=self._keyframe_interval,
            )
            if video_t is not None:
                pub.video_tap = ReceiverTap(video_t.receiver, video, "video")
                pub.video_tap.install()
            if audio is not None:
                pub.audio_tap = ReceiverTap(transceivers["audio"].receiver, audio, "audio")
                pub.audio_tap.install()
            _disable_other_receivers(pc, transceivers.values())
            await pc.setLocalDescription(await pc.createAnswer())
        except BaseException:
            video.close()
            if audio is not None:
                audio.close()
            await pc.close()
            self.failed += 1
            raise
        self._publications[pid] = pub
        self.published += 1
        self._watch(pc, pub.connected, lambda reason: self._spawn_unpublish(pid, reason))
        log.info("publication %s: %s publishes %s (%s)", pid, owner, sorted(kinds), codec)
        return pub, pc.localDescription.sdp

    async def unpublish(self, publication_id: str, reason: str = "closed") -> bool:
        """End a publication: its relays, every subscription to it, the publisher's peer."""
        pub = self._publications.pop(publication_id, None)
        if pub is None or pub.closed:
            return False
        for sub in self.subscriptions(publication_id):
            await self.unsubscribe(sub.id, reason=f"publication ended ({reason})")
        await pub.close()
        log.info("publication %s ended (%s)", publication_id, reason)
        if self._on_close is not None:
            try:
                self._on_close(pub, reason)
            except Exception:  # the room's bookkeeping must not break the media plane
                log.exception("on_close(%s) failed", publication_id)
        return True

    def _spawn_unpublish(self, publication_id: str, reason: str) -> None:
        self._spawn(self.unpublish(publication_id, reason))

    # -- subscribers --------------------------------------------------------------------------
    async def subscribe(self, publication_id: str, offer_sdp: str, *, user: str) -> tuple[str, str]:
        """Answer `user`'s offer to receive a publication's video and audio: (session id,
        SDP answer). Raises UnknownPublication or OfferError."""
        kinds = check_offer(offer_sdp, publish=False)
        pub = self._publications.get(publication_id)
        if pub is None or pub.closed:
            raise UnknownPublication(publication_id)
        sid = secrets.token_urlsafe(12)
        pc = RTCPeerConnection(rtc_configuration(self._ice_servers))
        sub = Subscription(sid, pub, user, pc)
        try:
            transceivers = add_tracks(sub, kinds, queue_packets=self._queue_packets)
            await _set_offer(pc, offer_sdp)
            _disable_other_receivers(pc, transceivers)
            sub.start_senders(fast_rtp=self._fast_rtp)
            await pc.setLocalDescription(await pc.createAnswer())
            if pub.closed:  # unpublished while this answer was being made
                raise UnknownPublication(publication_id)
        except BaseException:
            sub.stop_tracks()
            await pc.close()
            self.failed += 1
            raise
        self._subscriptions[sid] = sub
        self.subscribed += 1

        def on_connected() -> None:
            # a late subscriber starts on the cached GOP; when the cache holds no keyframe
            # (the publisher's GOP is longer than gop_limit), ask the publisher for one
            if not pub.video.gop():
                pub.request_keyframe()

        self._watch(
            pc,
            sub.connected,
            lambda reason: self._spawn(self.unsubscribe(sid, reason)),
            on_connected=on_connected,
        )
        log.info("subscription %s: %s receives %s %s", sid, user, pub.id, sorted(kinds))
        return sid, pc.localDescription.sdp

    async def unsubscribe(self, session_id: str, reason: str = "closed") -> bool:
        sub = self._subscriptions.pop(session_id, None)
        if sub is None or sub.closed:
            return False
        sub.closed = True
        sub.stop_tracks()
        await sub.pc.close()
        log.info("subscription %s closed (%s)", session_id, reason)
        if self._on_unsubscribe is not None:
            try:
                self._on_unsubscribe(sub, reason)
            except Exception:
                log.exception("on_unsubscribe(%s) failed", session_id)
        return True

    # -- tasks --------------------------------------------------------------------------------
    def _watch(
        self,
        pc: RTCPeerConnection,
        connected: asyncio.Event,
        end: Callable[[str], None],
        *,
        on_connected: Callable[[], None] | None = None,
    ) -> None:
        @pc.on("connectionstatechange")
        def _state() -> None:
            state = pc.connectionState
            if state == "connected" and not connected.is_set():
                connected.set()
                if on_connected is not None:
                    on_connected()
            elif state in ("failed", "closed"):
                end(f"connection {state}")

        async def watch() -> None:
            try:
                async with asyncio.timeout(self._connect_timeout):
                    await connected.wait()
            except TimeoutError:
                end("ICE did not connect in time")

        task = asyncio.get_running_loop().create_task(watch())
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[bool] = asyncio.get_running_loop().create_task(coro)
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    async def close_all(self) -> None:
        for pid in list(self._publications):
            await self.unpublish(pid, reason="shutdown")
        for sid in list(self._subscriptions):
            await self.unsubscribe(sid, reason="shutdown")
        watchers = list(self._watchers)
        for task in watchers:
            task.cancel()
        for task in watchers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # a peer being closed must finish closing: cancelling aiortc's close() midway
        # breaks it (it awaits its own "closed" future)
        while self._closers:
            await asyncio.gather(*self._closers)


async def _set_offer(pc: RTCPeerConnection, offer_sdp: str) -> None:
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
    except Exception as err:
        raise OfferError(f"cannot use the offer: {err or type(err).__name__}") from None


def _disable_other_receivers(pc: RTCPeerConnection, ours: Any) -> None:
    """Receivers aiortc made for m-lines the hub did not ask for drop what they get (they
    would decode it otherwise)."""
    mine = set(map(id, ours))
    for transceiver in pc.getTransceivers():
        if id(transceiver) not in mine:
            transceiver.receiver._enabled = False
