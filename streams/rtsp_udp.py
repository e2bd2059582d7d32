"""RTP/RTCP over UDP for an RTSP session: an even/odd port pair bound to the address of the
control connection, accepting datagrams from the camera's address only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from streams.media import SourceError

DatagramHandler = Callable[[bytes], None]


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, peer_host: str, on_datagram: DatagramHandler) -> None:
        self.peer_host = peer_host
        self.on_datagram = on_datagram
        self.error: Exception | None = None

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if addr[0] != self.peer_host:
            return  # not from the camera
        try:
            self.on_datagram(data)
        except Exception as exc:  # a sink bug: keep it for run() to raise
            self.error = exc

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP port unreachable for our RTCP, for instance: not fatal


class UdpPair:
    """The two sockets; `close()` closes both."""

    def __init__(
        self,
        rtp: asyncio.DatagramTransport,
        rtcp: asyncio.DatagramTransport,
        port: int,
        receivers: tuple[_Receiver, _Receiver],
    ) -> None:
        self.rtp = rtp
        self.rtcp = rtcp
        self.port = port
        self._receivers = receivers

    @property
    def error(self) -> Exception | None:
        return self._receivers[0].error or self._receivers[1].error

    def send_rtcp(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.rtcp.is_closing():
            self.rtcp.sendto(data, addr)

    def close(self) -> None:
        self.rtp.close()
        self.rtcp.close()


async def open_udp_pair(
    local_host: str, peer_host: str, on_rtp: DatagramHandler, on_rtcp: DatagramHandler
) -> UdpPair:
    """Bind RTP on an even port and RTCP on the next one (RFC 3550 §11)."""
    loop = asyncio.get_running_loop()
    rtp_receiver = _Receiver(peer_host, on_rtp)
    rtcp_receiver = _Receiver(peer_host, on_rtcp)
    for _ in range(20):
        rtp, _proto = await loop.create_datagram_endpoint(
            lambda: rtp_receiver, local_addr=(local_host, 0)
        )
        port = int(rtp.get_extra_info("sockname")[1])
        if port % 2 == 0 and port < 65535:
            try:
                rtcp, _proto = await loop.create_datagram_endpoint(
                    lambda: rtcp_receiver, local_addr=(local_host, port + 1)
                )
            except OSError:
                rtp.close()
                continue
            return UdpPair(rtp, rtcp, port, (rtp_receiver, rtcp_receiver))
        rtp.close()
    raise SourceError(f"no free even/odd UDP port pair on {local_host}")
