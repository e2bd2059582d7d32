"""Live view of a GB/T 28181 channel: INVITE `s=Play`, then MPEG-PS over RTP into the Stream.

`GbSource` is the `Source` of a channel's Stream (one per channel: one INVITE whatever the
number of viewers, recorders and detectors). `run()`:
1. opens the media port: UDP, or a TCP listener the device connects to (`tcp_passive`,
   `a=setup:passive` in our offer), or — after the answer — a TCP connection to the port the
   device answered (`tcp_active`; to the address its SIP comes from, never the `c=` it claims);
2. INVITEs the channel with an SDP offer carrying a per-session SSRC (`y=`, first digit 0:
   live; digits 2-6 from the domain), ACKs the 2xx;
3. demuxes the PS (`streams.rtp_ps.PsRtpReceiver` → `streams.mpegps.PsDemuxer`: a picture
   goes out on the RTP marker, or at the next pack header for devices that never set it) and
   hands pictures to the sink; H.264 and H.265 (G.711 audio is read and not forwarded yet);
4. ends on a BYE from the device (the camera ended the stream: the Stream reconnects on its
   schedule), on `timeout` seconds without media, or when cancelled — then BYEs the device.

Media from another address than the device's, or with another SSRC than the session's (the
`y=` of the device's answer, else ours; over TCP, a connection only the device reached, the
first SSRC seen), is dropped and counted in `LiveView`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from dataclasses import dataclass
from typing import Any

from config.schema import Gb28181Config
from hub.gb28181.dialer import Dialer, Dialog
from hub.gb28181.server import split_address
from hub.gb28181.service import Device
from hub.gb28181.sip import SipRequest, SipResponse, response_to
from hub.gb28181.uac import SipRequestError, SipTimeout
from streams import bitstream
from streams.media import CLOCK_RATE, Codec, Packet, PacketSink, SourceError, StreamInfo
from streams.mpegps import AccessUnit
from streams.registry import SourceOptions
from streams.rtp import parse_rtp
from streams.rtp_ps import PsRtpReceiver, TcpRtpReader
from streams.tasks import TaskSet

log = logging.getLogger(__name__)

PS_PAYLOAD = 96


# -- SDP ------------------------------------------------------------------------------------
def offer(
    server_id: str, host: str, port: int, ssrc: str, transport: str, *, session: str = "Play"
) -> bytes:
    """Our SDP offer: receive PS (96), also MPEG-4 (97) and H.264 (98) as devices list them."""
    proto = "RTP/AVP" if transport == "udp" else "TCP/RTP/AVP"
    lines = [
        "v=0",
        f"o={server_id} 0 0 IN IP4 {host}",
        f"s={session}",
        f"c=IN IP4 {host}",
        "t=0 0",
        f"m=video {port} {proto} 96 97 98",
        "a=recvonly",
        "a=rtpmap:96 PS/90000",
        "a=rtpmap:97 MPEG4/90000",
        "a=rtpmap:98 H264/90000",
    ]
    if transport != "udp":
        # passive: we listen, the device connects; active: we connect to the device
        lines += [f"a=setup:{'passive' if transport == 'tcp_passive' else 'active'}"]
        lines += ["a=connection:new"]
    lines += [f"y={ssrc}"]
    return ("\r\n".join(lines) + "\r\n").encode()


@dataclass(frozen=True)
class Answer:
    port: int = 0
    ssrc: int | None = None
    tcp: bool = False


def parse_answer(body: bytes) -> Answer:
    """The parts of a device's SDP answer we use (an empty body: all defaults)."""
    port, ssrc, tcp = 0, None, False
    for raw in body.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if line.startswith("m=video") or (line.startswith("m=") and not port):
            parts = line[2:].split()
            if len(parts) >= 3 and parts[1].isdigit() and int(parts[1]) <= 65535:
                port, tcp = int(parts[1]), "TCP" in parts[2].upper()
        elif line.startswith("y="):
            value = line[2:].strip()
            if value.isascii() and value.isdigit() and len(value) <= 10:
                ssrc = int(value) & 0xFFFFFFFF
    return Answer(port, ssrc, tcp)


# -- sessions -------------------------------------------------------------------------------
class LiveView:
    """The platform's live sessions: SSRCs, the dialog table (a device's BYE finds its
    session), BYEs owed at the end of a session, and the counters."""

    def __init__(self, config: Gb28181Config, dialer: Dialer, media_host: str) -> None:
        self.config = config
        self.dialer = dialer
        self.media_host = media_host  # where media sockets are bound
        self.sessions: dict[str, GbSource] = {}  # Call-ID → the session
        self.tasks = TaskSet("gb28181 live", log)
        self._serial = itertools.cycle(range(1, 10000))
        self._ssrcs: set[str] = set()
        # counters
        self.invites = 0
        self.invite_failed = 0  # refused or unanswered
        self.strangers = 0  # media packets from another address
        self.wrong_ssrc = 0  # media packets with another SSRC
        self.lost = 0  # RTP packets lost (sequence gaps)

    def new_ssrc(self) -> str:
        """A 10-digit SSRC: 0 (live), digits 4-8 of the domain, a 4-digit serial."""
        prefix = "0" + self.config.domain[3:8]
        for _ in range(10000):
            ssrc = f"{prefix}{next(self._serial):04d}"
            if ssrc not in self._ssrcs:
                self._ssrcs.add(ssrc)
                return ssrc
        raise SourceError("no free SSRC (10,000 sessions open)")

    def release_ssrc(self, ssrc: str) -> None:
        self._ssrcs.discard(ssrc)

    def source(self, device: Device, channel: str, options: SourceOptions) -> GbSource:
        return GbSource(self, device, channel, options)

    def dialog_request(
        self, request: SipRequest, address: str, transport: str
    ) -> SipResponse | None:
        """A BYE or INFO inside one of our dialogs (the registrar hands them here)."""
        if request.method == "ACK":
            return None
        session = self.sessions.get(request.call_id)
        if session is None:
            return response_to(request, 481)
        if request.method == "BYE":
            self.sessions.pop(request.call_id, None)
            session.ended_by_device()
        return response_to(request, 200)

    def bye_later(self, dialog: Dialog) -> None:
        self.tasks.spawn(self.dialer.bye(dialog), name=f"gb28181:bye:{dialog.channel}")

    async def close(self) -> None:
        await self.tasks.close()


class _Media(asyncio.Protocol, asyncio.DatagramProtocol):
    """The media socket of one session (UDP datagrams, or one TCP connection)."""

    def __init__(self, source: GbSource, *, tcp: bool) -> None:
        self.source = source
        self.tcp = tcp
        self.reader = TcpRtpReader("auto") if tcp else None
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.tcp and not self.source.accept_connection(self, transport):
            transport.close()
            return
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.source.on_rtp(data, str(addr[0]), tcp=False)

    def data_received(self, data: bytes) -> None:
        if self.reader is None or self.transport is None:
            return
        peer = self.transport.get_extra_info("peername")
        host = str(peer[0]) if peer else ""
        for channel, packet in self.reader.feed(data):
            if channel % 2 == 0:  # interleaved RTCP (odd channels) is ignored
                self.source.on_rtp(packet, host, tcp=True)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.tcp and self.transport is not None:
            self.source.media_closed("the device closed the media connection")

    def error_received(self, exc: Exception) -> None:
        pass


class GbSource:
    def __init__(
        self, live: LiveView, device: Device, channel: str, options: SourceOptions
    ) -> None:
        self.live = live
        self.device = device
        self.channel = channel
        self.options = options
        self.transport = live.config.media_transport
        self._device_host = split_address(device.address)[0] if device.address else ""
        self._receiver = PsRtpReceiver(payload_type=None)
        self._ssrc: int | None = None
        self._lock_ssrc = False  # take the first SSRC seen (TCP: only the device can reach us)
        self._sink: PacketSink | None = None
        self._ended: asyncio.Future[str] | None = None
        self._last_media = 0.0
        self._connection: asyncio.BaseTransport | None = None
        self._origin: int | None = None
        self._held: Packet | None = None
        self._info: StreamInfo | None = None
        self.packets = 0
        self.media_port = 0  # our media port (UDP, TCP passive) once open
        self._dialog: Dialog | None = None

    # -- the Source contract -----------------------------------------------------------------
    async def run(self, sink: PacketSink) -> None:
        device, live = self.device, self.live
        if not device.online:
            raise SourceError(f"GB/T 28181 device {device.id} is offline")
        loop = asyncio.get_running_loop()
        self._sink = sink
        self._ended = loop.create_future()
        ssrc = live.new_ssrc()
        server: asyncio.AbstractServer | None = None
        udp: asyncio.BaseTransport | None = None
        dialog: Dialog | None = None
        try:
            host, _ = live.dialer.local(device)
            if self.transport == "udp":
                udp, _ = await loop.create_datagram_endpoint(
                    lambda: _Media(self, tcp=False), local_addr=(live.media_host, 0)
                )
                port = udp.get_extra_info("sockname")[1]
            elif self.transport == "tcp_passive":
                server = await loop.create_server(
                    lambda: _Media(self, tcp=True), live.media_host, 0
                )
                port = server.sockets[0].getsockname()[1]
            else:
                port = 9  # tcp_active: we connect; the port is the device's, in its answer
            self._ssrc, self.media_port = int(ssrc), port
            sdp = offer(live.config.server_id, host, port, ssrc, self.transport)
            live.invites += 1
            try:
                dialog = await live.dialer.invite(
                    device, self.channel, sdp, ssrc, timeout=live.config.invite_timeout
                )
            except SipTimeout as err:
                live.invite_failed += 1
                raise SourceError(f"device {device.id} did not answer INVITE: {err}") from None
            except SipRequestError as err:
                live.invite_failed += 1
                raise SourceError(str(err)) from None
            live.sessions[dialog.call_id] = self
            self._dialog = dialog
            answer = parse_answer(dialog.answer.body)
            if answer.ssrc is not None:
                self._ssrc = answer.ssrc
            elif self.transport != "udp":
                self._lock_ssrc = True
            if self.transport == "tcp_active":
                if not answer.port:
                    raise SourceError(f"device {device.id} answered no media port for TCP")
                self._lock_ssrc = self._lock_ssrc or answer.ssrc is None
                async with asyncio.timeout(self.options.timeout):
                    self._connection, _ = await loop.create_connection(
                        lambda: _Media(self, tcp=True), self._device_host, answer.port
                    )
            await self._pump()
        except OSError as err:
            raise SourceError(f"GB/T 28181 media for {self.channel}: {err}") from None
        finally:
            live.release_ssrc(ssrc)
            if dialog is not None:
                live.sessions.pop(dialog.call_id, None)
                if not dialog.ended:
                    live.bye_later(dialog)
            for transport in (udp, self._connection):
                if transport is not None:
                    transport.close()
            if server is not None:
                server.close()
            live.lost += self._receiver.lost

    async def _pump(self) -> None:
        assert self._ended is not None
        self._last_media = time.monotonic()
        timeout = self.options.timeout
        while True:
            left = self._last_media + timeout - time.monotonic()
            if left <= 0:
                raise SourceError(f"no media from {self.channel} for {timeout:.0f} s")
            done, _ = await asyncio.wait({self._ended}, timeout=left)
            if done:
                reason = self._ended.result()
                log.info("GB/T 28181: %s ended: %s", self.channel, reason)
                if reason.startswith("error:"):
                    raise SourceError(reason[6:])
                return

    # -- session ends ------------------------------------------------------------------------
    def ended_by_device(self) -> None:
        if self._dialog is not None:
            self._dialog.ended = True  # no BYE of ours for it
        self._end("the device sent BYE")

    def media_closed(self, reason: str) -> None:
        self._end(f"error:{reason}")

    def _end(self, reason: str) -> None:
        if self._ended is not None and not self._ended.done():
            self._ended.set_result(reason)

    def accept_connection(self, media: _Media, transport: asyncio.BaseTransport) -> bool:
        """TCP passive: one connection, from the device's address."""
        peer = transport.get_extra_info("peername")
        if self._connection is not None or (peer and str(peer[0]) != self._device_host):
            self.live.strangers += 1
            return False
        self._connection = transport
        return True

    # -- media -------------------------------------------------------------------------------
    def on_rtp(self, data: bytes, host: str, *, tcp: bool) -> None:
        if host != self._device_host:
            self.live.strangers += 1
            return
        packet = parse_rtp(memoryview(data))
        if packet is None:
            return
        if packet.ssrc != self._ssrc:
            if self._lock_ssrc:
                self._ssrc, self._lock_ssrc = packet.ssrc, False
            else:
                self.live.wrong_ssrc += 1
                return
        self._lock_ssrc = False
        self._last_media = time.monotonic()
        self.packets += 1
        for unit in self._receiver.feed(packet):
            if unit.is_video and unit.codec in (Codec.H264, Codec.HEVC):
                self._picture(unit)

    def _picture(self, unit: AccessUnit) -> None:
        sink = self._sink
        if sink is None:
            return
        if self._origin is None:
            self._origin = unit.pts
        packet = Packet(unit.data, unit.pts - self._origin, unit.keyframe, time.time())
        if self._info is not None:
            sink.on_packet(packet)
            return
        # the first picture is held until the frame rate is known (SPS, else the next pts)
        held = self._held
        fps = 0.0
        if held is None:
            self._held = packet
            fps = _sps_fps(unit.codec, packet.data)
            if not fps:
                return
            held = packet
        elif packet.pts > held.pts:
            fps = round(CLOCK_RATE / (packet.pts - held.pts), 3)
        self._info = _info(unit.codec, held, fps)
        sink.on_info(self._info)
        sink.on_packet(held)
        if packet is not held:
            sink.on_packet(packet)
        self._held = None


def _sps_fps(codec: Codec, data: bytes) -> float:
    if codec is not Codec.H264:
        return 0.0
    sps = bitstream.find_sps(codec, data)
    try:
        fps = bitstream.sps_fps(sps) if sps else 0.0
    except ValueError:
        return 0.0
    return fps if 0 < fps <= 240 else 0.0


def _info(codec: Codec, first: Packet, fps: float) -> StreamInfo:
    parameter_sets = bitstream.inband_parameter_sets(codec, first.data)
    width = height = 0
    sps = bitstream.find_sps(codec, first.data)
    if sps:
        with contextlib.suppress(ValueError):
            if codec is Codec.H264:
                width, height = bitstream.sps_dimensions(sps)
            else:
                width, height = bitstream.hevc_sps_dimensions(sps)
    return StreamInfo(codec, width, height, fps, parameter_sets)
