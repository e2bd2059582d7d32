"""MPEG-2 Program Stream (ISO/IEC 13818-1 §2.5), the container of GB/T 28181 video.

`PsDemuxer` turns PS bytes (RTP payloads or a .ps/.mpg/.vob file, in chunks of any size) into
access units; `PsMuxer` writes them the way GB/T 28181 cameras do: one pack per frame, system
header and program stream map (PSM) on keyframes, PES packets of at most 65535 bytes.

Access unit boundaries. Cameras put one frame in one pack and start each frame's first PES at
a NAL start code with a new PTS, so a frame ends when the next pack header (or the next PES
with a new PTS, or the caller's `end_of_frame()` on the RTP marker) arrives. Other muxers
(FFmpeg's mpeg/vob/dvd) fill fixed-size packs and cut PES in the middle of NAL units, the PTS
belonging to the first picture that starts in the PES. The demuxer learns which kind it reads:
a PES with a new PTS that does not start with a start code switches it to splitting the
H.264/H.265 elementary stream at NAL units that begin a picture; until three aligned PES were
seen, a pack header does not end a frame by itself (the next PES does, a few bytes later), and
once they were, only three misaligned ones in a row (not one damaged header) switch it.

Bad input never raises: the demuxer scans for the next start code, counts `errors`,
`resyncs` and `skipped` bytes, drops the broken frame, and waits for a keyframe (a PS start
code inside a video PES means bytes were lost: H.264/H.265 never contain one).
Over ~500 lines: the demuxer's state machine (two framings, resync) is long on its own, and
the muxer shares its header formats and constants; the RTP and TCP side is in `rtp_ps`.
"""

from __future__ import annotations

import enum
import logging
from typing import NamedTuple

from streams.bitstream import NAL_IDR, hevc_is_irap, hevc_nal_type, nal_type
from streams.media import CLOCK_RATE, Codec, Packet

log = logging.getLogger(__name__)

PACK_START = 0xBA
END_CODE = 0xB9
SYSTEM_HEADER = 0xBB
PSM_ID = 0xBC
PADDING = 0xBE
VIDEO_ID = 0xE0
AUDIO_ID = 0xC0
MAX_FRAME = 4 * 1024 * 1024
MAX_PES_LENGTH = 65535
TS_MASK = (1 << 33) - 1

_START = b"\x00\x00\x01"
_PACK = b"\x00\x00\x01\xba"
_PSM_MAX = 1018  # program_stream_map_length limit (§2.5.4.2)
_ALIGN_CONFIRM = 3  # aligned PES with a new PTS before pack headers end frames at once


class StreamType(enum.IntEnum):
    """PSM stream_type values GB/T 28181 devices use."""

    MPEG2_VIDEO = 0x02
    AAC = 0x0F
    MPEG4 = 0x10
    H264 = 0x1B
    HEVC = 0x24
    SVAC = 0x80
    G711A = 0x90
    G711U = 0x91
    G722 = 0x92
    G723 = 0x93
    G729 = 0x99


_VIDEO_CODEC = {StreamType.H264: Codec.H264, StreamType.HEVC: Codec.HEVC, 0x10: Codec.MPEG4}
_CODEC_TYPE = {Codec.H264: StreamType.H264, Codec.HEVC: StreamType.HEVC}


class AccessUnit(NamedTuple):
    """One picture (video) or one PES of audio."""

    stream_id: int  # 0xE0.. video, 0xC0.. audio
    stream_type: int  # from the PSM, or guessed (H.264 / H.265); 0 when unknown
    codec: Codec  # the video codec; Codec.OTHER for audio and unknown video
    pts: int  # 90 kHz, unwrapped (continues past the 33-bit wrap)
    dts: int
    keyframe: bool
    data: bytes  # Annex-B for H.264/H.265

    @property
    def is_video(self) -> bool:
        return 0xE0 <= self.stream_id <= 0xEF

    def packet(self, captured: float = 0.0) -> Packet:
        return Packet(self.data, self.pts, self.keyframe, captured)


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc32_mpeg2(data: bytes | bytearray | memoryview) -> int:
    """CRC-32/MPEG-2 (poly 0x04C11DB7, init ~0, no reflection): PSM and PSI sections."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in bytes(data):  # ~30-100 bytes, once per keyframe
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ byte]
    return crc


def read_timestamp(buf: bytes | bytearray | memoryview, pos: int) -> int:
    """A 33-bit PTS/DTS/SCR base in the 5-byte PES form."""
    return (
        ((buf[pos] >> 1) & 7) << 30
        | buf[pos + 1] << 22
        | (buf[pos + 2] >> 1) << 15
        | buf[pos + 3] << 7
        | buf[pos + 4] >> 1
    )


def write_timestamp(prefix: int, ts: int) -> bytes:
    ts &= TS_MASK
    return bytes(
        (
            (prefix << 4) | ((ts >> 29) & 0x0E) | 1,
            (ts >> 22) & 0xFF,
            ((ts >> 14) & 0xFE) | 1,
            (ts >> 7) & 0xFF,
            ((ts << 1) & 0xFE) | 1,
        )
    )


def _find_system_code(buf: bytearray, start: int, end: int) -> int:
    """First 00 00 01 xx with xx >= 0xB9 (a PS start code) wholly in [start, end), or -1.

    H.264/H.265 (and MPEG video) never contain one: their start codes are followed by bytes
    below 0x80 (NAL headers) or 0xB9 (MPEG video). So this loops once per NAL unit, not per
    byte."""
    find = buf.find
    j = find(_START, start, end)
    while 0 <= j < end - 3:
        if buf[j + 3] >= 0xB9:
            return j
        j = find(_START, j + 3, end)
    return -1


def guess_codec(data: bytes | bytearray) -> Codec:
    """H.264 or H.265 from the NAL headers of an Annex-B buffer (PS without a PSM).

    H.264 slices (types 1, 5), SPS (7) and AUD (9) have an odd first header byte; an H.265 NAL
    unit of layer 0 has an even one followed by 0x01 (temporal id 0)."""
    find = data.find
    j = find(_START)
    end = len(data) - 5
    hevc = False
    while 0 <= j <= end:
        b0, b1 = data[j + 3], data[j + 4]
        if not b0 & 0x80:
            if b0 & 1 and nal_type(bytes((b0,))) in (1, 5, 7, 9):
                return Codec.H264
            if b1 == 1 and hevc_nal_type(bytes((b0,))) in (32, 33, 34, 35, 19, 20, 21, 1):
                hevc = True
        j = find(_START, j + 3)
    return Codec.HEVC if hevc else Codec.OTHER


def keyframe_of(codec: Codec, data: bytes) -> bool:
    """An IDR (H.264) or IRAP (H.265) picture: looks at NAL headers up to the first slice."""
    find = data.find
    j = find(_START)
    end = len(data) - 4
    while 0 <= j <= end:
        header = data[j + 3 : j + 4]
        if codec is Codec.H264:
            kind = nal_type(header)
            if 1 <= kind <= 5:
                return kind == NAL_IDR
        elif codec is Codec.HEVC:
            kind = hevc_nal_type(header)
            if kind < 32:
                return hevc_is_irap(kind)
        else:
            return False
        j = find(_START, j + 3)
    return False


def _begins_picture(codec: Codec, au: bytearray, h: int) -> tuple[bool, bool]:
    """(begins a new access unit, is a slice) for the NAL unit whose header is at au[h]
    (ITU-T H.264 §7.4.1.2.3, H.265 §7.4.2.4.4); needs 3 bytes."""
    b0 = au[h]
    if codec is Codec.H264:
        kind = b0 & 0x1F
        if 1 <= kind <= 5:
            return bool(au[h + 1] & 0x80), True  # first_mb_in_slice == 0
        return kind in (6, 7, 8, 9) or 14 <= kind <= 18, False
    kind = (b0 >> 1) & 0x3F
    if kind < 32:
        return bool(au[h + 2] & 0x80), True  # first_slice_segment_in_pic_flag
    return 32 <= kind <= 35 or kind == 39 or 41 <= kind <= 44 or 48 <= kind <= 55, False


class _Framing(enum.Enum):
    UNKNOWN = "unknown"  # not yet sure PES are aligned to pictures
    PACKS = "packs"  # GB style: a pack header ends a picture
    ELEMENTARY = "elementary"  # FFmpeg style: split the H.264/H.265 stream itself


class _State(enum.Enum):
    HEADER = 1  # at a start code (or hunting for one)
    VIDEO = 2  # in a video PES payload
    AUDIO = 3  # in an audio PES payload
    SKIP = 4  # in a packet we do not use (padding, private, system header)


class _Malformed(Exception):
    pass


class PsDemuxer:
    """Program stream bytes in, access units out (see the module docstring).

    `feed()`, `end_of_frame()` and `flush()` return the access units completed by the call.
    """

    def __init__(
        self, *, max_frame: int = MAX_FRAME, wait_keyframe: bool = True, audio: bool = True
    ) -> None:
        self.max_frame = max_frame
        self.audio = audio  # surface audio PES whose type the PSM gives
        self.wait_keyframe = wait_keyframe  # after a loss (and at the start), until a keyframe
        self._buf = bytearray()
        self._out: list[AccessUnit] = []
        self._state = _State.HEADER
        self._left = 0  # bytes left in the current payload; -1: video PES of length 0
        self._hunting = False
        self._framing = _Framing.UNKNOWN
        self._aligned = 0  # PES with a new PTS that start with a start code
        self._misaligned = 0  # PACKS: ones in a row that do not
        self._types: dict[int, int] = {}  # stream id -> PSM stream type
        self._codecs: dict[int, Codec] = {}  # video stream id -> codec (PSM or guessed)
        self._last_ts = -1  # unwrapping: the last raw 33-bit value and its extended one
        self._last_ext = 0
        # the open video access unit
        self._au = bytearray()
        self._au_open = False
        self._au_sid = VIDEO_ID
        self._au_pts = 0
        self._au_dts = 0
        self._broken = False
        self._need_keyframe = wait_keyframe
        self._marks: list[tuple[int, int, int]] = []  # ELEMENTARY: (offset, pts, dts) of PES
        self._scan = 0  # ELEMENTARY: where to look for the next NAL unit in _au
        self._seen_slice = False
        self._step = 3600  # DTS step, for pictures that came without a PTS
        self._pack_seen = False  # a pack header came since the open picture began
        # the open audio PES
        self._audio = bytearray()
        self._audio_sid = AUDIO_ID
        self._audio_pts = 0
        # counters
        self.bytes = 0
        self.frames = 0  # video access units handed on
        self.audio_frames = 0
        self.packs = 0
        self.psms = 0
        self.errors = 0  # malformed or truncated headers and packets
        self.resyncs = 0  # times sync was lost and the next start code searched for
        self.skipped = 0  # bytes thrown away while searching
        self.dropped = 0  # video access units dropped: broken, too large, before a keyframe
        self.oversized = 0  # of which larger than max_frame
        self.bad_crc = 0  # PSMs whose CRC is wrong (used anyway: many devices get it wrong)
        self.internal_errors = 0  # a bug here, caught so that the stream goes on

    @property
    def framing(self) -> str:
        return self._framing.value

    def counters(self) -> dict[str, int]:
        names = ("bytes", "frames", "audio_frames", "packs", "psms", "errors", "resyncs")
        more = ("skipped", "dropped", "oversized", "bad_crc", "internal_errors")
        return {name: getattr(self, name) for name in names + more}

    def stream_type(self, stream_id: int) -> int:
        return self._types.get(stream_id, 0)

    # input

    def feed(self, data: bytes | bytearray | memoryview) -> list[AccessUnit]:
        self.bytes += len(data)
        buf = self._buf
        buf += data
        # the common case, most RTP payloads: inside a video PES that goes on after them
        n = len(buf)
        if (
            self._state is _State.VIDEO
            and n < self._left
            and n > 3
            and self._framing is not _Framing.ELEMENTARY
            and len(self._au) + n <= self.max_frame
            and _find_system_code(buf, 0, n) < 0
        ):
            take = n - 3  # (3 kept back: they may begin a start code)
            if not self._broken:
                with memoryview(buf) as view:
                    self._au += view[:take]
            del buf[:take]
            self._left -= take
            return []
        self._run()
        return self._take()

    def end_of_frame(self) -> list[AccessUnit]:
        """The caller knows the frame is complete (the RTP marker bit): hand it on now.

        Does nothing while a PES announced longer is still incomplete (an early marker)."""
        self._run()
        if self._state is _State.VIDEO and self._left < 0:  # PES of length 0: all is in
            with memoryview(self._buf) as tail:
                self._append_video(tail)
            self._buf.clear()
            self._state = _State.HEADER
        rest = self._buf
        if self._state is _State.HEADER and rest.count(0) == len(rest):  # (zero padding)
            self._close_video()
        return self._take()

    def flush(self) -> list[AccessUnit]:
        """End of input: the last frame, unless it was cut short."""
        out = self.end_of_frame()
        rest = self._buf
        if self._state is not _State.HEADER:  # a packet cut short
            self.errors += 1
            self._broken = self._broken or self._state is _State.VIDEO
        elif rest.count(0) != len(rest):  # a few bytes of garbage at the end
            self.skipped += len(rest)
        rest.clear()
        self._state = _State.HEADER
        self._close_video()
        return out + self._take()

    def discontinuity(self) -> None:
        """Bytes were lost (an RTP sequence gap): the open frame is broken; find the next
        start code in what follows."""
        self._lose_sync()
        self._buf.clear()

    # parsing

    def _take(self) -> list[AccessUnit]:
        out, self._out = self._out, []
        return out

    def _lose_sync(self) -> None:
        if self._au_open:
            self._broken = True
        self._audio.clear()
        self._state = _State.HEADER
        if not self._hunting:
            self._hunting = True
            self.resyncs += 1

    def _run(self) -> None:
        buf = self._buf
        view = memoryview(buf)
        pos = 0
        try:
            pos = self._parse(buf, view)
        except Exception:  # never let a camera's bytes end the stream
            log.exception("PS demuxer bug; resynchronising")
            self.internal_errors += 1
            self._lose_sync()
            pos = len(buf)
        finally:
            view.release()
        del buf[:pos]

    def _parse(self, buf: bytearray, view: memoryview) -> int:
        n = len(buf)
        pos = 0
        while pos < n:
            state = self._state
            if state is _State.VIDEO:
                pos = self._video_payload(buf, view, pos, n)
                if self._state is _State.VIDEO:
                    break
            elif state is not _State.HEADER:
                pos = self._other_payload(buf, view, pos, n, state)
                if self._state is state:
                    break
            else:
                used = self._header(buf, pos, n)
                if used == 0:
                    break
                pos += used
        return pos

    def _hunt(self, buf: bytearray, pos: int, n: int) -> int:
        """Bytes to skip from `pos` to the next PS start code (all but 3 if none)."""
        found = _find_system_code(buf, pos + 1, n)
        end = found if found >= 0 else max(pos, n - 3)
        if end > pos and buf.count(0, pos, end) != end - pos:  # zero stuffing is harmless
            self.skipped += end - pos
            self._lose_sync()
        return end - pos

    def _header(self, buf: bytearray, pos: int, n: int) -> int:
        """Handle the packet (or header) starting at `pos`; bytes used, 0 if incomplete."""
        if n - pos < 4:
            return 0
        if buf[pos] or buf[pos + 1] or buf[pos + 2] != 1 or buf[pos + 3] < END_CODE:
            return self._hunt(buf, pos, n)
        sid = buf[pos + 3]
        try:
            if sid == PACK_START:
                self._pack_seen = True
                if self._framing is _Framing.PACKS:
                    self._close_video()
                used = self._pack_header(buf, pos, n)
            elif sid == END_CODE:
                if self._framing is _Framing.PACKS:
                    self._close_video()
                used = 4
            elif n - pos < 6:
                return 0
            else:
                length = (buf[pos + 4] << 8) | buf[pos + 5]
                if sid == PSM_ID:
                    if length > _PSM_MAX:
                        raise _Malformed
                    if n - pos < 6 + length:
                        return 0
                    if not self._psm(buf, pos, length):
                        self.errors += 1  # a bad map is ignored, its packet skipped
                    used = 6 + length
                elif 0xC0 <= sid <= 0xEF:
                    used = self._pes(buf, pos, n, sid, length)
                else:
                    self._state, self._left = _State.SKIP, length
                    used = 6
        except _Malformed:  # skip the start code; the next call hunts for another
            self.errors += 1
            self.skipped += 1
            self._lose_sync()
            return 1
        if used:
            self._hunting = False
        return used

    def _pack_header(self, buf: bytearray, pos: int, n: int) -> int:
        if n - pos < 12:
            return 0
        kind = buf[pos + 4]
        if kind >> 6 == 1:  # MPEG-2
            if n - pos < 14:
                return 0
            size = 14 + (buf[pos + 13] & 7)
            if n - pos < size:
                return 0
        elif kind >> 4 == 2:  # MPEG-1
            size = 12
        else:
            raise _Malformed
        self.packs += 1
        return size

    def _psm(self, buf: bytearray, pos: int, length: int) -> bool:
        end = pos + 6 + length
        if length < 10:
            return False
        p = pos + 10 + ((buf[pos + 8] << 8) | buf[pos + 9])
        if p + 2 > end - 4:
            return False
        es_end = min(p + 2 + ((buf[p] << 8) | buf[p + 1]), end - 4)
        p += 2
        types: dict[int, int] = {}
        while p + 4 <= es_end:
            types[buf[p + 1]] = buf[p]
            p += 4 + ((buf[p + 2] << 8) | buf[p + 3])
        if crc32_mpeg2(buf[pos:end]) != 0:
            self.bad_crc += 1
        self.psms += 1
        if types != self._types:
            self._types = types
            for sid, kind in types.items():
                if 0xE0 <= sid <= 0xEF:
                    self._codecs[sid] = _VIDEO_CODEC.get(kind, Codec.OTHER)
        return True

    def _unwrap(self, raw: int) -> int:
        if self._last_ts < 0:
            self._last_ext = raw
        else:
            diff = (raw - self._last_ts) & TS_MASK
            self._last_ext += diff if diff < 1 << 32 else diff - (1 << 33)
        self._last_ts = raw
        return self._last_ext

    def _pes_header(self, buf: bytearray, pos: int, n: int, length: int) -> tuple[int, int, int]:
        """(header size, PTS, DTS) of the PES at `pos`; size 0 if incomplete; PTS -1 if none."""
        if n - pos < 9:
            return 0, -1, -1
        pts = dts = -1
        if buf[pos + 6] >> 6 == 2:  # MPEG-2
            flags = buf[pos + 7] >> 6
            size = 9 + buf[pos + 8]
            if n - pos < size:
                return 0, -1, -1
            if flags & 2 and size >= 14:
                pts = read_timestamp(buf, pos + 9)
                if flags == 3 and size >= 19:
                    dts = read_timestamp(buf, pos + 14)
        else:  # MPEG-1: stuffing, STD buffer, then PTS / PTS+DTS / 0x0F
            p = pos + 6
            while p < n and buf[p] == 0xFF and p < pos + 22:
                p += 1
            if p < n and buf[p] >> 6 == 1:
                p += 2
            if p >= n:
                return 0, -1, -1
            kind = buf[p] >> 4
            size = p - pos + (5 if kind == 2 else 10 if kind == 3 else 1)
            if kind not in (2, 3) and buf[p] != 0x0F:
                raise _Malformed
            if n - pos < size:
                return 0, -1, -1
            if kind >= 2:
                pts = read_timestamp(buf, p)
                if kind == 3:
                    dts = read_timestamp(buf, p + 5)
        if length and size > 6 + length:
            raise _Malformed
        if pts >= 0:
            pts = self._unwrap(pts)
            dts = self._unwrap(dts) if dts >= 0 else pts
        return size, pts, dts

    def _pes(self, buf: bytearray, pos: int, n: int, sid: int, length: int) -> int:
        video = sid >= 0xE0
        size, pts, dts = self._pes_header(buf, pos, n, length)
        if size == 0:
            return 0
        payload = 6 + length - size if length else 4
        if not video and not length:  # only video may leave its length open
            return size
        if n - pos < size + min(4, payload):  # look at the payload's first bytes too
            return 0
        self._left = 6 + length - size if length else -1
        if not video:
            self._state = _State.AUDIO
            self._audio.clear()
            self._audio_sid = sid
            self._audio_pts = pts if pts >= 0 else self._audio_pts
            return size
        self._state = _State.VIDEO
        p = pos + size
        starts = buf.startswith(_START, p) or buf.startswith(b"\x00" + _START, p)
        self._video_pes(sid, pts, dts, starts or payload < 4)
        return size

    def _video_pes(self, sid: int, pts: int, dts: int, aligned: bool) -> None:
        """Decide what a new video PES does to the open access unit."""
        if self._au_open and sid != self._au_sid:
            self._close_video()
        if not self._au_open:
            self._open(sid, pts, dts, broken=not aligned)
            return
        if pts < 0:  # a continuation, unless a pack header came between (no PTS on P frames)
            if self._pack_seen and aligned and self._framing is not _Framing.ELEMENTARY:
                self._close_video()
                self._open(sid, pts, dts, broken=False)
            return
        if self._framing is _Framing.ELEMENTARY:
            self._marks.append((len(self._au), pts, dts))
            return
        if pts == self._au_pts:
            return
        if aligned:
            self._close_video()
            self._open(sid, pts, dts, broken=False)
            self._aligned += 1
            self._misaligned = 0
            if self._framing is _Framing.UNKNOWN and self._aligned >= _ALIGN_CONFIRM:
                self._framing = _Framing.PACKS
            return
        if not self._broken and self._framing is _Framing.PACKS:
            self._misaligned += 1  # a damaged header, or really another kind of muxer?
        if (
            not self._broken
            and (self._framing is _Framing.UNKNOWN or self._misaligned >= _ALIGN_CONFIRM)
            and self._codec(sid, self._au) in (Codec.H264, Codec.HEVC)
        ):
            log.debug("PS: PES not aligned to pictures; splitting the elementary stream")
            self._framing = _Framing.ELEMENTARY
            self._marks = [(len(self._au), pts, dts)]
            self._scan = 0
            self._seen_slice = False
            return
        self._close_video()  # damage, or an unknown codec: PTS changes are all we have
        self._open(sid, pts, dts, broken=self._broken or self._framing is _Framing.PACKS)

    def _open(self, sid: int, pts: int, dts: int, broken: bool) -> None:
        self._au_open = True
        self._au_sid = sid
        self._pack_seen = False
        if pts >= 0:
            if 0 < dts - self._au_dts < CLOCK_RATE:
                self._step = dts - self._au_dts
            self._au_pts, self._au_dts = pts, dts
        else:  # a picture without a PTS: estimate one
            self._au_pts += self._step
            self._au_dts += self._step
        self._broken = broken
        self._au.clear()
        self._marks = []
        self._scan = 0
        self._seen_slice = False

    def _codec(self, sid: int, data: bytes | bytearray) -> Codec:
        codec = self._codecs.get(sid)
        if codec is None:
            codec = guess_codec(data)
            if codec is not Codec.OTHER:
                self._codecs[sid] = codec
        return codec

    def _append_video(self, part: memoryview) -> None:
        if not part or (self._broken and self._framing is not _Framing.ELEMENTARY):
            return  # (a broken picture is dropped: why keep its bytes)
        au = self._au
        if len(au) + len(part) > self.max_frame:
            if au:
                self.oversized += 1
            self._broken = True
            au.clear()
            self._marks = []
            self._scan = 0
            return
        au += part
        if self._framing is _Framing.ELEMENTARY:
            self._split()

    def _video_payload(self, buf: bytearray, view: memoryview, pos: int, n: int) -> int:
        left = self._left
        if left < 0:  # length 0: up to the next PS start code
            stop = _find_system_code(buf, pos, n)
            end = stop if stop >= 0 else max(pos, n - 3)
        else:
            limit = pos + left
            stop = _find_system_code(buf, pos, min(n, limit + 3))
            if 0 <= stop < limit:
                end = stop
            else:  # keep 3 bytes back: with the next ones they may be a start code
                stop = -1
                end = limit if limit <= n else max(pos, n - 3)
        self._append_video(view[pos:end])
        if stop >= 0:
            if left >= 0:  # a PS start code inside a video PES: bytes were lost
                self.errors += 1
                self._lose_sync()
            self._state = _State.HEADER
        elif left >= 0:
            self._left = left - (end - pos)
            if not self._left:
                self._state = _State.HEADER
        return end

    def _other_payload(
        self, buf: bytearray, view: memoryview, pos: int, n: int, state: _State
    ) -> int:
        limit = pos + self._left
        end = limit if limit <= n else max(pos, n - 3)
        stop = buf.find(_PACK, pos, min(n, limit + 3))
        if stop >= 0:  # a pack header inside: bytes were lost
            self.errors += 1
            self._lose_sync()
            return stop
        if state is _State.AUDIO:
            self._audio += view[pos:end]
        self._left -= end - pos
        if not self._left:
            self._state = _State.HEADER
            if state is _State.AUDIO:
                self._close_audio()
        return end

    def _close_audio(self) -> None:
        kind = self._types.get(self._audio_sid, 0)
        if self.audio and kind and self._audio:
            data = bytes(self._audio)
            pts = self._audio_pts
            self._out.append(AccessUnit(self._audio_sid, kind, Codec.OTHER, pts, pts, True, data))
            self.audio_frames += 1
        self._audio.clear()

    def _split(self) -> None:
        """ELEMENTARY framing: hand on every complete picture in _au."""
        au = self._au
        codec = self._codec(self._au_sid, au)
        if codec not in (Codec.H264, Codec.HEVC):
            return
        find = au.find
        limit = len(au) - 6
        start = self._scan
        j = find(_START, start)
        while 0 <= j <= limit:
            begins, is_slice = _begins_picture(codec, au, j + 3)
            if begins and self._seen_slice:
                cut = j - 1 if j and not au[j - 1] else j
                self._emit_part(cut)
                j -= cut
                limit -= cut
                begins, is_slice = _begins_picture(codec, au, j + 3)
            if is_slice:
                self._seen_slice = True
            start = j + 3
            j = find(_START, start)
        # not found: a start code may still begin in the last 2 bytes
        self._scan = j if j >= 0 else max(start, len(au) - 2)

    def _emit_part(self, cut: int) -> None:
        """ELEMENTARY framing: _au[:cut] is a picture; the next one starts at `cut`."""
        au = self._au
        with memoryview(au) as view:
            data = bytes(view[:cut])
        del au[:cut]
        self._emit(data)
        self._seen_slice = False
        pts = -1
        marks = self._marks
        while marks and marks[0][0] <= cut:
            _, pts, dts = marks.pop(0)
        if pts >= 0:
            if 0 < dts - self._au_dts < CLOCK_RATE:
                self._step = dts - self._au_dts
            self._au_pts, self._au_dts = pts, dts
        else:  # several pictures began in one PES: only the first has a PTS; estimate
            self._au_dts += self._step
            self._au_pts = self._au_dts
        self._marks = [(offset - cut, p, d) for offset, p, d in marks]

    def _close_video(self) -> None:
        if not self._au_open:
            return
        self._au_open = False
        data = bytes(self._au)
        self._au.clear()
        self._marks = []
        self._emit(data)

    def _emit(self, data: bytes) -> None:
        if self._broken or not data:
            self._broken = False
            self.dropped += 1
            self._need_keyframe = self.wait_keyframe
            return
        sid = self._au_sid
        codec = self._codec(sid, data)
        keyframe = keyframe_of(codec, data)
        if self._need_keyframe:
            if not keyframe and codec is not Codec.OTHER:
                self.dropped += 1
                return
            self._need_keyframe = False
        kind = self._types.get(sid, 0) or int(_CODEC_TYPE.get(codec, 0))
        self._out.append(AccessUnit(sid, kind, codec, self._au_pts, self._au_dts, keyframe, data))
        self.frames += 1


def pack_header(scr: int, mux_rate: int, stuffing: int = 0) -> bytes:
    """An MPEG-2 pack header; `mux_rate` in units of 50 bytes/s, `stuffing` 0..7 bytes."""
    scr &= TS_MASK
    head = bytes(
        (
            0,
            0,
            1,
            PACK_START,
            0x44 | ((scr >> 27) & 0x38) | ((scr >> 28) & 0x03),
            (scr >> 20) & 0xFF,
            0x04 | ((scr >> 12) & 0xF8) | ((scr >> 13) & 0x03),
            (scr >> 5) & 0xFF,
            0x04 | ((scr << 3) & 0xF8),  # SCR extension 0
            0x01,
            (mux_rate >> 14) & 0xFF,
            (mux_rate >> 6) & 0xFF,
            ((mux_rate << 2) & 0xFC) | 0x03,
            0xF8 | stuffing,
        )
    )
    return head + b"\xff" * stuffing


class PsMuxer:
    """Access units in, GB/T 28181-style PS out: each call returns one pack.

    Video: pack header, on keyframes the system header and the PSM, then the picture in PES
    packets of at most `max_pes_length` bytes (PES_packet_length), the first with the PTS (and
    the DTS when it differs). Audio (G.711 and the others of `StreamType`): a pack with one PES.
    """

    def __init__(
        self,
        video: Codec = Codec.H264,
        audio: StreamType | None = None,
        *,
        mux_rate: int = 4_000_000,
        max_pes_length: int = MAX_PES_LENGTH,
    ) -> None:
        if video not in _CODEC_TYPE:
            raise ValueError(f"PS muxer: no stream type for {video}")
        if not 64 <= max_pes_length <= MAX_PES_LENGTH:
            raise ValueError("PS muxer: max_pes_length must be 64..65535")
        self.video_type = _CODEC_TYPE[video]
        self.audio_type = audio
        self.max_pes_length = max_pes_length
        self._rate = max(1, min(mux_rate // 400, (1 << 22) - 1))  # bit/s -> 50 bytes/s
        streams: list[tuple[int, int]] = [(VIDEO_ID, self.video_type)]
        if audio is not None:
            streams.append((AUDIO_ID, audio))
        self.system_header = self._system_header(streams)
        self.psm = self._map(streams)
        self.frames = 0
        self.bytes = 0

    def _system_header(self, streams: list[tuple[int, int]]) -> bytes:
        rate = self._rate
        body = bytearray(
            (
                0x80 | ((rate >> 15) & 0x7F),
                (rate >> 7) & 0xFF,
                ((rate << 1) & 0xFE) | 1,
                (len(streams) - 1) << 2,  # audio_bound; not fixed, not CSPS
                0xE1,  # audio and video locked, marker, video_bound 1
                0x7F,
            )
        )
        for sid, _ in streams:  # P-STD buffer: video 400 KiB (scale 1024), audio 4 KiB (128)
            scale, size = (1, 400) if sid == VIDEO_ID else (0, 32)
            body += bytes((sid, 0xC0 | (scale << 5) | (size >> 8), size & 0xFF))
        return b"\x00\x00\x01\xbb" + len(body).to_bytes(2, "big") + bytes(body)

    @staticmethod
    def _map(streams: list[tuple[int, int]]) -> bytes:
        entries = b"".join(bytes((kind, sid, 0, 0)) for sid, kind in streams)
        body = bytes((0xE0, 0xFF, 0, 0)) + len(entries).to_bytes(2, "big") + entries
        head = b"\x00\x00\x01\xbc" + (len(body) + 4).to_bytes(2, "big") + body
        return head + crc32_mpeg2(head).to_bytes(4, "big")

    def _pes(self, sid: int, data: bytes, pts: int, dts: int) -> list[bytes | memoryview]:
        if dts != pts:
            stamps, flags = write_timestamp(3, pts) + write_timestamp(1, dts), 0xC0
        else:
            stamps, flags = write_timestamp(2, pts), 0x80
        view = memoryview(data)
        first_room = self.max_pes_length - 3 - len(stamps)
        chunk = view[:first_room]
        length = 3 + len(stamps) + len(chunk)
        head = bytes((0, 0, 1, sid, length >> 8, length & 0xFF, 0x84, flags, len(stamps)))
        out: list[bytes | memoryview] = [head, stamps, chunk]
        room = self.max_pes_length - 3
        for pos in range(first_room, len(data), room):
            chunk = view[pos : pos + room]
            length = 3 + len(chunk)
            out.append(bytes((0, 0, 1, sid, length >> 8, length & 0xFF, 0x80, 0, 0)))
            out.append(chunk)
        return out

    def video(self, data: bytes, pts: int, dts: int | None = None, keyframe: bool = False) -> bytes:
        """One picture (Annex-B) as one pack."""
        dts = pts if dts is None else dts
        parts: list[bytes | memoryview] = [pack_header(dts, self._rate)]
        if keyframe:
            parts += (self.system_header, self.psm)
        parts += self._pes(VIDEO_ID, data, pts & TS_MASK, dts & TS_MASK)
        out = b"".join(parts)
        self.frames += 1
        self.bytes += len(out)
        return out

    def audio(self, data: bytes, pts: int) -> bytes:
        """One audio frame as one pack (the muxer must have been given an audio type)."""
        if self.audio_type is None:
            raise ValueError("PS muxer: no audio stream configured")
        parts: list[bytes | memoryview] = [pack_header(pts, self._rate)]
        parts += self._pes(AUDIO_ID, data, pts & TS_MASK, pts & TS_MASK)
        out = b"".join(parts)
        self.bytes += len(out)
        return out

    def mux(self, unit: AccessUnit) -> bytes:
        """A demuxed access unit (cascading a camera upward)."""
        if unit.is_video:
            return self.video(unit.data, unit.pts, unit.dts, unit.keyframe)
        return self.audio(unit.data, unit.pts)
