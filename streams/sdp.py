"""The parts of a DESCRIBE answer (SDP, RFC 8866) an RTSP client needs: the video media.

Cameras write SDP loosely (Hikvision puts `a=control` URLs with credentials-free absolute
paths, Dahua appends `a=framerate`, some omit `a=rtpmap` for static payload types), so the
parser is lenient: it never raises on a malformed line, it skips it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.bitstream import parameter_sets_from_sprop

# RFC 3551 static payload types a camera may send without an a=rtpmap line
_STATIC = {26: ("JPEG", 90000), 32: ("MPV", 90000), 33: ("MP2T", 90000), 34: ("H263", 90000)}


@dataclass(slots=True)
class MediaDescription:
    """One `m=` section."""

    kind: str  # "video", "audio", "application"
    payload_type: int = -1
    codec: str = ""  # encoding name from a=rtpmap, upper case: H264, H265, JPEG, MP4V-ES
    clock_rate: int = 0
    fmtp: dict[str, str] = field(default_factory=dict)
    control: str = ""
    framerate: float = 0.0

    def parameter_sets(self) -> bytes:
        """Annex-B parameter sets from the fmtp (H.264 sprop-parameter-sets; H.265 VPS/SPS/PPS)."""
        if self.codec == "H264":
            keys = ["sprop-parameter-sets"]
        elif self.codec in ("H265", "HEVC"):
            keys = ["sprop-vps", "sprop-sps", "sprop-pps"]
        else:
            return b""
        return parameter_sets_from_sprop(*(self.fmtp.get(key, "") for key in keys))


@dataclass(slots=True)
class SessionDescription:
    control: str = ""  # session-level a=control
    media: list[MediaDescription] = field(default_factory=list)

    @property
    def video(self) -> MediaDescription | None:
        """The first video media (cameras with several streams list the main one first)."""
        for media in self.media:
            if media.kind == "video":
                return media
        return None


def parse_sdp(text: str) -> SessionDescription:
    session = SessionDescription()
    current: MediaDescription | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "m":
            current = _media_line(value)
            session.media.append(current)
        elif kind == "a":
            name, _, arg = value.partition(":")
            if current is None:
                if name == "control":
                    session.control = arg.strip()
                continue
            _attribute(current, name.strip().lower(), arg.strip())
    return session


def _media_line(value: str) -> MediaDescription:
    fields = value.split()
    media = MediaDescription(kind=fields[0].lower() if fields else "")
    if len(fields) >= 4:
        try:
            media.payload_type = int(fields[3])
        except ValueError:
            pass
    static = _STATIC.get(media.payload_type)
    if static is not None:
        media.codec, media.clock_rate = static
    return media


def _attribute(media: MediaDescription, name: str, arg: str) -> None:
    if name == "rtpmap":
        pt, _, encoding = arg.partition(" ")
        if _int(pt) != media.payload_type:
            return
        parts = encoding.strip().split("/")
        media.codec = parts[0].upper()
        if len(parts) > 1:
            media.clock_rate = _int(parts[1])
    elif name == "fmtp":
        pt, _, params = arg.partition(" ")
        if _int(pt) != media.payload_type:
            return
        for param in params.split(";"):
            key, sep, val = param.strip().partition("=")
            if sep:
                media.fmtp[key.strip().lower()] = val.strip()
    elif name == "control":
        media.control = arg
    elif name in ("framerate", "x-framerate"):
        try:
            media.framerate = float(arg)
        except ValueError:
            pass


def _int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        return -1
