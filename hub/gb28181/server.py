"""The SIP transports of the GB/T 28181 platform: one UDP socket and one TCP listener.

UDP: each datagram is one message; a malformed one is dropped and counted (there is no sure
address to answer). TCP: `SipStreamParser` frames the messages of a connection and answers go
back on the same connection (never to the `Contact`/`Via` a device claims: those are often
private addresses); a malformed stream is answered 400 where possible and the connection is
closed. A message over `MAX_MESSAGE` bytes is refused the same way. Requests go to the
`Registrar`; responses from devices are not expected yet and are ignored.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from hub.gb28181.service import Registrar
from hub.gb28181.sip import (
    MAX_MESSAGE,
    SipParseError,
    SipRequest,
    SipStreamParser,
    parse_message,
    response_to,
)

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 2000


class SipServer:
    def __init__(self, registrar: Registrar) -> None:
        self.registrar = registrar
        self.malformed = 0
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
        if not isinstance(message, SipRequest):
            return None  # responses from devices: the hub sends no requests yet
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
            writer.close()


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
