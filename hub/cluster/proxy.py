"""Owner forwarding between hub nodes: one hub for calls, roll calls, cases, rooms, broadcasts,
notices and alerts.

A domain object lives on the node that created it, which claims it in Redis
(`zzhub:owner:<kind>`, see `hub.cluster.service`). With `redis.url` set:

- `owner_proxy` (a middleware, after authentication) looks at every request for
  `/api/{calls,rollcalls,petitions,rooms,broadcasts,notices,alerts}/{id}[/...]` and
  `/api/notices/attachments/{id}` (kind `notice_attachment`). An object this node owns is
  served here; one owned by a live peer is forwarded to that peer — same method, path, query,
  body and `Authorization` — and the peer's status, headers and body are relayed (the body
  streamed in chunks, never held whole). A forwarded request carries `X-Zzhub-Forwarded: <node>`
  and is never forwarded again. An owner unknown or gone → the request is served here (the
  usual 404). Redis unreachable → `503 cluster_degraded` for an object not known here. A peer
  that does not answer → `503 owner_unreachable` (for a POST the action may or may not have
  happened: read the object again). Room media (publish, WHEP subscriptions, DELETE of their
  `Location`) are plain HTTP and go through too: the SDP answer then carries the owner's ICE
  candidates, so media flows between the browser and the owner node directly.
- `ClusterProxy.on_behalf` does the same for the WebSocket actions of calls and roll calls
  (`call.accept`, `rollcall.answer` …): a terminal connected to node B answers a call that
  lives on node A. `ask_peers` and `post_to` do the same for a node's own requests made as
  a user (a terminal connecting here fetches its queued notices from the other nodes).
- `ClusterProxy.gather` fans a list request out to every live peer (the caller's
  `Authorization`, `X-Zzhub-Local: 1` so the peer answers from its own data, a short timeout);
  the list endpoints merge the answers with their own (`merged_page` for paged lists,
  `merged_list` for the plain lists of live rooms and broadcasts). Peers
  that did not answer are named in the `X-Zzhub-Nodes-Missing` header (and `nodes_missing` in
  paged bodies) and `X-Zzhub-Partial: 1` / `partial: true` say the list is incomplete.

Without `redis.url` none of this runs: the middleware passes every request through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from hub.cluster.service import CLUSTER, NETWORK_ERRORS, PREFIX, Cluster, ClusterState, NodeInfo
from hub.core.auth import TOKENS, Principal
from hub.core.errors import ApiError, Handler
from hub.core.events import EVENTS, Event
from hub.core.state import CONFIG
from hub.rooms.model import ROOMS

log = logging.getLogger(__name__)

FORWARDED = "X-Zzhub-Forwarded"  # on a request one node forwarded to another
LOCAL_ONLY = "X-Zzhub-Local"  # on a list request: this node's own data only
PARTIAL = "X-Zzhub-Partial"
MISSING = "X-Zzhub-Nodes-Missing"
KINDS = {
    "calls": "call",
    "rollcalls": "rollcall",
    "petitions": "petition",
    "rooms": "room",
    "broadcasts": "broadcast",
    "notices": "notice",
    "alerts": "alert",
}
PATH = re.compile(
    r"^/api/(calls|rollcalls|petitions|rooms|broadcasts|notices|alerts)/([^/]+?)(\.csv)?(/.*)?$"
)
ATTACHMENT = re.compile(r"^/api/notices/attachments/([^/]+)$")
# collection paths that look like an object's
NOT_IDS = {
    ("call", "pending"),
    ("rollcall", "pending"),
    ("rollcall", "summary"),
    ("notice", "inbox"),
    ("notice", "attachments"),
    ("notice", "delivered"),
}
SENT_HEADERS = ("Authorization", "Content-Type", "Accept", "Accept-Language", "Range")
HOP_HEADERS = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Transfer-Encoding",
        "Content-Length",
        "Upgrade",
        "TE",
        "Trailer",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Server",
        "Date",
    )
)
CHUNK = 64 * 1024
MAX_DEPTH = 1000  # a merged paged list serves its first 1000 items (page * per_page)
TOKEN_TTL = 60  # seconds: tokens of the requests a node makes as a user


@dataclass
class Gathered:
    """What the peers answered to a fanned-out list request."""

    bodies: list[Any] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # live peers that did not answer
    partial: bool = False  # missing peers, or Redis away (the peers are unknown then)

    def mark(self, resp: web.StreamResponse) -> None:
        if self.partial:
            resp.headers[PARTIAL] = "1"
            resp.headers[MISSING] = ",".join(self.missing)


class ClusterProxy:
    def __init__(
        self,
        cluster: Cluster,
        *,
        list_timeout: float = 3.0,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.cluster = cluster
        self._ssl = ssl_context
        self.list_timeout = list_timeout
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._session: aiohttp.ClientSession | None = None
        self.forwarded = self.failed = 0  # counters: requests forwarded, peers not answering

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # no decompression: bodies are relayed as the peer sent them
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True)
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, timeout=self._timeout
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def active(self) -> bool:
        return self.cluster.state is not ClusterState.OFF

    # -- ownership taps --------------------------------------------------------------------
    def tap(self, event: Event) -> None:
        """Broadcasts are claimed from their own events (broadcasts know no cluster)."""
        if event.origin or event.topic != "broadcast.started":
            return
        item = event.data.get("id")
        if isinstance(item, str) and item not in self.cluster.owned["broadcast"]:
            self.cluster.claim("broadcast", item)

    # -- forwarding ------------------------------------------------------------------------
    async def owner(self, kind: str, item: str) -> NodeInfo | None:
        """The live peer owning `item`; None when it is unknown or its node is gone. Raises
        503 `cluster_degraded` when Redis cannot be asked."""
        r = self.cluster.redis
        if r is None:
            raise ApiError(
                503,
                f"the hub cluster is degraded (Redis unreachable): {kind} {item!r} is not "
                "on this node and its owner cannot be looked up; retry shortly",
                "cluster_degraded",
            )
        try:
            node_id = await r.hget(f"{PREFIX}owner:{kind}", item)
        except NETWORK_ERRORS:
            raise ApiError(
                503, "the hub cluster is degraded (Redis unreachable)", "cluster_degraded"
            ) from None
        if not isinstance(node_id, str) or node_id == self.cluster.node.id:
            return None
        return self.cluster.peers.get(node_id)

    async def forward(self, request: web.Request, node: NodeInfo) -> web.StreamResponse:
        headers = CIMultiDict((h, request.headers[h]) for h in SENT_HEADERS if h in request.headers)
        headers[FORWARDED] = self.cluster.node.id
        if request.remote:
            headers["X-Forwarded-For"] = request.remote
        body = await request.read() if request.body_exists else None
        url = node.url.rstrip("/") + request.raw_path
        self.forwarded += 1
        try:
            upstream_cm = self.session.request(
                request.method, url, data=body, headers=headers, allow_redirects=False
            )
            async with upstream_cm as upstream:
                relayed = CIMultiDict(
                    (k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS
                )
                resp = web.StreamResponse(
                    status=upstream.status, reason=upstream.reason, headers=relayed
                )
                if upstream.content_length is not None:
                    resp.content_length = upstream.content_length
                await resp.prepare(request)
                with contextlib.suppress(aiohttp.ClientError, TimeoutError, ConnectionError):
                    async for chunk in upstream.content.iter_chunked(CHUNK):
                        await resp.write(chunk)
                    await resp.write_eof()
                return resp
        except (aiohttp.ClientError, TimeoutError) as err:
            self.failed += 1
            log.warning("cluster: %s %s to node %s failed: %s", request.method, url, node.id, err)
            raise ApiError(
                503,
                f"node {node.id}, which holds this object, did not answer; retry shortly",
                "owner_unreachable",
            ) from None

    async def on_behalf(
        self,
        app: web.Application,
        who: Principal,
        kind: str,
        item: str,
        path: str,
        body: dict[str, Any] | None = None,
    ) -> Any:
        """A WebSocket request about an object another node owns: POST `path` there as `who`
        (a short-lived token of the same identity) and return its JSON answer; None when the
        object is here or unknown (the caller acts locally). Refusals come back as
        `ApiError`s with the owner's status, code and message."""
        if not self.active or _known_here(app, kind, item):
            return None
        node = await self.owner(kind, item)
        if node is None:
            return None
        return await self.post_to(app, node, who, path, body)

    def _as(self, app: web.Application, who: Principal) -> dict[str, str]:
        """Headers of a request this node makes as `who`: a short-lived token of the same
        identity, marked as forwarded (the peer serves it, never passes it on)."""
        token = app[TOKENS].issue(who.user, who.role, who.centre, TOKEN_TTL)
        return {"Authorization": f"Bearer {token}", FORWARDED: self.cluster.node.id}

    async def post_to(
        self,
        app: web.Application,
        node: NodeInfo,
        who: Principal,
        path: str,
        body: dict[str, Any] | None = None,
    ) -> Any:
        """POST `path` on `node` as `who`; its JSON answer, or an `ApiError` with the node's
        status, code and message (503 `owner_unreachable` when it did not answer)."""
        headers = self._as(app, who)
        url = node.url.rstrip("/") + path
        self.forwarded += 1
        try:
            async with asyncio.timeout(self._timeout.sock_read or 30.0):
                async with self.session.post(url, json=body or {}, headers=headers) as resp:
                    status, data = resp.status, await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            self.failed += 1
            log.warning("cluster: POST %s to node %s failed: %s", url, node.id, err)
            raise ApiError(
                503, f"node {node.id}, which holds this object, did not answer", "owner_unreachable"
            ) from None
        if status >= 400:
            error = data.get("error", {}) if isinstance(data, dict) else {}
            raise ApiError(status, str(error.get("message", "refused")), error.get("code"))
        return data

    # -- merged lists ----------------------------------------------------------------------
    def fans_out(self, request: web.Request) -> bool:
        """Should this list request be merged with the peers' lists?"""
        return self.active and not request.headers.get(LOCAL_ONLY)

    async def gather(self, request: web.Request, query: dict[str, str] | None = None) -> Gathered:
        """GET the same path (query overridden by `query`) from every live peer, local only."""
        if not self.fans_out(request):
            return Gathered()
        if self.cluster.state is not ClusterState.UP:
            return Gathered(partial=True)
        params = {**request.query, **(query or {})}
        headers = {LOCAL_ONLY: "1", FORWARDED: self.cluster.node.id}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        out = Gathered()
        for node, answer in await self._fan_out(request.path, params, headers):
            if isinstance(answer, BaseException):
                out.missing.append(node.id)
            else:
                out.bodies.append(answer)
        out.partial = bool(out.missing)
        return out

    async def ask_peers(
        self, app: web.Application, who: Principal, path: str, params: dict[str, str]
    ) -> list[tuple[NodeInfo, Any]]:
        """GET `path` from every live peer as `who` (local only): the answers, by node; peers
        that did not answer are left out (counted in `failed`, logged)."""
        if self.cluster.state is not ClusterState.UP or not self.cluster.peers:
            return []
        headers = {**self._as(app, who), LOCAL_ONLY: "1"}
        answers = await self._fan_out(path, params, headers)
        return [(node, a) for node, a in answers if not isinstance(a, BaseException)]

    async def _fan_out(
        self, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> list[tuple[NodeInfo, Any]]:
        """GET `path` from every live peer at once (`list_timeout` each): JSON answers, or the
        exception of each peer that did not answer with 200."""
        peers = sorted(self.cluster.peers.values(), key=lambda n: n.id)

        async def ask(node: NodeInfo) -> Any:
            url = node.url.rstrip("/") + path
            async with asyncio.timeout(self.list_timeout):
                async with self.session.get(url, params=params, headers=headers) as resp:
                    if resp.status != 200:
                        raise aiohttp.ClientResponseError(
                            resp.request_info, (), status=resp.status, message=resp.reason or ""
                        )
                    return await resp.json()

        answers = await asyncio.gather(*(ask(n) for n in peers), return_exceptions=True)
        for node, answer in zip(peers, answers, strict=True):
            if isinstance(answer, asyncio.CancelledError):
                raise answer
            if isinstance(answer, BaseException):
                self.failed += 1
                log.info("cluster: node %s did not answer %s: %r", node.id, path, answer)
        return list(zip(peers, answers, strict=True))


def claimer(app: web.Application) -> Callable[[str, str], None] | None:
    """`Cluster.claim` when this node is part of a cluster (domain services take it)."""
    cluster = app.get(CLUSTER)
    return cluster.claim if cluster is not None and cluster.url is not None else None


def proxy_of(request: web.Request) -> ClusterProxy | None:
    proxy = request.app.get(CLUSTER_PROXY)
    return proxy if proxy is not None and proxy.active else None


def max_per_page(request: web.Request, default: int) -> int:
    """A peer asked for a merged list's first `page * per_page` items may serve more."""
    return MAX_DEPTH if request.headers.get(LOCAL_ONLY) else default


async def merged_page(
    request: web.Request,
    page: int,
    per_page: int,
    local: Callable[[int, int], Awaitable[tuple[list[dict[str, Any]], int]]],
    sort_key: Callable[[dict[str, Any]], Any],
) -> web.Response:
    """A paged list (`items`, `page`, `per_page`, `total`) over every live node: each answers
    its first `page * per_page` items, merged, re-sorted, then the page is cut."""
    proxy = proxy_of(request)
    if proxy is None or not proxy.fans_out(request):
        items, total = await local(page, per_page)
        body: dict[str, Any] = {"items": items, "page": page, "per_page": per_page}
        return web.json_response({**body, "total": total, "partial": False, "nodes_missing": []})
    depth = page * per_page
    if depth > MAX_DEPTH:
        raise ApiError(400, f"a hub cluster lists the first {MAX_DEPTH} items (page * per_page)")
    items, total = await local(1, depth)
    gathered = await proxy.gather(request, {"page": "1", "per_page": str(depth)})
    seen = {item.get("id") for item in items}
    for answer in gathered.bodies:
        if not isinstance(answer, dict):
            continue
        total += int(answer.get("total") or 0)
        for item in answer.get("items") or []:
            if isinstance(item, dict) and item.get("id") not in seen:
                seen.add(item.get("id"))
                items.append(item)
    items.sort(key=sort_key)
    resp = web.json_response(
        {
            "items": items[(page - 1) * per_page : depth],
            "page": page,
            "per_page": per_page,
            "total": total,
            "partial": gathered.partial,
            "nodes_missing": gathered.missing,
        }
    )
    gathered.mark(resp)
    return resp


async def merged_list(
    request: web.Request, local: list[dict[str, Any]], key: str | None = "id"
) -> web.Response:
    """A plain JSON list (live rooms, live broadcasts, pending rings) over every live node:
    this node's items, then each peer's (in node order) that no earlier list had (by `key`;
    None: every item, for lists whose items each come from one node only). Peers that did not
    answer: `X-Zzhub-Partial` / `X-Zzhub-Nodes-Missing`."""
    proxy = proxy_of(request)
    if proxy is None or not proxy.fans_out(request):
        return web.json_response(local)
    gathered = await proxy.gather(request)
    resp = web.json_response(_union(local, gathered.bodies, key))
    gathered.mark(resp)
    return resp


async def with_peers(
    app: web.Application, who: Principal, path: str, local: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """`local` and what every live peer answers to `GET path` as `who` from its own objects
    (`merged_list` without a request: the WebSocket `call.pending`, `rollcall.pending`)."""
    proxy = app.get(CLUSTER_PROXY)
    if proxy is None or not proxy.active:
        return local
    answers = await proxy.ask_peers(app, who, path, {})
    return _union(local, [answer for _, answer in answers], None)


def _union(local: list[dict[str, Any]], answers: list[Any], key: str | None) -> list[Any]:
    items = list(local)
    seen = {item.get(key) for item in items} if key else set()
    for answer in answers:
        for item in answer if isinstance(answer, list) else []:
            if not isinstance(item, dict):
                continue
            if key:
                if item.get(key) in seen:
                    continue
                seen.add(item.get(key))
            items.append(item)
    return items


# -- the middleware ------------------------------------------------------------------------
def _target(path: str) -> tuple[str, str] | None:
    m = ATTACHMENT.match(path)
    if m is not None:
        return "notice_attachment", m.group(1)
    m = PATH.match(path)
    if m is None:
        return None
    kind, item = KINDS[m.group(1)], m.group(2)
    return None if (kind, item) in NOT_IDS else (kind, item)


def _known_here(app: web.Application, kind: str, item: str) -> bool:
    if item in app[CLUSTER].owned[kind]:
        return True
    return kind == "room" and app[ROOMS].get(item) is not None  # an ended room


@web.middleware
async def owner_proxy(request: web.Request, handler: Handler) -> web.StreamResponse:
    proxy = proxy_of(request)
    if proxy is None or FORWARDED in request.headers:
        return await handler(request)
    found = _target(request.path)
    if found is None or _known_here(request.app, *found):
        return await handler(request)
    node = await proxy.owner(*found)
    if node is None:
        return await handler(request)  # unknown, or its node is gone: the local answer (404)
    return await proxy.forward(request, node)


def peer_ssl(tls_cert: str) -> ssl.SSLContext | None:
    """With TLS, peers are trusted by the system roots and the `ca.crt` next to this node's
    certificate (`zzhub cert` writes both): the nodes of one hub share that CA."""
    if not tls_cert:
        return None
    context = ssl.create_default_context()
    ca = Path(tls_cert).with_name("ca.crt")
    if ca.is_file():
        context.load_verify_locations(ca)
    return context


async def cluster_proxy_ctx(app: web.Application) -> AsyncIterator[None]:
    """After `cluster_ctx`; the client session is closed at teardown."""
    cluster = app[CLUSTER]
    tls = await asyncio.to_thread(peer_ssl, app[CONFIG].http.tls_cert) if cluster.url else None
    proxy = ClusterProxy(cluster, ssl_context=tls)
    app[CLUSTER_PROXY] = proxy
    events = app[EVENTS]
    if proxy.active:
        events.taps.append(proxy.tap)
    yield
    if proxy.tap in events.taps:
        events.taps.remove(proxy.tap)
    await proxy.close()


CLUSTER_PROXY = web.AppKey("cluster_proxy", ClusterProxy)
