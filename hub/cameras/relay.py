"""The hub-to-hub relay leg, serving side: `GET /api/cameras/{camera}/relay`.

Another hub node pulls one of this node's cameras as a stream of the camera's own encoded
packets (no decoding, no re-encoding) and serves all of its viewers from its own Relay, so
node B's viewers of a camera owned by node A cost node A one consumer, whatever their number.
The pulling side is `streams/hubrelay.py` (URL scheme `hubrelay://`).

The wire format is defined next to its reader, in streams/hubrelay.py.
"""

from __future__ import annotations

from aiohttp import web

from config.schema import Role
from hub.cameras.service import CAMERAS
from hub.core.auth import principal
from hub.core.state import CONFIG
from streams.hubrelay import CONTENT_TYPE, encode_info, encode_packet
from streams.relay import RelayClosed
from streams.stream import StreamState


async def relay_leg(request: web.Request) -> web.StreamResponse:
    p = principal(request)
    cam = request.app[CAMERAS].visible(request.match_info["camera"], p)
    if p.role is not Role.ADMIN:  # hub nodes authenticate with an admin token
        raise web.HTTPForbidden(text="the relay leg is for hub nodes (admin token)")
    cfg = request.app[CONFIG]
    stream = cam.stream
    holder = f"hubrelay:{p.user}"
    with stream.acquire(holder, viewer=True):
        if stream.relay.info is None:
            try:
                await stream.wait_state(StreamState.ONLINE, timeout=cfg.streams.connect_timeout)
            except TimeoutError:
                raise web.HTTPServiceUnavailable(text=f"camera {cam.id} is offline") from None
        consumer = stream.relay.subscribe(holder, maxsize=cfg.streams.queue_packets)
        try:
            resp = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE})
            await resp.prepare(request)
            info = stream.relay.info
            if info is not None:
                await resp.write(encode_info(info))
            async for packet in consumer:
                if stream.relay.info is not info and stream.relay.info is not None:
                    info = stream.relay.info
                    await resp.write(encode_info(info))
                await resp.write(encode_packet(packet))
        except (ConnectionResetError, RelayClosed):
            pass
        finally:
            consumer.close()
    return resp


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/cameras/{camera}/relay", relay_leg)
