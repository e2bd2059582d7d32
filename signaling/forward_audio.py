"""A lean RTP send loop for forwarded Opus (one microphone → many room participants).

Profiling a 6-party room (bench/meeting.py) showed aiortc's own sender loop spending as much
CPU on the 50 small Opus packets a second of each audio leg as FastSender spends on the ~150
H.264 packets of a video leg: an `RtpPacket` object, header extensions and four coroutine
layers per packet. This is FastSender's loop for audio: each relay packet (one Opus frame) is
one RTP packet, sent straight to the nominated ICE pair's socket. aiortc negotiates no NACK for
Opus, so no history is kept; RTCP stays aiortc's.
"""

from __future__ import annotations

from signaling.fastpath import FastSender
from streams.media import Packet


class OpusFastSender(FastSender):
    """FastSender for an audio RelayTrack of Opus packets (pts on the 48 kHz clock): one
    packet per RTP datagram, header extensions serialized once, no NACK history."""

    send_time = False
    keep_history = False
    marker_last = False

    def payloads(self, packet: Packet) -> list[bytes]:
        return [packet.data]

    async def _retransmit(self, sequence_number: int) -> None:
        return  # no NACK for Opus
