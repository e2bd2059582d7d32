"""The SIP transports of the GB/T 28181 platform: one UDP socket and one TCP listener.

UDP: each datagram is one message; a malformed one is dropped and counted (there is no sure
address to answer). TCP: `SipStreamParser` frames the messages of a connection and answers go
back on the same connection (never to the `Contact`/`Via` a device claims: those are often
private addresses); a malformed stream is answered 400 where possible and the connection is
closed. A message over `MAX_MESSAGE` bytes is refused the same way. Requests go to the
`Registrar`.

`request()` sends a request of ours to a device the way it registered: over UDP to the
address its REGISTER came from (retransmitted on RFC 3261's timers until a response), over
TCP on the connection it registered on. Responses are matched to it by branch and method
(`hub.gb28181.uac.Pending`); a retransmitted 2xx to one of our INVITEs gets its ACK again.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import OrderedDict
from typing import Any, cast

from hub.gb28181.flood import TokenBuckets
from hub.gb28181.service import Registrar
from hub.gb28181.sip import (
    MAX_MESSAGE,
    SipParseError,
    SipRequest,
    SipResponse,
    SipStreamParser,
    parse_message,
    response_to,
)
from hub.gb28181.transaction import T1, retransmit_intervals
from hub.gb28181.uac import Pending, SipRequestError, SipTimeout

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 2000
MAX_ACKS = 256  # ACKs of our INVITEs kept to answer a retransmitted 200


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class SipServer:
    def __init__(self, registrar: Registrar, *, announce: str = "") -> None:
        self.registrar = registrar
        config = registrar.config
        self.registers = TokenBuckets(config.register_rate, config.register_burst)
        self.announce = announce  # the address devices reach us at ("": found per device)
        self.malformed = 0
        self.pending = Pending()
        self._acks: OrderedDict[tuple[str, int], tuple[bytes, str, str]] = OrderedDict()
        self._connections: dict[str, asyncio.StreamWriter] = {}  # TCP peer address → writer
        self._host = ""
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        # TCP connections: their writers (closed at close()) and the handler tasks asyncio
        # starts for them (awaited at close())
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self.udp_port = self.tcp_port = 0

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self), local_addr=(host, port)
        )
        self._udp = transport
        self._host = host
        self.udp_port = transport.get_extra_info("sockname")[1]
        # TCP on the same port (on port 0: the port UDP got, as devices expect one port)
        self._tcp = await asyncio.start_server(self._serve, host, port or self.udp_port)
        self.tcp_port = self._tcp.sockets[0].getsockname()[1]
        log.info("GB/T 28181: SIP on %s:%d (UDP and TCP)", host, self.udp_port)

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for writer in list(self._writers):
            writer.close()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._tcp is not None:
            await self._tcp.wait_closed()

    def answer(self, data: bytes, address: str, transport: str) -> bytes | None:
        """The bytes to send back for one message (None: nothing to send)."""
        try:
            message = parse_message(data)
        except SipParseError as err:
            self.malformed += 1
            log.info("GB/T 28181: malformed SIP from %s: %s", address, err)
            return None
        return self._answer_message(message, address, transport)

    def _answer_message(self, message: Any, address: str, transport: str) -> bytes | None:
        if isinstance(message, SipResponse):
            self._response(message, address, transport)
            return None
        if message.method.upper() == "REGISTER":
            host = split_address(address)[0]
            refused = self.registers.take(host)
            if refused:  # dropped: an answer would only feed the loop
                if refused == 1:
                    log.warning("GB/T 28181: REGISTER flood from %s: dropping them", host)
                return None
        try:
            response = self.registrar.handle(message, address, transport)
        except SipParseError as err:  # a header the registrar needed is malformed
            self.malformed += 1
            try:
                return response_to(message, 400, str(err)[:100]).to_bytes()
            except SipParseError:
                return None
        except Exception:
            log.exception("GB/T 28181: %s from %s failed", message.method, address)
            return response_to(message, 500).to_bytes()
        return response.to_bytes() if response is not None else None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._writers) >= MAX_CONNECTIONS:
            writer.close()
            return
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        self._writers.add(writer)
        peer = writer.get_extra_info("peername")
        address = f"{peer[0]}:{peer[1]}" if peer else ""
        self._connections[address] = writer
        parser = SipStreamParser(MAX_MESSAGE)
        try:
            while data := await reader.read(65536):
                try:
                    messages = parser.feed(data)
                except SipParseError as err:
                    self.malformed += 1
                    log.info("GB/T 28181: malformed SIP stream from %s: %s", address, err)
                    break
                for message in messages:
                    out = self._answer_message(message, address, "tcp")
                    if out is not None:
                        writer.write(out)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            if self._connections.get(address) is writer:
                del self._connections[address]
            writer.close()

    # -- our requests ------------------------------------------------------------------------
    def local(self, address: str, transport: str) -> tuple[str, int]:
        """Our host and port as the device at `address` reaches them (for Via, Contact, SDP)."""
        host = split_address(address)[0]
        if transport == "tcp":
            writer = self._connections.get(address)
            if writer is not None:
                name = writer.get_extra_info("sockname")
                return self.announce or name[0], name[1]
            return self.announce or self._host, self.tcp_port
        if self.announce:
            return self.announce, self.udp_port
        if self._host not in ("", "0.0.0.0", "::"):
            return self._host, self.udp_port
        return local_ip_towards(host), self.udp_port

    def connected(self, address: str) -> bool:
        return address in self._connections

    async def request(
        self, request: SipRequest, address: str, transport: str, *, timeout: float = 64 * T1
    ) -> SipResponse:
        """Send `request` to the device at `address` and return its final response. Raises
        SipTimeout when none comes in `timeout` seconds, SipRequestError when the device's TCP
        connection is gone or the request cannot be sent."""
        tx = self.pending.add(request)
        data = request.to_bytes()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            self._send(data, address, transport)
            intervals = retransmit_intervals(
                invite=request.method == "INVITE", reliable=transport == "tcp"
            )
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise SipTimeout(f"{request.method} to {address}: no response")
                wait = remaining if tx.proceeding else next(intervals, remaining)
                done, _ = await asyncio.wait({tx.final}, timeout=min(wait, remaining))
                if done:
                    return tx.final.result()
                if not tx.proceeding and loop.time() < deadline:
                    self._send(data, address, transport)
        finally:
            self.pending.remove(tx)

    def send_ack(self, ack: SipRequest, address: str, transport: str) -> None:
        """Send the ACK of a 2xx to our INVITE, and keep it for a retransmitted 2xx."""
        data = ack.to_bytes()
        self._acks[(ack.call_id, ack.cseq.number)] = (data, address, transport)
        while len(self._acks) > MAX_ACKS:
            self._acks.popitem(last=False)
        self._send(data, address, transport)

    def send(self, data: bytes, address: str, transport: str) -> None:
        """Bytes to a device, no transaction (ACK, a response we owe)."""
        self._send(data, address, transport)

    def _send(self, data: bytes, address: str, transport: str) -> None:
        if transport == "tcp":
            writer = self._connections.get(address)
            if writer is None or writer.is_closing():
                raise SipRequestError(f"the TCP connection of {address} is closed")
            writer.write(data)
            return
        if self._udp is None or self._udp.is_closing():
            raise SipRequestError("the SIP server is closed")
        self._udp.sendto(data, split_address(address))

    def _response(self, response: SipResponse, address: str, transport: str) -> None:
        try:
            if self.pending.resolve(response):
                return
            cseq = response.cseq
            if cseq.method == "INVITE" and 200 <= response.status < 300:
                sent = self._acks.get((response.call_id, cseq.number))
                if sent is not None:  # our ACK was lost: the device resends its 200
                    self._send(*sent)
        except (SipParseError, SipRequestError) as err:
            log.info("GB/T 28181: response from %s not handled: %s", address, err)


def local_ip_towards(host: str) -> str:
    """The local address the kernel would send from to `host` (no packet is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((host, 9))
            return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, server: SipServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        out = self.server.answer(data, f"{addr[0]}:{addr[1]}", "udp")
        if out is not None and self.transport is not None:
            self.transport.sendto(out, addr)
