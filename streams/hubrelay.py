"""`hubrelay://` sources: another hub node's camera, pulled over one hub-to-hub leg.

URL: `hubrelay://NODE:TOKEN@HOST:PORT/CAMERA[?tls=1&ca=/etc/zzhub/tls/ca.crt]`. TOKEN is an
admin bearer token of the owning hub (`zzhub token --role admin …`; kept as the URL's password
so it is redacted in logs and the API); `tls=1` uses HTTPS, verified against `ca` when given.
The owning node streams the camera's own encoded packets (hub/cluster/relay.py) and this
source hands them to the local Stream unchanged: the local Relay then serves every local
viewer, recorder and detector, so the owning node sees one consumer per pulling node.

Wire format (`application/x-zzhub-relay`), after the HTTP headers, a sequence of records:
a 21-byte header `>IBqd` (data length, kind, pts on the 90 kHz clock, capture wall-clock time)
then the data. Kind 2 is the stream info as JSON (first record, and again when the camera
reconnects with another one), kind 0/1 a packet (1: keyframe).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import struct
from urllib.parse import parse_qs, quote, unquote, urlsplit

import aiohttp

from streams.media import Codec, Packet, PacketSink, SourceError, StreamInfo
from streams.registry import SourceOptions, redact_url

MAX_RECORD = 16 * 1024 * 1024

CONTENT_TYPE = "application/x-zzhub-relay"
RECORD = struct.Struct(">IBqd")
KIND_PACKET, KIND_KEYFRAME, KIND_INFO = 0, 1, 2


def encode_info(info: StreamInfo) -> bytes:
    data = json.dumps(
        {
            "codec": str(info.codec),
            "width": info.width,
            "height": info.height,
            "fps": info.fps,
            "parameter_sets": info.parameter_sets.hex(),
        }
    ).encode()
    return RECORD.pack(len(data), KIND_INFO, 0, 0.0) + data


def decode_info(data: bytes) -> StreamInfo:
    raw = json.loads(data)
    return StreamInfo(
        Codec.from_name(str(raw["codec"])),
        int(raw.get("width", 0)),
        int(raw.get("height", 0)),
        float(raw.get("fps", 0.0)),
        bytes.fromhex(str(raw.get("parameter_sets", ""))),
    )


def encode_packet(packet: Packet) -> bytes:
    kind = KIND_KEYFRAME if packet.keyframe else KIND_PACKET
    return RECORD.pack(len(packet.data), kind, packet.pts, packet.captured) + packet.data


class HubRelaySource:
    def __init__(self, url: str, options: SourceOptions) -> None:
        self.url = url
        self.options = options
        self.label = f"{options.name or 'camera'} ({redact_url(url)})"

    def _target(self) -> tuple[str, str, ssl.SSLContext | bool]:
        parts = urlsplit(self.url)
        query = parse_qs(parts.query)
        camera = parts.path.strip("/")
        if not parts.hostname or not camera or "/" in camera:
            raise SourceError(f"{self.label}: expected hubrelay://NODE:TOKEN@HOST:PORT/CAMERA")
        tls = query.get("tls", ["0"])[0] in ("1", "true", "yes")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        port = f":{parts.port}" if parts.port else ""
        base = f"{'https' if tls else 'http'}://{host}{port}"
        context: ssl.SSLContext | bool = True
        if tls and "ca" in query:
            context = ssl.create_default_context(cafile=query["ca"][0])
        token = unquote(parts.password or "")
        return f"{base}/api/cameras/{quote(camera)}/relay", token, context

    async def run(self, sink: PacketSink) -> None:
        url, token, context = self._target()
        timeout = aiohttp.ClientTimeout(
            total=None, connect=self.options.timeout, sock_read=self.options.timeout
        )
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url, headers=headers, ssl=context) as resp,
            ):
                if resp.status != 200:
                    text = (await resp.text())[:200]
                    raise SourceError(f"{self.label}: owning hub answered {resp.status}: {text}")
                got_info = False
                while True:
                    try:
                        head = await resp.content.readexactly(RECORD.size)
                    except asyncio.IncompleteReadError as err:
                        if err.partial:
                            raise SourceError(f"{self.label}: leg cut mid-record") from None
                        return  # the owning hub ended the stream
                    length, kind, pts, captured = RECORD.unpack(head)
                    if length > MAX_RECORD:
                        raise SourceError(f"{self.label}: record of {length} bytes")
                    data = await resp.content.readexactly(length)
                    if kind == KIND_INFO:
                        sink.on_info(decode_info(data))
                        got_info = True
                    elif got_info:
                        sink.on_packet(Packet(data, pts, kind == KIND_KEYFRAME, captured))
        except (aiohttp.ClientError, TimeoutError, asyncio.IncompleteReadError, OSError) as err:
            raise SourceError(f"{self.label}: {type(err).__name__}: {err}") from None
