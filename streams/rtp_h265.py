"""H.265 RTP depacketizer (RFC 7798): single NAL unit packets, aggregation packets (AP) and
fragmentation units (FU), to Annex-B access units; and what the RTSP source needs to know
about an H.265 SPS (picture size).

Decoding order numbers (sprop-max-don-diff > 0) are not supported; cameras do not send them.
PACI packets mark the picture as broken.
"""

from __future__ import annotations

from streams.h264 import START_CODE, BitReader, unescape_rbsp
from streams.rtp_depay import Depacketizer

AP = 48
FU = 49
VPS = 32
SPS = 33
PPS = 34
IRAP_FIRST = 16  # BLA_W_LP
IRAP_LAST = 21  # CRA_NUT (22, 23 are reserved IRAP types)


def nal_kind(nal: bytes | memoryview) -> int:
    return (nal[0] >> 1) & 0x3F if nal else -1


def is_irap(kind: int) -> bool:
    return IRAP_FIRST <= kind <= IRAP_LAST


class H265Depacketizer(Depacketizer):
    def _payload(self, payload: memoryview) -> None:
        if len(payload) < 3:
            self._broken_picture()
            return
        kind = (payload[0] >> 1) & 0x3F
        if kind < AP:
            self._nal(payload, IRAP_FIRST <= kind <= IRAP_LAST)
        elif kind == FU:
            if len(payload) < 4:
                self._broken_picture()
                return
            fu = payload[2]
            unit_kind = fu & 0x3F
            header = START_CODE + bytes(((payload[0] & 0x81) | (unit_kind << 1), payload[1]))
            self._fragment(
                bool(fu & 0x80),
                bool(fu & 0x40),
                header,
                payload[3:],
                IRAP_FIRST <= unit_kind <= IRAP_LAST,
            )
        elif kind == AP:
            pos, size = 2, len(payload)
            while pos + 2 < size:
                length = (payload[pos] << 8) | payload[pos + 1]
                pos += 2
                if length < 2 or pos + length > size:
                    self._broken_picture()
                    return
                unit = payload[pos : pos + length]
                self._nal(unit, is_irap(nal_kind(unit)))
                pos += length
        else:
            self._broken_picture()


def _skip_profile_tier_level(reader: BitReader, max_sub_layers_minus1: int) -> None:
    reader.skip(96)  # general profile space..level_idc: 2+1+5+32+48+8 bits
    sub_profile = []
    sub_level = []
    for _ in range(max_sub_layers_minus1):
        sub_profile.append(reader.flag())
        sub_level.append(reader.flag())
    if max_sub_layers_minus1 > 0:
        for _ in range(max_sub_layers_minus1, 8):
            reader.skip(2)
    for profile, level in zip(sub_profile, sub_level, strict=True):
        if profile:
            reader.skip(88)
        if level:
            reader.skip(8)


def hevc_sps_dimensions(sps: bytes) -> tuple[int, int]:
    """(width, height) of an H.265 SPS NAL unit (2-byte header included), after the
    conformance window. Raises ValueError when it is malformed."""
    reader = BitReader(unescape_rbsp(sps[2:]))
    reader.skip(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = reader.u(3)
    reader.skip(1)  # temporal_id_nesting
    _skip_profile_tier_level(reader, max_sub_layers_minus1)
    reader.ue()  # sps_seq_parameter_set_id
    chroma_format_idc = reader.ue()
    if chroma_format_idc == 3:
        reader.skip(1)  # separate_colour_plane_flag
    width = reader.ue()
    height = reader.ue()
    if reader.flag():  # conformance_window_flag
        left, right, top, bottom = reader.ue(), reader.ue(), reader.ue(), reader.ue()
        sub_w = 2 if chroma_format_idc in (1, 2) else 1
        sub_h = 2 if chroma_format_idc == 1 else 1
        width -= sub_w * (left + right)
        height -= sub_h * (top + bottom)
    return width, height
