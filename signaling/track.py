"""RelayTrack: hands a relay's encoded packets to an aiortc sender, no decode, no encode.

aiortc's `RTCRtpSender` packetizes an `av.Packet` returned by `recv()` without re-encoding
(`H264Encoder.pack`) and never mutates it. The track subscribes to the relay on its first
`recv()`, i.e. when the sender really starts, so the viewer begins with the cached GOP (a
keyframe at once) instead of packets that queued up while ICE and DTLS were connecting.

`kind="audio"` serves a relay of Opus packets (forwarded browser microphones): their `pts` are
on the 48 kHz Opus clock, so such a track is built with `time_base=Fraction(1, 48000)` and
aiortc's Opus `pack()` keeps the timing.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from streams.media import TIME_BASE, Packet
from streams.relay import Consumer, Relay, RelayClosed


class RelayTrack(MediaStreamTrack):
    kind = "video"

    def __init__(
        self,
        relay: Callable[[], Relay],
        *,
        name: str = "",
        maxsize: int = 60,
        kind: str = "video",
        time_base: Fraction = TIME_BASE,
    ) -> None:
        super().__init__()
        self.kind = kind
        self._time_base = time_base
        self._relay = relay
        self._name = name
        self._maxsize = maxsize
        self.consumer: Consumer | None = None
        self.sent = 0

    async def next_packet(self) -> Packet:
        """The next relay packet as it is (shared with every other consumer: read only)."""
        if self.readyState != "live":
            raise MediaStreamError
        if self.consumer is None or self.consumer.closed:
            relay = self._relay()
            try:
                self.consumer = relay.subscribe(self._name, maxsize=self._maxsize)
            except RelayClosed:
                self.stop()
                raise MediaStreamError from None
        try:
            packet = await self.consumer.get()
        except RelayClosed:
            # the relay was replaced (e.g. a transcoder restarted): resubscribe next time
            self.consumer = None
            return await self.next_packet()
        self.sent += 1
        return packet

    async def recv(self) -> av.Packet[Any]:
        """For aiortc's own sender loop: the packet as an `av.Packet` it packs without
        re-encoding. (signaling/fastpath.py bypasses this.)"""
        packet = await self.next_packet()
        out = av.Packet(packet.data)
        out.pts = packet.pts
        out.time_base = self._time_base
        return out

    @property
    def drops(self) -> int:
        return self.consumer.drops if self.consumer is not None else 0

    def stop(self) -> None:
        if self.consumer is not None:
            self.consumer.close()
        super().stop()
