"""RtspSource: our own asyncio RTSP client as a camera `Source` (rtsp://, rtsps://).

Why not FFmpeg: its H.264 parser holds each access unit until the next one begins (+1 frame,
40 ms at 25 fps). We take the camera's RTP and close an access unit on the marker bit, as
Janus does. H.264 and H.265 are depacketized here; any other codec (MJPEG, MPEG-4) is handed
to `streams.pyav_source.PyAVSource`, imported only then.

Layers: `rtsp_session` (requests, auth, redirects) over `rtsp_protocol` (the TCP byte stream:
responses and `$` frames); `rtsp_udp` for UDP transport; `rtp_receiver` turns RTP into
`Packet`s through the `rtp_h264`/`rtp_h265` depacketizers.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import re
import struct
import time

from streams.media import Codec, PacketSink, SourceError
from streams.registry import SourceFactory, SourceOptions, redact_url
from streams.rtp import ReorderBuffer, parse_rtp
from streams.rtp_receiver import VideoReceiver
from streams.rtsp_session import RtspSession, control_url
from streams.rtsp_udp import UdpPair, open_udp_pair

log = logging.getLogger(__name__)

RTCP_INTERVAL = 5.0  # seconds between receiver reports
_NATIVE = (Codec.H264, Codec.HEVC)


def _port_pair(transport: str, key: str) -> tuple[int, int] | None:
    match = re.search(rf"(?:^|;)\s*{key}=(\d+)(?:-(\d+))?", transport)
    if match is None:
        return None
    first = int(match.group(1))
    return first, int(match.group(2)) if match.group(2) else first + 1


class RtspSource:
    """Pulls one camera over RTSP. Counters (`receiver.stats`, depacketizer `lost`,
    `dropped`) are readable while `run()` is going."""

    def __init__(self, url: str, options: SourceOptions) -> None:
        self.url = url
        self.options = options
        self.receiver: VideoReceiver | None = None
        self._rtp_channel = 0
        self._rtcp_channel = 1
        self._udp: UdpPair | None = None
        self._reorder = ReorderBuffer()
        self._ssrc = int.from_bytes(os.urandom(4), "big")

    def stats(self) -> dict[str, int]:
        """RTP-level counters of the current connection, for /api/streams."""
        r = self.receiver
        if r is None:
            return {}
        return {
            "rtp_packets": r.packets,
            "rtp_bytes": r.bytes,
            "rtp_lost": r.depacketizer.lost,
            "pictures_dropped": r.depacketizer.dropped,
        }

    async def run(self, sink: PacketSink) -> None:
        options = self.options
        self._reorder = ReorderBuffer()
        self._rtp_channel, self._rtcp_channel = 0, 1
        session = RtspSession(self.url, options.timeout, self._on_frame)
        tasks: list[asyncio.Task[None]] = []
        base = ""
        try:
            sdp = await session.open()
            media = sdp.video
            if media is None:
                raise SourceError(f"{session.redacted}: the camera offers no video")
            codec = Codec.from_name(media.codec)
            if codec not in _NATIVE:
                session.close()
                await self._delegate(sink, media.codec or str(media.payload_type))
                return
            self.receiver = VideoReceiver(codec, media, sink)
            base = control_url(session.base_url, sdp.control)
            media_url = control_url(base, media.control)
            if options.transport == "udp":
                rtcp_addr = await self._setup_udp(session, media_url)
            else:
                await self._setup_tcp(session, media_url)
                rtcp_addr = None
            await session.play(base)
            log.info("%s: playing %s over %s", session.redacted, codec, options.transport)
            tasks.append(asyncio.create_task(self._housekeeping(session, rtcp_addr)))
            await self._watch(session)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if base:
                await session.teardown(base, min(0.5, options.timeout))
            session.close()
            if self._udp is not None:
                self._udp.close()
                self._udp = None

    async def _delegate(self, sink: PacketSink, codec: str) -> None:
        try:
            module = importlib.import_module("streams.pyav_source")
            factory: SourceFactory = module.PyAVSource
        except (ImportError, AttributeError) as exc:
            raise SourceError(
                f"{redact_url(self.url)}: codec {codec} needs the PyAV source, which is unavailable"
            ) from exc
        log.info("%s: codec %s, handing over to PyAV", redact_url(self.url), codec)
        await factory(self.url, self.options).run(sink)

    async def _setup_tcp(self, session: RtspSession, url: str) -> None:
        transport = await session.setup(url, "RTP/AVP/TCP;unicast;interleaved=0-1")
        channels = _port_pair(transport, "interleaved")
        if channels is not None:
            self._rtp_channel, self._rtcp_channel = channels

    async def _setup_udp(self, session: RtspSession, url: str) -> tuple[str, int] | None:
        peer = session.peer_host()
        self._udp = await open_udp_pair(
            session.local_host(), peer, self._on_udp_rtp, self._on_udp_rtcp
        )
        port = self._udp.port
        transport = await session.setup(url, f"RTP/AVP;unicast;client_port={port}-{port + 1}")
        if "interleaved" in transport:
            raise SourceError(f"{session.redacted}: camera refused UDP transport")
        server = _port_pair(transport, "server_port")
        return (peer, server[1]) if server else None

    # data path: called for every RTP packet

    def _on_frame(self, channel: int, data: memoryview) -> None:
        receiver = self.receiver
        if receiver is None:
            return
        if channel == self._rtp_channel:
            receiver.on_rtp(data, time.time())
        elif channel == self._rtcp_channel:
            receiver.stats.on_rtcp(bytes(data), time.monotonic())

    def _on_udp_rtp(self, data: bytes) -> None:
        receiver = self.receiver
        packet = parse_rtp(memoryview(data))
        if receiver is None or packet is None:
            return
        arrival = time.time()
        for ordered in self._reorder.push(packet):
            receiver.feed(ordered, arrival)

    def _on_udp_rtcp(self, data: bytes) -> None:
        if self.receiver is not None:
            self.receiver.stats.on_rtcp(data, time.monotonic())

    # supervision

    async def _watch(self, session: RtspSession) -> None:
        """Until the camera closes (return) or sends nothing for `timeout` s (SourceError)."""
        receiver = self.receiver
        assert receiver is not None
        closed = session.connection.closed
        timeout = self.options.timeout
        loop = asyncio.get_running_loop()
        seen, last_change = receiver.packets, loop.time()
        while True:
            await asyncio.wait([closed], timeout=min(timeout / 4, 1.0))
            if closed.done():
                closed.result()  # raises what broke the connection (a sink error)
                log.info("%s: camera closed the connection", session.redacted)
                return
            if self._udp is not None and self._udp.error is not None:
                raise self._udp.error
            now = loop.time()
            if receiver.packets != seen:
                seen, last_change = receiver.packets, now
            elif now - last_change >= timeout:
                raise SourceError(f"{session.redacted}: no data for {timeout:g} s")

    async def _housekeeping(self, session: RtspSession, rtcp_addr: tuple[str, int] | None) -> None:
        """RTCP receiver reports every few seconds; a keepalive at half the session timeout."""
        loop = asyncio.get_running_loop()
        interval = session.session_timeout / 2
        next_keepalive = loop.time() + interval
        while True:
            await asyncio.sleep(min(RTCP_INTERVAL, interval))
            receiver = self.receiver
            if receiver is not None and receiver.stats.received:
                report = receiver.stats.receiver_report(self._ssrc, time.monotonic())
                if self._udp is not None:
                    if rtcp_addr is not None:
                        self._udp.send_rtcp(report, rtcp_addr)
                elif session.conn is not None:
                    frame = struct.pack("!BBH", 0x24, self._rtcp_channel, len(report))
                    session.conn.send(frame + report)
            if loop.time() >= next_keepalive:
                await session.keepalive()
                next_keepalive = loop.time() + interval
