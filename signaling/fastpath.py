"""A lean RTP send loop for passthrough senders (camera packets → many viewers).

aiortc's `RTCRtpSender._run_rtp` builds an `RtpPacket` object per RTP packet, serializes its
header extensions per packet, packetizes every frame once per viewer and goes through four
coroutine layers to reach `sendto`. Profiling 20 passthrough viewers of a 720p 2 Mbit/s
camera showed that Python overhead, not SRTP or the kernel, was most of the per-viewer cost.

Here each relay packet is packetized once for all viewers (cached on the shared `Packet`), the
header extensions are serialized once per frame, and the SRTP-protected datagram goes straight
to the nominated ICE pair's socket. NACK retransmissions (and RTX) keep working from a history
of raw packets. Everything else (RTCP, stats, keyframe requests) stays aiortc's.

This reaches into aiortc 1.16 internals (name-mangled attributes of `RTCRtpSender`,
`RTCDtlsTransport`, aioice's nominated pair), which is why `pyproject.toml` pins aiortc and
`tests/signaling/test_fastpath.py` covers the hook: a version bump must pass those tests.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any, Self

from aioice.ice import StunProtocol
from aiortc import RTCRtpSender, clock
from aiortc.codecs.h264 import H264Encoder
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtp import RTP_HISTORY_SIZE, HeaderExtensions, RtpPacket, wrap_rtx
from aiortc.utils import random16, random32, uint16_add

from signaling.track import RelayTrack
from streams.media import Packet

log = logging.getLogger(__name__)

_SENDER = "_RTCRtpSender__"
_PAYLOADS_KEY = "rtp_h264_payloads"
_HEADER = struct.Struct("!BBHLL")


def h264_payloads(packet: Packet) -> list[bytes]:
    """RTP payloads (STAP-A / FU-A / single NAL) of a packet, computed once per packet."""
    payloads: list[bytes] | None = packet.meta.get(_PAYLOADS_KEY)  # type: ignore[assignment]
    if payloads is None:
        payloads = H264Encoder._packetize(H264Encoder._split_bitstream(packet.data))
        packet.meta[_PAYLOADS_KEY] = payloads
    return payloads


class FastSender:
    """Replaces one sender's RTP loop and retransmission with the lean versions."""

    # what differs between media (see signaling/forward_audio.py for Opus)
    send_time = True  # abs-send-time per frame (video: the receiver's bandwidth estimate)
    keep_history = True  # raw packets kept for NACK retransmission
    marker_last = True  # RTP marker on the last packet of a frame

    def __init__(self, sender: RTCRtpSender, track: RelayTrack) -> None:
        self.sender = sender
        self.track = track
        self.history: dict[int, tuple[int, bytes]] = {}
        self.packets = 0
        self.retransmits = 0

    @classmethod
    def install(cls, sender: RTCRtpSender, track: RelayTrack) -> Self:
        fast = cls(sender, track)
        sender._run_rtp = fast._run_rtp  # type: ignore[method-assign]
        sender._retransmit = fast._retransmit  # type: ignore[method-assign]
        return fast

    def payloads(self, packet: Packet) -> list[bytes]:
        """The RTP payloads of one relay packet (H.264: packetized once for every viewer)."""
        return h264_payloads(packet)

    def _extensions(self, ext_map: Any, mid: Any) -> tuple[int, bytes]:
        """(first header byte, header-extension block) for the next frame."""
        ext = HeaderExtensions()
        if self.send_time:
            ext.abs_send_time = (clock.current_ntp_time() >> 14) & 0x00FFFFFF
        ext.mid = mid
        profile, value = ext_map.set(ext)
        if not value:
            return 0x80, b""
        return 0x90, struct.pack("!HH", profile, len(value) >> 2) + value

    def _get(self, name: str) -> Any:
        return getattr(self.sender, _SENDER + name)

    def _set(self, name: str, value: Any) -> None:
        setattr(self.sender, _SENDER + name, value)

    def _send(self, data: bytes) -> None:
        dtls = self.sender.transport
        if dtls._state != DtlsState.CONNECTED:
            raise ConnectionError("DTLS is not connected")
        protected = dtls._tx_srtp.protect(data)
        pair = dtls.transport._connection._nominated.get(1)
        if pair is None:
            raise ConnectionError("ICE is not connected")
        if type(pair.protocol) is StunProtocol:
            pair.protocol.transport.sendto(protected, pair.remote_addr)
        else:  # relayed through TURN: keep aioice's path
            task = asyncio.ensure_future(pair.protocol.send_data(protected, pair.remote_addr))
            task.add_done_callback(_log_failure)

    async def _run_rtp(self, codec: Any) -> None:
        sender = self.sender
        self._get("rtp_started").set()
        ext_map = self._get("rtp_header_extensions_map")
        mid = self._get("mid")
        payload_type = codec.payloadType
        ssrc = sender._ssrc
        sequence = random16()
        origin = random32()
        history = self.history if self.keep_history else None
        first, ext_block = self._extensions(ext_map, mid)
        try:
            while True:
                packet = await self.track.next_packet()
                payloads = self.payloads(packet)
                if not payloads:
                    continue
                timestamp = (origin + packet.pts) & 0xFFFFFFFF
                if self.send_time:
                    first, ext_block = self._extensions(ext_map, mid)
                last = len(payloads) - 1 if self.marker_last else -1
                octets = 0
                for i, payload in enumerate(payloads):
                    marker = 0x80 if i == last else 0
                    data = (
                        _HEADER.pack(first, marker | payload_type, sequence, timestamp, ssrc)
                        + ext_block
                        + payload
                    )
                    if history is not None:
                        history[sequence % RTP_HISTORY_SIZE] = (sequence, data)
                    self._send(data)
                    octets += len(payload)
                    sequence = uint16_add(sequence, 1)
                self.packets += len(payloads)
                # what aiortc's RTCP sender reports are built from
                self._set("ntp_timestamp", clock.current_ntp_time())
                self._set("rtp_timestamp", timestamp)
                self._set("octet_count", self._get("octet_count") + octets)
                self._set("packet_count", self._get("packet_count") + len(payloads))
        except (asyncio.CancelledError, ConnectionError, MediaStreamError):
            pass
        except Exception:
            log.exception("fast RTP sender failed")
        finally:
            # aiortc's own loop does this on exit; RTCRtpSender.stop() waits for rtp_exited
            track = self._get("track")
            if track is not None:
                track.stop()
                self._set("track", None)
            self._get("rtp_exited").set()

    async def _retransmit(self, sequence_number: int) -> None:
        entry = self.history.get(sequence_number % RTP_HISTORY_SIZE)
        if entry is None or entry[0] != sequence_number:
            return
        data = entry[1]
        rtx_payload_type = self._get("rtx_payload_type")
        if rtx_payload_type is not None:
            ext_map = self._get("rtp_header_extensions_map")
            rtx_sequence = self._get("rtx_sequence_number")
            rtx = wrap_rtx(
                RtpPacket.parse(data, ext_map),
                payload_type=rtx_payload_type,
                sequence_number=rtx_sequence,
                ssrc=self.sender._rtx_ssrc,
            )
            self._set("rtx_sequence_number", uint16_add(rtx_sequence, 1))
            data = rtx.serialize(ext_map)
        self.retransmits += 1
        try:
            self._send(data)
        except ConnectionError:
            pass


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("TURN send failed: %s", task.exception())
