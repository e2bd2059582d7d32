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
        return join_annexb(
            [n for n in split_annexb(extradata) if nal_type(n) in (NAL_SPS, NAL_PPS)]
        )
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


def unescape_rbsp(nal: bytes) -> bytes:
    """The RBSP of a NAL unit: emulation-prevention bytes (00 00 03) removed."""
    if b"\x00\x00\x03" not in nal:
        return nal
    out = bytearray()
    zeros = 0
    for byte in nal:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class BitReader:
    """MSB-first bit reader with exp-Golomb codes, for parameter-set parsing (H.264/H.265)."""

    def __init__(self, data: bytes) -> None:
        self._value = int.from_bytes(data, "big")
        self._left = len(data) * 8

    def u(self, bits: int) -> int:
        if bits > self._left:
            raise ValueError("parameter set truncated")
        self._left -= bits
        return (self._value >> self._left) & ((1 << bits) - 1)

    def flag(self) -> bool:
        return self.u(1) == 1

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)

    def skip(self, bits: int) -> None:
        self.u(bits)


_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


def _skip_scaling_list(reader: BitReader, size: int) -> None:
    last = next_scale = 8
    for _ in range(size):
        if next_scale != 0:
            next_scale = (last + reader.se() + 256) % 256
        last = next_scale if next_scale != 0 else last


def _parse_sps(sps: bytes) -> tuple[int, int, float]:
    reader = BitReader(unescape_rbsp(sps[1:]))
    profile_idc = reader.u(8)
    reader.skip(16)  # constraint flags, level_idc
    reader.ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    separate_colour_plane = False
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = reader.ue()
        if chroma_format_idc == 3:
            separate_colour_plane = reader.flag()
        reader.ue()  # bit_depth_luma_minus8
        reader.ue()  # bit_depth_chroma_minus8
        reader.skip(1)  # qpprime_y_zero_transform_bypass_flag
        if reader.flag():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if reader.flag():
                    _skip_scaling_list(reader, 16 if i < 6 else 64)
    reader.ue()  # log2_max_frame_num_minus4
    poc_type = reader.ue()
    if poc_type == 0:
        reader.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        reader.skip(1)
        reader.se()
        reader.se()
        for _ in range(reader.ue()):
            reader.se()
    reader.ue()  # max_num_ref_frames
    reader.skip(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = reader.ue() + 1
    height_map_units = reader.ue() + 1
    frame_mbs_only = reader.flag()
    if not frame_mbs_only:
        reader.skip(1)  # mb_adaptive_frame_field_flag
    reader.skip(1)  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = height_map_units * 16 * (2 - frame_mbs_only)
    if reader.flag():  # frame_cropping_flag
        left, right, top, bottom = reader.ue(), reader.ue(), reader.ue(), reader.ue()
        array_type = 0 if separate_colour_plane else chroma_format_idc
        crop_x = 1 if array_type == 0 else (2 if array_type in (1, 2) else 1)
        crop_y = (1 if array_type in (0, 2, 3) else 2) * (2 - frame_mbs_only)
        width -= crop_x * (left + right)
        height -= crop_y * (top + bottom)
    fps = 0.0
    try:
        if reader.flag():  # vui_parameters_present_flag
            fps = _vui_fps(reader)
    except ValueError:
        fps = 0.0
    return width, height, fps


def _vui_fps(reader: BitReader) -> float:
    if reader.flag():  # aspect_ratio_info_present_flag
        if reader.u(8) == 255:  # Extended_SAR
            reader.skip(32)
    if reader.flag():  # overscan_info_present_flag
        reader.skip(1)
    if reader.flag():  # video_signal_type_present_flag
        reader.skip(4)
        if reader.flag():  # colour_description_present_flag
            reader.skip(24)
    if reader.flag():  # chroma_loc_info_present_flag
        reader.ue()
        reader.ue()
    if not reader.flag():  # timing_info_present_flag
        return 0.0
    num_units_in_tick = reader.u(32)
    time_scale = reader.u(32)
    if num_units_in_tick == 0:
        return 0.0
    return time_scale / (2 * num_units_in_tick)


def sps_dimensions(sps: bytes) -> tuple[int, int]:
    """(width, height) in pixels of an H.264 SPS NAL unit (header byte included), cropped.

    Raises ValueError for a truncated or malformed SPS.
    """
    width, height, _ = _parse_sps(sps)
    return width, height


def sps_fps(sps: bytes) -> float:
    """Frame rate from the SPS's VUI timing info (frame-coded streams); 0.0 when absent."""
    try:
        return _parse_sps(sps)[2]
    except ValueError:
        return 0.0
