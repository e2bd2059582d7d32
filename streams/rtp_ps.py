"""PS over RTP, as GB/T 28181 carries it: RTP (payload type 96, 90 kHz) with the program stream
cut at arbitrary byte positions, the marker bit on the last packet of a frame (some devices
never set it: the demuxer then ends a frame at the next pack header).

`PsRtpReceiver` feeds in-order RTP packets to a `PsDemuxer` (a sequence gap is a
discontinuity, the marker ends the frame at once); `ps_to_rtp` cuts one pack into RTP packets.
Over TCP, GB/T 28181 frames RTP with a 2-byte length (RFC 4571); RTSP uses `$`-interleaved
frames (RFC 2326 §10.12). `TcpRtpReader` reads either from a byte stream in chunks of any size.
"""

from __future__ import annotations

import re
import struct

from streams.mpegps import AccessUnit, PsDemuxer
from streams.rtp import RtpPacket, parse_rtp

_RTP_HEADER = struct.Struct("!BBHII")
# where an RFC 4571 frame may start: a length of at least 8, then a version-2 byte
_PLAUSIBLE_4571 = re.compile(rb"(?s)(?:[\x01-\xff][\x00-\xff]|\x00[\x08-\xff])[\x80-\xbf]")


def ps_to_rtp(
    ps: bytes,
    seq: int,
    timestamp: int,
    ssrc: int,
    pt: int = 96,
    mtu: int = 1400,
    marker: bool = True,
) -> list[bytes]:
    """RTP packets of one frame's PS bytes (`mtu` bytes each at most, header included), with
    consecutive sequence numbers from `seq` and the marker on the last one if `marker`."""
    room = mtu - _RTP_HEADER.size
    if room <= 0:
        raise ValueError("mtu too small for an RTP header")
    view = memoryview(ps)
    starts = range(0, max(len(ps), 1), room)
    last = len(starts) - 1
    packets = []
    for index, pos in enumerate(starts):
        second = (pt & 0x7F) | (0x80 if marker and index == last else 0)
        header = _RTP_HEADER.pack(
            0x80, second, (seq + index) & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc & 0xFFFFFFFF
        )
        packets.append(header + view[pos : pos + room])
    return packets


class PsRtpSender:
    """`ps_to_rtp` with the sequence number kept between frames."""

    def __init__(self, ssrc: int, pt: int = 96, mtu: int = 1400, seq: int = 0) -> None:
        self.ssrc, self.pt, self.mtu, self.seq = ssrc, pt, mtu, seq & 0xFFFF
        self.packets = 0

    def packetize(self, ps: bytes, timestamp: int) -> list[bytes]:
        out = ps_to_rtp(ps, self.seq, timestamp, self.ssrc, self.pt, self.mtu)
        self.seq = (self.seq + len(out)) & 0xFFFF
        self.packets += len(out)
        return out


def frame_rfc4571(packet: bytes) -> bytes:
    """One RTP packet framed for TCP (RFC 4571): 2-byte big-endian length, then the packet."""
    if len(packet) > 0xFFFF:
        raise ValueError("RTP packet longer than 65535 bytes")
    return len(packet).to_bytes(2, "big") + packet


def frame_interleaved(channel: int, packet: bytes) -> bytes:
    """One RTP packet as an RTSP interleaved frame: '$', channel, 2-byte length, packet."""
    if len(packet) > 0xFFFF:
        raise ValueError("RTP packet longer than 65535 bytes")
    return bytes((0x24, channel & 0xFF)) + len(packet).to_bytes(2, "big") + packet


class TcpRtpReader:
    """RTP packets out of a TCP byte stream: `framing` is "rfc4571", "interleaved" or "auto"
    (decided by the first byte: '$' is interleaved). `feed()` returns (channel, packet) pairs;
    RFC 4571 packets are on channel 0. Garbage is skipped and counted, never raised."""

    def __init__(self, framing: str = "auto") -> None:
        if framing not in ("auto", "rfc4571", "interleaved"):
            raise ValueError(f"unknown RTP-over-TCP framing {framing!r}")
        self.framing = framing
        self._buf = bytearray()
        self.packets = 0
        self.errors = 0  # frames that did not hold RTP, or garbage between frames
        self.skipped = 0  # bytes thrown away finding the next frame

    def feed(self, data: bytes | bytearray | memoryview) -> list[tuple[int, bytes]]:
        buf = self._buf
        buf += data
        if self.framing == "auto" and buf:
            self.framing = "interleaved" if buf[0] == 0x24 else "rfc4571"
        interleaved = self.framing == "interleaved"
        head = 4 if interleaved else 2
        out: list[tuple[int, bytes]] = []
        pos, size = 0, len(buf)
        while size - pos >= head:
            if interleaved and buf[pos] != 0x24:
                pos = self._skip(pos, buf.find(b"$", pos + 1))
                continue
            length = (buf[pos + head - 2] << 8) | buf[pos + head - 1]
            first = buf[pos + head] if size > pos + head else 0x80
            if length < 8 or first >> 6 != 2:  # not RTP nor RTCP (8 bytes at least)
                if interleaved:
                    pos = self._skip(pos, buf.find(b"$", pos + 1))
                else:
                    found = _PLAUSIBLE_4571.search(buf, pos + 1)
                    pos = self._skip(pos, found.start() if found else -1)
                continue
            end = pos + head + length
            if end > size:
                break
            out.append((buf[pos + 1] if interleaved else 0, bytes(buf[pos + head : end])))
            pos = end
        self.packets += len(out)
        del buf[:pos]
        return out

    def _skip(self, pos: int, found: int) -> int:
        end = found if found >= 0 else len(self._buf)
        self.errors += 1
        self.skipped += end - pos
        return end


class PsRtpReceiver:
    """In-order RTP packets of one PS stream in, access units out.

    A sequence gap tells the demuxer bytes were lost; the marker bit ends the frame at once.
    Packets of another payload type than `payload_type` (when given) are ignored."""

    def __init__(self, demuxer: PsDemuxer | None = None, payload_type: int | None = None) -> None:
        self.demuxer = demuxer if demuxer is not None else PsDemuxer()
        self.payload_type = payload_type
        self._next_seq = -1
        self.packets = 0
        self.lost = 0
        self.invalid = 0  # datagrams that were not RTP, or of another payload type

    def feed_datagram(self, data: bytes | memoryview) -> list[AccessUnit]:
        packet = parse_rtp(memoryview(data))
        if packet is None:
            self.invalid += 1
            return []
        return self.feed(packet)

    def feed(self, packet: RtpPacket) -> list[AccessUnit]:
        if self.payload_type is not None and packet.payload_type != self.payload_type:
            self.invalid += 1
            return []
        self.packets += 1
        demuxer = self.demuxer
        if self._next_seq >= 0 and packet.seq != self._next_seq:
            missing = (packet.seq - self._next_seq) & 0xFFFF
            if missing >= 0x8000:  # late or duplicate: already given up
                return []
            self.lost += missing
            demuxer.discontinuity()
        self._next_seq = (packet.seq + 1) & 0xFFFF
        out = demuxer.feed(packet.payload)
        if packet.marker:
            out += demuxer.end_of_frame()
        return out
