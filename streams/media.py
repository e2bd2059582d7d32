"""The one media contract every source and sink speaks.

A `Source` connects to a camera and hands `Packet`s to a `PacketSink` (the Stream) on the
event loop thread. Sources that block (PyAV demux) run in a thread and bridge with
`loop.call_soon_threadsafe`. Time is always expressed on a 90 kHz clock (`CLOCK_RATE`), the RTP
video clock, so packets can go to WebRTC senders and recorders without conversion.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol

CLOCK_RATE = 90_000
TIME_BASE = Fraction(1, CLOCK_RATE)


class Codec(enum.StrEnum):
    """Video codecs, named as FFmpeg names them."""

    H264 = "h264"
    HEVC = "hevc"
    MJPEG = "mjpeg"
    MPEG4 = "mpeg4"
    OTHER = "other"

    @classmethod
    def from_name(cls, name: str) -> Codec:
        name = name.lower()
        aliases = {"h265": "hevc", "avc": "h264", "jpeg": "mjpeg", "mp4v-es": "mpeg4"}
        name = aliases.get(name, name)
        try:
            return cls(name)
        except ValueError:
            return cls.OTHER


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What a source learned about its video when it connected."""

    codec: Codec
    width: int = 0
    height: int = 0
    fps: float = 0.0
    # Codec configuration. H.264/H.265: parameter sets (SPS/PPS, VPS) in Annex-B form (each
    # with a start code), from the SDP `sprop-parameter-sets` or the container's extradata;
    # MPEG-4: the VOL header from extradata. Empty when unknown.
    parameter_sets: bytes = b""


@dataclass(frozen=True, slots=True)
class Packet:
    """One encoded video access unit (one picture).

    H.264/H.265 data is Annex-B: every NAL unit starts with 00 00 00 01. Packets are immutable
    and shared by every consumer of a relay; nobody may change one.
    """

    data: bytes
    pts: int  # presentation time, 90 kHz clock
    keyframe: bool
    captured: float = 0.0  # wall-clock (time.time()) when the picture entered the hub
    meta: dict[str, object] = field(default_factory=dict, compare=False, hash=False)


class SourceError(Exception):
    """A camera connection failed in a way worth reporting (no traceback needed)."""


class PacketSink(Protocol):
    """What a source needs from its owner. Both methods run on the event loop thread."""

    def on_info(self, info: StreamInfo) -> None: ...

    def on_packet(self, packet: Packet) -> None: ...


class Source(Protocol):
    """A connection to one camera.

    `run()` connects, calls `sink.on_info()` once before the first packet, then calls
    `sink.on_packet()` for each access unit until the connection ends. It returns (camera ended
    the stream) or raises `SourceError` (could not connect, timed out). Cancelling `run()` must
    close the connection and stop any thread it started before the cancellation completes.
    Constructors should not raise; problems with the URL are raised by `run()` as SourceError
    (the Stream also treats a constructor error as a failed connection).
    """

    async def run(self, sink: PacketSink) -> None: ...
