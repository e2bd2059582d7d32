"""A process of many WebSocket clients for bench/signaling.py.

    python -m bench.ws_clients --url ws://127.0.0.1:PORT/ws?token=T --count 1250 --user bench-actor

Opens `--count` sockets, prints `READY n` once every one got its first frame, then records for
every event about `--user` the delay from the event's `at` (hub clock = this host's clock) to
its arrival. On a `report` line on stdin it writes the delays (JSON) to `--out`, prints
`DONE` and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path

import aiohttp


async def client(
    http: aiohttp.ClientSession,
    url: str,
    user: str,
    delays: list[float],
    gate: asyncio.Semaphore,
    connected: list[int],
    ready: asyncio.Event,
    count: int,
) -> None:
    async with gate:  # connect a few at a time, like terminals coming online
        ws = await http.ws_connect(url, heartbeat=None, max_msg_size=0)
        first = await ws.receive()
    if first.type is not aiohttp.WSMsgType.TEXT:
        return
    connected[0] += 1
    if connected[0] == count:
        ready.set()
    async with ws:
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            now = time.time()
            body = json.loads(msg.data)
            data = body.get("data") or {}
            if body.get("type") == "event" and data.get("user") == user:
                delays.append(now - body["at"])


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--out", required=True, help="file for the delays (JSON list of seconds)")
    args = p.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    delays: list[float] = []
    ready = asyncio.Event()
    connected = [0]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        gate = asyncio.Semaphore(64)
        tasks = [
            asyncio.create_task(
                client(http, args.url, args.user, delays, gate, connected, ready, args.count)
            )
            for _ in range(args.count)
        ]
        await asyncio.wait_for(ready.wait(), 120)
        print(f"READY {connected[0]}", flush=True)
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line or line.strip() == "report":
                break
        await asyncio.to_thread(Path(args.out).write_text, json.dumps(delays))
        print("DONE", flush=True)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
