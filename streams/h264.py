"""H.264 bitstream helpers shared by sources, the relay and sinks (Annex-B form)."""

from __future__ import annotations

import base64
import re

START_CODE = b"\x00\x00\x00\x01"

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9

_START = re.compile(b"\x00\x00\x01")


def split_annexb(data: bytes) -> list[bytes]:
    """NAL units of an Annex-B buffer, without start codes (3- or 4-byte)."""
    starts = [m.end() for m in _START.finditer(data)]
    if not starts:
        return [data] if data else []
    nals: list[bytes] = []
    for i, begin in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(data)
        nal = data[begin:end]
        # a 4-byte start code leaves one zero byte at the end of the previous NAL
        if i + 1 < len(starts) and nal.endswith(b"\x00"):
            nal = nal.rstrip(b"\x00")
        if nal:
            nals.append(nal)
    return nals


def join_annexb(nals: list[bytes]) -> bytes:
    return b"".join(START_CODE + nal for nal in nals)


def nal_type(nal: bytes) -> int:
    return nal[0] & 0x1F if nal else 0


def nal_types(data: bytes) -> list[int]:
    return [nal_type(n) for n in split_annexb(data)]


def is_keyframe(data: bytes) -> bool:
    return NAL_IDR in nal_types(data)


def has_sps(data: bytes) -> bool:
    return NAL_SPS in nal_types(data)


def parameter_sets_from_sprop(sprop: str) -> bytes:
    """Annex-B SPS/PPS from an SDP `sprop-parameter-sets=Z0IAH...,aM4...` value."""
    nals = []
    for part in sprop.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            nals.append(base64.b64decode(part + "=" * (-len(part) % 4)))
        except ValueError:
            continue
    return join_annexb([n for n in nals if n])


def parameter_sets_from_avcc(extradata: bytes) -> bytes:
    """Annex-B SPS/PPS from an MP4/FLV `avcC` record (or pass Annex-B extradata through)."""
    if not extradata:
        return b""
    if extradata.startswith(b"\x00\x00\x01") or extradata.startswith(START_CODE):
        return join_annexb([n for n in split_annexb(extradata) if nal_type(n) in (NAL_SPS, NAL_PPS)])
    if extradata[0] != 1 or len(extradata) < 7:
        return b""
    nals: list[bytes] = []
    pos = 5
    count = extradata[pos] & 0x1F
    pos += 1
    for kind in (0, 1):
        for _ in range(count):
            if pos + 2 > len(extradata):
                return join_annexb(nals)
            size = int.from_bytes(extradata[pos : pos + 2], "big")
            pos += 2
            nals.append(extradata[pos : pos + size])
            pos += size
        if kind == 0:
            if pos >= len(extradata):
                break
            count = extradata[pos]
            pos += 1
    return join_annexb(nals)


def avcc_to_annexb(data: bytes, length_size: int = 4) -> bytes:
    """Convert length-prefixed NAL units (MP4/FLV) to Annex-B."""
    out = []
    pos = 0
    while pos + length_size <= len(data):
        size = int.from_bytes(data[pos : pos + length_size], "big")
        pos += length_size
        out.append(START_CODE + data[pos : pos + size])
        pos += size
    return b"".join(out)
