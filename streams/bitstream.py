"""H.264 and H.265 bitstream helpers shared by sources, the relay and sinks (Annex-B form).

NAL unit splitting and joining, NAL unit types, keyframe detection, parameter sets (in-band,
from SDP `sprop-*` values, from MP4/FLV `avcC`/`hvcC` records, put in front of a keyframe that
lacks them) and the picture size and rate in an SPS. Names without a prefix are H.264's; the
H.265 ones start with `hevc_`/`HEVC_`. Every other module takes these from here. Over ~200
lines because the two SPS parsers (exp-Golomb reading, scaling lists, VUI, profile/tier/level)
are long and belong with the rest.
"""

from __future__ import annotations

import base64
import re

from streams.media import Codec, StreamInfo

START_CODE = b"\x00\x00\x00\x01"

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9

HEVC_IRAP_FIRST = 16  # BLA_W_LP
HEVC_IRAP_LAST = 21  # CRA_NUT (22, 23 are reserved IRAP types)
HEVC_VPS = 32
HEVC_SPS = 33
HEVC_PPS = 34
HEVC_PARAMETER_SET_TYPES = (HEVC_VPS, HEVC_SPS, HEVC_PPS)

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


def nal_type(nal: bytes | memoryview) -> int:
    """The type of an H.264 NAL unit (0 for an empty one)."""
    return nal[0] & 0x1F if nal else 0


def hevc_nal_type(nal: bytes | memoryview) -> int:
    """The type of an H.265 NAL unit (-1 for an empty one)."""
    return (nal[0] >> 1) & 0x3F if nal else -1


def hevc_is_irap(kind: int) -> bool:
    """True for the H.265 NAL unit types of a random access point (IDR, CRA, BLA)."""
    return HEVC_IRAP_FIRST <= kind <= HEVC_IRAP_LAST


def nal_types(data: bytes) -> list[int]:
    return [nal_type(n) for n in split_annexb(data)]


def is_keyframe(data: bytes) -> bool:
    return NAL_IDR in nal_types(data)


def has_sps(data: bytes) -> bool:
    return NAL_SPS in nal_types(data)


def _is_parameter_set(codec: Codec, nal: bytes) -> bool:
    if codec is Codec.H264:
        return nal_type(nal) in (NAL_SPS, NAL_PPS)
    return codec is Codec.HEVC and hevc_nal_type(nal) in HEVC_PARAMETER_SET_TYPES


def inband_parameter_sets(codec: Codec, data: bytes) -> bytes:
    """SPS/PPS (H.264) or VPS/SPS/PPS (H.265) carried in an Annex-B access unit; b"" if none
    (and for other codecs)."""
    return join_annexb([n for n in split_annexb(data) if _is_parameter_set(codec, n)])


def find_sps(codec: Codec, data: bytes) -> bytes:
    """The first SPS NAL unit (header included) of an Annex-B buffer; b"" if none."""
    for nal in split_annexb(data):
        if codec is Codec.H264 and nal_type(nal) == NAL_SPS:
            return nal
        if codec is Codec.HEVC and hevc_nal_type(nal) == HEVC_SPS:
            return nal
    return b""


def with_parameter_sets(info: StreamInfo, data: bytes) -> bytes:
    """A keyframe with the stream's parameter sets in front if it carries none in-band."""
    if not info.parameter_sets:
        return data
    if info.codec is Codec.H264:
        inband = has_sps(data)
    elif info.codec is Codec.HEVC:
        inband = any(hevc_nal_type(n) in HEVC_PARAMETER_SET_TYPES for n in split_annexb(data))
    else:
        return data
    return data if inband else info.parameter_sets + data


def parameter_sets_from_sprop(*sprops: str) -> bytes:
    """Annex-B parameter sets from SDP values: `sprop-parameter-sets=Z0IAH...,aM4...` (H.264),
    or `sprop-vps`, `sprop-sps`, `sprop-pps` (H.265) in that order."""
    nals = []
    for part in ",".join(sprops).split(","):
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


def hevc_parameter_sets_from_hvcc(extradata: bytes) -> bytes:
    """Annex-B VPS/SPS/PPS from an MP4/FLV `hvcC` record (or from Annex-B extradata)."""
    if extradata.startswith(b"\x00\x00\x01") or extradata.startswith(START_CODE):
        nals = split_annexb(extradata)
    elif len(extradata) < 23:
        return b""
    else:
        nals = _hvcc_nals(extradata)
    return join_annexb([n for n in nals if n and hevc_nal_type(n) in HEVC_PARAMETER_SET_TYPES])


def _hvcc_nals(extradata: bytes) -> list[bytes]:
    nals = []
    pos = 23
    for _ in range(extradata[22]):
        if pos + 3 > len(extradata):
            break
        count = int.from_bytes(extradata[pos + 1 : pos + 3], "big")
        pos += 3
        for _ in range(count):
            size = int.from_bytes(extradata[pos : pos + 2], "big")
            nals.append(extradata[pos + 2 : pos + 2 + size])
            pos += 2 + size
    return nals


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
