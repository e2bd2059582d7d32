"""A process of many WebSocket clients for bench/signaling.py.

    python -m bench.ws_clients --url ws://127.0.0.1:PORT/ws?token=T --count 1250 --user bench-actor

Opens `--count` sockets, prints `READY n` once every one got its first frame, then records for
every text frame its arrival time and payload; the payloads are parsed only when asked for the
report, so that the time a client spends per frame (and so the measured delay) is as small as
Python allows. The WebSocket is spoken directly on an asyncio Protocol (RFC 6455: handshake,
unmasked server frames, masked pong replies to the hub's heartbeat pings), because a full
client library per socket costs more CPU than the server being measured, on the same 2 cores.
On a `report` line on stdin it writes, for every event about `--user`, the delay from the
event's `at` (hub clock = this host's clock) to its arrival (JSON, seconds) to `--out`,
prints `DONE` and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import struct
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit


class WsClient(asyncio.Protocol):
    def __init__(self, host: str, target: str, log: list[tuple[float, bytes]]) -> None:
        self.request = (
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n\r\n"
        ).encode()
        self.log = log
        self.buf = b""
        self.upgraded = False
        self.first = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.first.done():
            self.first.set_exception(ConnectionError(f"closed before the first frame: {exc}"))

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buf = self.buf + data if self.buf else data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.first.set_exception(ConnectionError(buf[:200].decode(errors="replace")))
                assert self.transport is not None
                self.transport.close()
                return
            self.upgraded = True
            buf = buf[end + 4 :]
        pos = 0
        while len(buf) - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            head = 2
            if n == 126:
                if len(buf) - pos < 4:
                    break
                (n,) = struct.unpack_from("!H", buf, pos + 2)
                head = 4
            elif n == 127:
                if len(buf) - pos < 10:
                    break
                (n,) = struct.unpack_from("!Q", buf, pos + 2)
                head = 10
            if len(buf) - pos < head + n:
                break
            payload = buf[pos + head : pos + head + n]
            pos += head + n
            opcode = b0 & 0x0F
            if opcode == 0x1:
                if self.first.done():
                    self.log.append((now, payload))
                else:
                    self.first.set_result(None)
            elif opcode == 0x9:  # ping → pong with the same payload, masked (client frame)
                self._send(0xA, payload)
            elif opcode == 0x8:
                assert self.transport is not None
                self.transport.close()
        self.buf = buf[pos:]

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert self.transport is not None and len(payload) < 126
        self.transport.write(struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + mask + masked)


async def connect(
    host: str, port: int, target: str, log: list[tuple[float, bytes]], gate: asyncio.Semaphore
) -> WsClient:
    loop = asyncio.get_running_loop()
    async with gate:  # connect a few at a time, like terminals coming online
        _t, proto = await loop.create_connection(
            lambda: WsClient(f"{host}:{port}", target, log), host, port
        )
        await asyncio.wait_for(proto.first, 60)
    return proto


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--out", required=True, help="file for the delays (JSON list of seconds)")
    args = p.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    target = url.path + (f"?{url.query}" if url.query else "")
    log: list[tuple[float, bytes]] = []
    gate = asyncio.Semaphore(64)
    clients = await asyncio.gather(
        *(connect(host, port, target, log, gate) for _ in range(args.count))
    )
    print(f"READY {len(clients)}", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() == "report":
            break
    delays = []
    for arrived, payload in log:
        body = json.loads(payload)
        data = body.get("data") or {}
        if body.get("type") == "event" and data.get("user") == args.user:
            delays.append(arrived - body["at"])
    await asyncio.to_thread(Path(args.out).write_text, json.dumps(delays))
    print("DONE", flush=True)
    for c in clients:
        if c.transport is not None:
            c.transport.close()


if __name__ == "__main__":
    asyncio.run(main())
