"""The floor for bench/signaling.py: a bare aiohttp WebSocket server that sends one
pre-encoded frame to every socket in a loop, with no auth, no schema, no scoping.

    python -m bench.ws_baseline --port N      (POST /fire broadcasts one event)
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any

from aiohttp import web

SOCKETS: web.AppKey[set[Any]] = web.AppKey("sockets")  # WebSocketResponses


async def ws_handler(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    await ws.send_str(json.dumps({"type": "hello"}))
    try:
        async for _ in ws:
            pass
    finally:
        request.app[SOCKETS].discard(ws)
    return ws


async def fire(request: web.Request) -> web.Response:
    text = json.dumps({"type": "event", "at": time.time(), "data": {"user": "bench-actor"}})
    sockets: set[Any] = request.app[SOCKETS]
    for ws in list(sockets):
        await ws.send_str(text)
    return web.Response(text="ok")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    app = web.Application()
    app[SOCKETS] = set()
    app.router.add_get("/ws", ws_handler)
    app.router.add_post("/fire", fire)
    print("zzhub listening (baseline)", flush=True)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
