"""What the H.264 and H.265 RTP depacketizers share: assembling one picture's NAL units into an
Annex-B access unit, closing it on the marker bit (or when the RTP timestamp changes without
one), and dropping pictures after a loss until the next keyframe.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Protocol

from streams.bitstream import START_CODE

Buffer = bytes | memoryview


class AccessUnitHandler(Protocol):
    def __call__(self, data: bytes, timestamp: int, keyframe: bool, arrival: float) -> None: ...


class Depacketizer(ABC):
    """Base class; subclasses implement `_payload()` for their codec's payload format (and
    call `_nal()`, `_fragment()` and `_broken_picture()`)."""

    def __init__(self, on_access_unit: AccessUnitHandler) -> None:
        self._emit: Callable[[bytes, int, bool, float], None] = on_access_unit
        self._parts: list[Buffer] = []
        self._timestamp = -1
        self._arrival = 0.0
        self._keyframe = False
        self._broken = False
        self._in_fragment = False
        self._next_seq = -1
        self._need_keyframe = True  # nothing decodes before the first keyframe
        self.lost = 0  # RTP packets missing (sequence gaps)
        self.pictures = 0  # access units handed on
        self.dropped = 0  # pictures dropped: incomplete, or waiting for a keyframe

    def feed(
        self, seq: int, timestamp: int, marker: bool, payload: memoryview, arrival: float
    ) -> None:
        """One RTP packet of the video stream, in sequence order as far as the transport knows."""
        missing = (seq - self._next_seq) & 0xFFFF if self._next_seq >= 0 else 0
        gap = missing != 0
        self._next_seq = (seq + 1) & 0xFFFF
        if timestamp != self._timestamp:
            if self._parts or self._broken:
                if gap:  # the missing packets may be the end of the open picture
                    self._broken = True
                self._close()
            self._timestamp = timestamp
        if gap:
            self.lost += missing if missing < 0x8000 else 1  # else: late or duplicate
            self._broken = True
        self._arrival = arrival
        if payload:
            self._payload(payload)
        if marker:
            self._close()

    @abstractmethod
    def _payload(self, payload: memoryview) -> None:
        """One RTP payload of this codec (H.264 / H.265 packetization)."""

    def _nal(self, nal: Buffer, keyframe: bool) -> None:
        """A complete NAL unit (header included)."""
        if self._in_fragment:  # a fragmented unit never ended
            self._in_fragment = False
            self._broken = True
        self._parts.append(START_CODE)
        self._parts.append(nal)
        if keyframe:
            self._keyframe = True

    def _fragment(
        self, start: bool, end: bool, header: bytes, data: Buffer, keyframe: bool
    ) -> None:
        """A fragment of a NAL unit; `header` is START_CODE + the reconstructed NAL header."""
        if start:
            if self._in_fragment:
                self._broken = True
            self._parts.append(header)
            self._in_fragment = True
            if keyframe:
                self._keyframe = True
        elif not self._in_fragment:  # its start is lost (or came before we joined)
            self._broken = True
            return
        self._parts.append(data)
        if end:
            self._in_fragment = False

    def _broken_picture(self) -> None:
        self._broken = True

    def _close(self) -> None:
        parts = self._parts
        broken = self._broken or self._in_fragment
        keyframe = self._keyframe
        self._parts = []
        self._broken = self._in_fragment = self._keyframe = False
        if broken:
            self.dropped += 1
            self._need_keyframe = True
            return
        if not parts:
            return
        if self._need_keyframe:
            if not keyframe:
                self.dropped += 1
                return
            self._need_keyframe = False
        self.pictures += 1
        self._emit(b"".join(parts), self._timestamp, keyframe, self._arrival)
