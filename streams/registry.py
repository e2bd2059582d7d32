"""Sources registered by URL scheme, as import strings so an unused protocol costs nothing.

rtsp://, rtsps://          streams.rtsp:RtspSource       (our asyncio RTSP/RTP client)
rtmp://, rtmps://          streams.pyav_source:PyAVSource
http://, https://          streams.pyav_source:PyAVSource  (MJPEG, FLV, MPEG-TS)
file://                    streams.pyav_source:FileSource  (loops the file)
synthetic://NAME?...       streams.synthetic:SyntheticSource
hubrelay://N:T@HOST/CAM    streams.hubrelay:HubRelaySource  (another hub node's camera, one leg)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from streams.media import Source

SCHEMES: dict[str, str] = {
    "rtsp": "streams.rtsp:RtspSource",
    "rtsps": "streams.rtsp:RtspSource",
    "rtmp": "streams.pyav_source:PyAVSource",
    "rtmps": "streams.pyav_source:PyAVSource",
    "http": "streams.pyav_source:PyAVSource",
    "https": "streams.pyav_source:PyAVSource",
    "file": "streams.pyav_source:FileSource",
    "synthetic": "streams.synthetic:SyntheticSource",
    "hubrelay": "streams.hubrelay:HubRelaySource",
}


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """Per-camera connection options, taken from the camera's config."""

    name: str = ""  # camera id, for log prefixes
    transport: str = "tcp"  # RTSP: "tcp" (interleaved) or "udp"
    timeout: float = 10.0  # connect / read timeout, seconds


class SourceFactory(Protocol):
    def __call__(self, url: str, options: SourceOptions) -> Source: ...


class UnknownScheme(ValueError):
    pass


def source_class(url: str) -> SourceFactory:
    scheme = urlsplit(url).scheme.lower()
    target = SCHEMES.get(scheme)
    if target is None:
        raise UnknownScheme(
            f"unsupported camera URL scheme {scheme!r} (known: {', '.join(SCHEMES)})"
        )
    module_name, _, attr = target.partition(":")
    factory: SourceFactory = getattr(importlib.import_module(module_name), attr)
    return factory


def open_source(url: str, options: SourceOptions) -> Source:
    return source_class(url)(url, options)


def redact_url(url: str) -> str:
    """The URL with any password replaced, for logs and API output."""
    parts = urlsplit(url)
    if parts.password is None and "@" not in parts.netloc:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, ""))
