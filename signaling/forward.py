"""ReceiverTap: a browser's encoded frames straight from aiortc's jitter buffer into a Relay.

aiortc's `RTCRtpReceiver` always decodes: `_handle_rtp_packet` reassembles complete frames in
its jitter buffer and puts `(codec, encoded_frame)` on `__decoder_queue`, a `queue.Queue` read
by a decoder thread. A forwarding hub (an SFU) wants those encoded frames, not pictures, so the
tap swaps that queue, per receiver and before the receiver starts, for a `ForwardQueue` whose
`put()` publishes each frame to the publication's Relay right there on the event loop. Its
`get()`, called by aiortc's decoder thread, blocks until aiortc stops the receiver
(`put(None)`), so that thread never decodes and exits cleanly: no decoder is ever created.

The tap also wraps the receiver instance's `_handle_rtp_packet` to learn the publisher's media
SSRC (for keyframe requests, PLI) and the RFC 6464 audio level of each microphone packet.

Frames become `Packet`s: H.264 as Annex-B (what aiortc's depacketizer yields), keyframe when an
IDR is present; VP8 keyframe from the payload header; Opus as is, every packet a "keyframe" so
a new listener starts at once. `pts` is the unwrapped RTP timestamp: 90 kHz for video, 48 kHz
for Opus (the audio relay's clock, see `RelayTrack(time_base=...)`).

This reaches into aiortc 1.16 internals (name-mangled receiver attributes); aiortc is pinned
and tests/signaling/test_forward.py covers the hook.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.jitterbuffer import JitterBuffer

from streams import bitstream
from streams.media import Codec, Packet, StreamInfo
from streams.relay import Relay

log = logging.getLogger(__name__)

_RECEIVER = "_RTCRtpReceiver__"
OPUS_CLOCK = 48_000
LEVEL_RISE = 0.5  # smoothing of the audio level per packet (20 ms): quick to rise…
LEVEL_FALL = 0.08  # …slow to fall, so the active speaker does not flicker between words
LEVEL_STALE = 0.5  # seconds without microphone packets → level 0


class ForwardQueue(queue.Queue[Any]):
    """Stands in for a receiver's decoder queue: frames go to `sink`, nothing is queued."""

    def __init__(self, sink: Callable[[Any, Any], None]) -> None:
        super().__init__(maxsize=1)
        self._sink = sink
        self._stopped = threading.Event()
        self.frames = 0

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:  # aiortc stops the receiver: let its decoder thread end
            self._stopped.set()
            return
        codec, encoded_frame = item
        self.frames += 1
        self._sink(codec, encoded_frame)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        # runs in aiortc's decoder thread: wait for the stop, never hand out a frame
        self._stopped.wait()
        return None

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()


def vp8_keyframe(data: bytes) -> bool:
    return bool(data) and data[0] & 0x01 == 0


def vp8_dimensions(data: bytes) -> tuple[int, int]:
    """Width and height from a VP8 keyframe's header (RFC 6386 9.1), (0, 0) if unknown."""
    if len(data) < 10 or data[3:6] != b"\x9d\x01\x2a":
        return 0, 0
    return (data[6] | data[7] << 8) & 0x3FFF, (data[8] | data[9] << 8) & 0x3FFF


class ReceiverTap:
    """Feeds one publisher receiver's complete frames to `relay`, without decoding."""

    def __init__(self, receiver: RTCRtpReceiver, relay: Relay, kind: str) -> None:
        self.receiver = receiver
        self.relay = relay
        self.kind = kind
        self.ssrc: int | None = None
        self.frames = 0
        self.keyframes = 0
        self.skipped = 0  # frames dropped while waiting for a keyframe after a loss
        self.codec_name = ""
        self.level_packets = 0
        self.rtp_packets = 0  # every RTP packet from the publisher, RTX included
        self.rtp_markers = 0  # …of which ended a frame (marker bit)
        self._level = 0.0
        self._level_at = 0.0
        self._need_keyframe = kind == "video"  # never forward a P-frame without its IDR
        self.muted = False  # the room host muted this microphone: frames are not forwarded
        self.muted_frames = 0
        self.queue = ForwardQueue(self._on_frame)
        self._handle_rtp = receiver._handle_rtp_packet
        self._send_pli = receiver._send_rtcp_pli
        self._codecs: dict[int, Any] = receiver.__dict__[_RECEIVER + "codecs"]

    def install(self) -> None:
        """Swap the decoder queue and wrap the RTP/PLI handlers. Call after
        setRemoteDescription and before the connection completes (the receiver starts its
        decoder thread with the queue it holds then)."""
        if self.receiver.__dict__.get(_RECEIVER + "decoder_thread") is not None:
            raise RuntimeError("the receiver already started: too late to tap it")
        setattr(self.receiver, _RECEIVER + "decoder_queue", self.queue)
        if self.kind == "audio":
            # aiortc holds 4 Opus packets (80 ms) before releasing one, for its decoder's
            # sake; a forwarder releases each as soon as it is complete and leaves the
            # jitter buffering to the receiving browser
            setattr(self.receiver, _RECEIVER + "jitter_buffer", JitterBuffer(capacity=16))
        self.receiver._handle_rtp_packet = self._handle_rtp_packet  # type: ignore[method-assign]
        self.receiver._send_rtcp_pli = self._pli_after_loss  # type: ignore[method-assign]

    async def _handle_rtp_packet(self, packet: Any, arrival_time_ms: int) -> None:
        codec = self._codecs.get(packet.payload_type)
        self.rtp_packets += 1
        self.rtp_markers += packet.marker
        if codec is not None and codec.name != "rtx":
            self.ssrc = packet.ssrc
            if self.kind == "audio" and packet.extensions.audio_level is not None:
                self._on_level(packet.extensions.audio_level[1])
        await self._handle_rtp(packet, arrival_time_ms)

    async def _pli_after_loss(self, media_ssrc: int) -> None:
        # aiortc asks for a keyframe when its jitter buffer lost data: the frames that follow
        # reference a picture subscribers never got, so hold them back until the keyframe
        if self.kind == "video":
            self._need_keyframe = True
        await self._send_pli(media_ssrc)

    def send_pli(self) -> Coroutine[Any, Any, None] | None:
        """A PLI to the publisher (the caller rate-limits); None before the first packet."""
        if self.ssrc is None:
            return None
        return self._send_pli(self.ssrc)

    def _on_level(self, dbov: int) -> None:
        # RFC 6464: 0 = loudest, 127 = silence (-dBov); as amplitude 0..1 like getStats()
        value = math.pow(10.0, -dbov / 20.0) if dbov < 127 else 0.0
        alpha = LEVEL_RISE if value > self._level else LEVEL_FALL
        self._level += alpha * (value - self._level)
        self._level_at = time.monotonic()
        self.level_packets += 1

    @property
    def audio_level(self) -> float:
        if time.monotonic() - self._level_at > LEVEL_STALE:
            return 0.0
        return min(1.0, self._level)

    def _on_frame(self, codec: Any, frame: Any) -> None:
        data: bytes = frame.data
        if not data:
            return
        if self.muted:
            self.muted_frames += 1
            return
        name = codec.name.lower()
        if name == "h264":
            keyframe = bitstream.is_keyframe(data)
        elif name == "vp8":
            keyframe = vp8_keyframe(data)
        else:  # opus: every packet stands alone
            keyframe = True
        if name != self.codec_name:
            self.codec_name = name
            self._need_keyframe = self.kind == "video"
        if self._need_keyframe:
            if not keyframe:
                self.skipped += 1
                return
            self._need_keyframe = False
        if keyframe and self.kind == "video":
            self.keyframes += 1
            self._publish_info(name, data)
        self.frames += 1
        self.relay.publish(
            Packet(data=data, pts=frame.timestamp, keyframe=keyframe, captured=time.time())
        )

    def _publish_info(self, name: str, data: bytes) -> None:
        width = height = 0
        if name == "h264":
            sps = bitstream.find_sps(Codec.H264, data)
            if sps:
                try:
                    width, height = bitstream.sps_dimensions(sps)
                except ValueError:
                    log.debug("%s: unreadable SPS", self.relay.name)
        else:
            width, height = vp8_dimensions(data)
        info = self.relay.info
        if info is not None and (width, height) in ((0, 0), (info.width, info.height)):
            return
        codec = Codec.H264 if name == "h264" else Codec.OTHER
        self.relay.publish_info(StreamInfo(codec, width, height))

    def stats(self) -> dict[str, object]:
        return {
            "codec": self.codec_name,
            "ssrc": self.ssrc,
            "frames": self.frames,
            "keyframes": self.keyframes,
            "skipped": self.skipped,
            "rtp_packets": self.rtp_packets,
            "rtp_markers": self.rtp_markers,
            "stopped": self.queue.stopped,
        }
