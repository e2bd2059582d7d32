"""A lean RTP send loop for forwarded Opus (one microphone → many room participants).

Profiling a 6-party room (bench/meeting.py) showed aiortc's own sender loop spending as much
CPU on the 50 small Opus packets a second of each audio leg as FastSender spends on the ~150
H.264 packets of a video leg: an `RtpPacket` object, header extensions and four coroutine
layers per packet. This is FastSender's loop for audio: each relay packet (one Opus frame) is
one RTP packet, sent straight to the nominated ICE pair's socket. aiortc negotiates no NACK for
Opus, so no history is kept; RTCP stays aiortc's.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from functools import partial
from typing import Any

from aiortc import RTCRtpSender, clock
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import HeaderExtensions
from aiortc.utils import random16, random32, uint16_add

from signaling.fastpath import FastSender
from signaling.track import RelayTrack

log = logging.getLogger(__name__)

_HEADER = struct.Struct("!BBHLL")


class OpusFastSender(FastSender):
    """FastSender for an audio RelayTrack of Opus packets (pts on the 48 kHz clock)."""

    @classmethod
    def install(cls, sender: RTCRtpSender, track: RelayTrack) -> OpusFastSender:
        # FastSender.install binds FastSender's own (H.264) loop; bind this class's
        fast = cls(sender, track)
        sender._run_rtp = partial(cls._run_rtp, fast)  # type: ignore[method-assign]
        sender._retransmit = partial(cls._retransmit, fast)  # type: ignore[method-assign]
        return fast

    async def _run_rtp(self, codec: Any) -> None:
        sender = self.sender
        self._get("rtp_started").set()
        ext_map = self._get("rtp_header_extensions_map")
        payload_type = codec.payloadType
        ssrc = sender._ssrc
        sequence = random16()
        origin = random32()
        ext = HeaderExtensions()
        ext.mid = self._get("mid")
        profile, ext_value = ext_map.set(ext)  # the same for every packet: serialize once
        if ext_value:
            first = 0x90
            ext_block = struct.pack("!HH", profile, len(ext_value) >> 2) + ext_value
        else:
            first, ext_block = 0x80, b""
        try:
            while True:
                packet = await self.track.next_packet()
                timestamp = (origin + packet.pts) & 0xFFFFFFFF
                header = _HEADER.pack(first, payload_type, sequence, timestamp, ssrc)
                self._send(header + ext_block + packet.data)
                sequence = uint16_add(sequence, 1)
                self.packets += 1
                # what aiortc's RTCP sender reports are built from
                self._set("ntp_timestamp", clock.current_ntp_time())
                self._set("rtp_timestamp", timestamp)
                self._set("octet_count", self._get("octet_count") + len(packet.data))
                self._set("packet_count", self._get("packet_count") + 1)
        except (asyncio.CancelledError, ConnectionError, MediaStreamError):
            pass
        except Exception:
            log.exception("fast Opus sender failed")
        finally:
            track = self._get("track")
            if track is not None:
                track.stop()
                self._set("track", None)
            self._get("rtp_exited").set()

    async def _retransmit(self, sequence_number: int) -> None:
        return  # no NACK for Opus
