"""The WebSocket `/ws`: events pushed live, requests answered, every frame validated.

Envelope (protocol version 1, see docs/protocol.md):
    client → hub   {"v": 1, "id": "c7", "type": "presence.set", "data": {...}}
    hub → client   {"v": 1, "type": "reply", "re": "c7", "data": {...}}
                   {"v": 1, "type": "error", "re": "c7", "error": {"code", "message"}}
                   {"v": 1, "type": "event", "topic": "presence", "centre", "seq", "at", "data"}
Each request type has a pydantic model (unknown fields are errors). Limits: frames over
`MAX_FRAME` close the socket (1009); more than `RATE` requests a second (burst `BURST`) get
`rate_limited` errors, and a client that keeps flooding is closed (1008). A handler's failure
becomes an `internal` error reply; nothing a client sends can stop the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.core.auth import Principal, principal
from hub.core.cluster import link_of
from hub.core.errors import (
    HubError,
    Invalid,
)
from hub.core.events import EVENTS, Event, EventBus
from hub.core.presence import PRESENCE, Presence, Status
from hub.http.request import check_json
from streams.hooks import Hook
from streams.tasks import TaskSet

log = logging.getLogger(__name__)

PROTOCOL = 1
MAX_FRAME = 64 * 1024
RATE = 20.0  # requests per second, sustained
BURST = 40.0
FLOOD_CLOSE = 200  # rate-limited requests before the socket is closed
ENCODED_CACHE = 256  # events kept encoded for the pumps that have not sent them yet
# an event is written straight to a socket while less than this is waiting in its send buffer;
# above it, events queue for the socket's own task, which waits for the buffer to drain
DIRECT_HIGH_WATER = 64 * 1024


class WsError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")
    v: Literal[1]
    id: str | None = Field(None, max_length=64)
    type: str = Field(min_length=1, max_length=64)
    data: dict[str, Any] = {}


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Empty(Request):
    pass


class PresenceSet(Request):
    status: Literal["online", "busy"]


class TopicFilter(Request):
    topics: list[str] = Field(default=[], max_length=64)  # empty: every topic


@dataclass(eq=False)
class WsClient:
    principal: Principal
    ws: web.WebSocketResponse
    topics: frozenset[str] = frozenset()
    tokens: float = BURST
    refilled: float = 0.0
    limited: int = 0
    transport: asyncio.Transport | None = None  # for direct event writes (see `direct`)
    router: WsRouter | None = None
    lagged_told: int = 0  # the subscription's `lagged` count this client was last told

    def direct(self, event: Event, lagged: int) -> bool:
        """Write an event to the socket now, without waking this client's task: one
        pre-framed buffer shared by every socket, one `write` each. False when it must queue
        instead (slow socket, closing, a `lagged` notice pending)."""
        if self.topics and event.topic not in self.topics:
            return True
        t = self.transport
        if (
            t is None
            or self.router is None
            or lagged != self.lagged_told
            or self.ws.closed
            or t.is_closing()
            or t.get_write_buffer_size() > DIRECT_HIGH_WATER
        ):
            return False
        t.write(self.router.frame(event))
        return True

    async def send(self, message: dict[str, Any]) -> None:
        if not self.ws.closed:
            await self.ws.send_json({"v": PROTOCOL, **message}, dumps=_dumps)

    async def send_text(self, text: str) -> None:
        if not self.ws.closed:
            await self.ws.send_str(text)

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(BURST, self.tokens + (now - self.refilled) * RATE)
        self.refilled = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.limited += 1
        return False


def _dumps(obj: Any) -> str:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # text that is not Unicode (a lone surrogate): escape it
        text = json.dumps(obj, separators=(",", ":"))
    return text


Handler = Callable[[WsClient, Any], Awaitable[dict[str, Any] | list[Any] | None]]


class WsRouter:
    """Request types and their handlers; other modules (calls, rooms…) register theirs."""

    def __init__(self) -> None:
        self._routes: dict[str, tuple[type[Request], Handler]] = {}
        self.clients: set[WsClient] = set()
        # an event goes to thousands of sockets: encode it once (the newest few, by sequence)
        self._encoded: OrderedDict[tuple[str, int], str] = OrderedDict()
        self._frames: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        # after the hello: async listeners, awaited in turn (a notice queue pushes its backlog);
        # a failure is logged
        self.on_connect: Hook[[WsClient]] = Hook("websocket connected")
        self._closing = TaskSet("websocket closes", log)

    def encoded(self, event: Event) -> str:
        key = (getattr(event, "origin", ""), event.seq)
        text = self._encoded.get(key)
        if text is None:
            text = _dumps({"v": PROTOCOL, **event.to_json()})
            self._encoded[key] = text
            if len(self._encoded) > ENCODED_CACHE:
                self._encoded.popitem(last=False)
        return text

    def frame(self, event: Event) -> bytes:
        """The event as one complete, unmasked, uncompressed WebSocket text frame (RFC 6455
        §5.2): a server's frames are the same bytes for every socket."""
        key = (getattr(event, "origin", ""), event.seq)
        frame = self._frames.get(key)
        if frame is None:
            payload = self.encoded(event).encode()
            n = len(payload)
            if n < 126:
                header = struct.pack("!BB", 0x81, n)
            elif n < 65536:
                header = struct.pack("!BBH", 0x81, 126, n)
            else:
                header = struct.pack("!BBQ", 0x81, 127, n)
            frame = header + payload
            self._frames[key] = frame
            if len(self._frames) > ENCODED_CACHE:
                self._frames.popitem(last=False)
        return frame

    def register(self, type_: str, model: type[Request], handler: Handler) -> None:
        if type_ in self._routes:
            raise ValueError(f"WebSocket type {type_!r} registered twice")
        self._routes[type_] = (model, handler)

    def types(self) -> list[str]:
        return sorted(self._routes)

    async def dispatch(self, client: WsClient, raw: str) -> None:
        try:
            decoded = json.loads(raw)
        except (ValueError, RecursionError):
            await client.send(_error(None, "bad_json", "frame is not valid JSON"))
            return
        re = decoded.get("id") if isinstance(decoded, dict) else None
        re = re if isinstance(re, str) and len(re) <= 64 and re.isprintable() else None
        try:
            check_json(decoded, "frame")
        except Invalid as err:
            await client.send(_error(re, "bad_message", err.message))
            return
        try:
            envelope = Envelope.model_validate(decoded)
        except ValidationError as err:
            await client.send(_error(re, "bad_message", _describe(err)))
            return
        route = self._routes.get(envelope.type)
        if route is None:
            await client.send(
                _error(envelope.id, "unknown_type", f"unknown message type {envelope.type!r}")
            )
            return
        model, handler = route
        try:
            request = model.model_validate(envelope.data)
        except ValidationError as err:
            await client.send(_error(envelope.id, "bad_data", _describe(err, "data")))
            return
        try:
            result = await handler(client, request)
        except (WsError, HubError) as err:  # a refusal: the same code and message as over HTTP
            await client.send(_error(envelope.id, err.code, err.message))
            return
        except Exception:
            log.exception("ws handler %s failed", envelope.type)
            await client.send(_error(envelope.id, "internal", "internal error"))
            return
        await client.send({"type": "reply", "re": envelope.id, "data": result})

    def sign_out(self, user: str) -> None:
        """Close every socket of `user` now: its tokens were signed out (it reconnects, is
        refused, and signs in again)."""
        for client in [c for c in self.clients if c.principal.user == user]:
            close = client.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"signed out")
            self._closing.spawn(close, cancellable=False)

    async def close_all(self) -> None:
        for client in list(self.clients):
            await client.ws.close(code=WSCloseCode.GOING_AWAY, message=b"hub shutting down")
        await self._closing.close()


def _error(re: str | None, code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "re": re, "error": {"code": code, "message": message}}


def _describe(err: ValidationError, prefix: str = "") -> str:
    parts = []
    for e in err.errors()[:5]:
        loc = ".".join(str(p) for p in (prefix, *e["loc"]) if p != "")
        msg = "unknown field" if e["type"] == "extra_forbidden" else e["msg"]
        parts.append(f"{loc or '(message)'}: {msg}")
    return "; ".join(parts)


async def _pump_events(client: WsClient, bus: EventBus, router: WsRouter) -> None:
    p = client.principal
    sub = bus.subscribe(p.user, p.centre)
    sub.direct = lambda event: client.direct(event, sub.lagged)
    try:
        while True:
            event = await sub.get()
            if sub.lagged != client.lagged_told:
                client.lagged_told = sub.lagged
                await client.send({"type": "lagged", "data": {"dropped": sub.lagged}})
            if client.topics and event.topic not in client.topics:
                continue
            await client.send_text(router.encoded(event))
    finally:
        sub.close()


async def ws_handler(request: web.Request) -> web.StreamResponse:
    p = principal(request)
    app = request.app
    router = app[WS]
    presence = app[PRESENCE]
    # no permessage-deflate: an event is framed once and the same bytes go to every socket
    # (compression would mean one zlib pass per socket per event)
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=MAX_FRAME, compress=False)
    await ws.prepare(request)
    client = WsClient(p, ws, refilled=time.monotonic(), transport=request.transport, router=router)
    router.clients.add(client)
    presence.connect(p.user, p.role, p.centre)
    pump = asyncio.create_task(_pump_events(client, app[EVENTS], router))
    try:
        await client.send(
            {
                "type": "hello",
                "data": {
                    "protocol": PROTOCOL,
                    "user": p.user,
                    "role": str(p.role),
                    "centre": p.centre,
                    "server_time": time.time(),
                    "types": router.types(),
                    # scale-out: this node, the cluster state and the live nodes with their
                    # URLs (the console's fallback when this node stays unreachable)
                    "cluster": link_of(app).client_json(),
                },
            }
        )
        for work in router.on_connect.emit(client):
            try:
                await work
            except Exception:
                log.exception("ws on_connect hook failed for %s", p.user)
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                if not client.allow():
                    if client.limited >= FLOOD_CLOSE:
                        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"flooding")
                        break
                    await client.send(_error(None, "rate_limited", f"over {RATE:.0f} messages/s"))
                    continue
                await router.dispatch(client, msg.data)
            elif msg.type is WSMsgType.BINARY:
                await client.send(_error(None, "bad_frame", "binary frames are not accepted"))
            elif msg.type is WSMsgType.ERROR:
                log.info("ws %s: %s", p.user, ws.exception())
                break
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
        router.clients.discard(client)
        presence.disconnect(p.user)
    return ws


def register_builtin(router: WsRouter, presence: Presence) -> None:
    async def ping(client: WsClient, _: Empty) -> dict[str, Any]:
        return {"server_time": time.time()}

    async def presence_list(client: WsClient, _: Empty) -> list[Any]:
        return [m.to_json() for m in presence.online(client.principal.centre)]

    async def presence_set(client: WsClient, req: PresenceSet) -> dict[str, Any]:
        presence.set_status(client.principal.user, Status(req.status))
        return {"status": req.status}

    async def topics(client: WsClient, req: TopicFilter) -> dict[str, Any]:
        client.topics = frozenset(req.topics)
        return {"topics": sorted(client.topics)}

    router.register("ping", Empty, ping)
    router.register("presence.list", Empty, presence_list)
    router.register("presence.set", PresenceSet, presence_set)
    router.register("events.filter", TopicFilter, topics)


WS = web.AppKey("ws", WsRouter)


class NoData(Request):
    """A request that carries no data (`call.pending`, `rollcall.pending`)."""
