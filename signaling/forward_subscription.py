"""Subscription: one participant receiving one publication's video and audio from the hub.

The tracks read the publication's relays (RelayTrack), so every subscriber gets the publisher's
own encoded frames: H.264 through FastSender (packetized once per frame for all), Opus through
its audio twin (signaling/forward_audio.py), VP8 (and everything when `fast_rtp` is off)
through aiortc's sender, whose `pack()` passes them through. A subscriber's PLI or FIR becomes a
rate-limited keyframe request to the publisher.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction

from aiortc import RTCPeerConnection, RTCRtpSender, RTCRtpTransceiver

from signaling.fastpath import FastSender
from signaling.forward import OPUS_CLOCK
from signaling.forward_audio import OpusFastSender
from signaling.forward_offer import subscriber_preferences
from signaling.forward_publication import Publication
from signaling.track import RelayTrack
from signaling.whep import OfferError

OPUS_TIME_BASE = Fraction(1, OPUS_CLOCK)
AUDIO_QUEUE = 50  # Opus packets per subscriber: 1 s


@dataclass(eq=False)
class Subscription:
    id: str
    publication: Publication
    user: str
    pc: RTCPeerConnection
    video: RelayTrack | None = None
    audio: RelayTrack | None = None
    video_sender: RTCRtpSender | None = None
    audio_sender: RTCRtpSender | None = None
    fast: FastSender | None = None
    audio_fast: OpusFastSender | None = None
    created: float = field(default_factory=time.time)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False
    keyframe_requests: int = 0

    def start_senders(self, *, fast_rtp: bool) -> None:
        """After setRemoteDescription: the lean send loops, and keyframe requests wired to
        the publisher."""
        if fast_rtp and self.audio_sender is not None and self.audio is not None:
            self.audio_fast = OpusFastSender.install(self.audio_sender, self.audio)
        sender = self.video_sender
        if sender is None or self.video is None:
            return
        if fast_rtp and self.publication.codec == "h264":
            self.fast = FastSender.install(sender, self.video)
        original = sender._send_keyframe
        publication = self.publication

        def send_keyframe() -> None:  # the subscriber sent a PLI or FIR
            original()
            self.keyframe_requests += 1
            publication.request_keyframe()

        sender._send_keyframe = send_keyframe  # type: ignore[method-assign]

    def stop_tracks(self) -> None:
        for track in (self.video, self.audio):
            if track is not None:
                track.stop()

    def stats(self) -> dict[str, object]:
        return {
            "id": self.id,
            "publication": self.publication.id,
            "user": self.user,
            "state": self.pc.connectionState,
            "video_sent": self.video.sent if self.video is not None else 0,
            "video_drops": self.video.drops if self.video is not None else 0,
            "audio_sent": self.audio.sent if self.audio is not None else 0,
            "keyframe_requests": self.keyframe_requests,
            "age": round(time.time() - self.created, 1),
        }


def add_tracks(
    sub: Subscription, kinds: Iterable[str], *, queue_packets: int
) -> list[RTCRtpTransceiver]:
    """Sendonly transceivers for what the offer asks and the publication has, with the
    publication's codec as the only preference (set before setRemoteDescription)."""
    pub = sub.publication
    pc = sub.pc
    wanted = set(kinds)
    transceivers: list[RTCRtpTransceiver] = []
    if "video" in wanted and pub.codec:
        video = pub.video
        sub.video = RelayTrack(lambda: video, name=f"sub:{sub.id}", maxsize=queue_packets)
        transceiver = pc.addTransceiver(sub.video, direction="sendonly")
        transceiver.setCodecPreferences(subscriber_preferences("video", pub.codec))
        sub.video_sender = transceiver.sender
        transceivers.append(transceiver)
    audio = pub.audio
    if "audio" in wanted and audio is not None:
        sub.audio = RelayTrack(
            lambda: audio,
            name=f"sub:{sub.id}:audio",
            maxsize=AUDIO_QUEUE,
            kind="audio",
            time_base=OPUS_TIME_BASE,
        )
        transceiver = pc.addTransceiver(sub.audio, direction="sendonly")
        transceiver.setCodecPreferences(subscriber_preferences("audio", "opus"))
        sub.audio_sender = transceiver.sender
        transceivers.append(transceiver)
    if not transceivers:
        has = [k for k, ok in (("video", pub.codec), ("audio", audio is not None)) if ok]
        raise OfferError(
            f"nothing to receive: the offer asks for {sorted(wanted)}, "
            f"publication {pub.id} has {has or 'no media'}"
        )
    return transceivers
