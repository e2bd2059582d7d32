"""Owner forwarding between hub nodes: one hub for calls, roll calls, cases, rooms, broadcasts,
notices and alerts.

A domain object lives on the node that created it, which claims it in Redis
(`zzhub:owner:<kind>`, see `hub.cluster.service`). With `redis.url` set:

- `owner_proxy` (a middleware, after authentication) looks at every request whose route is
  marked `hub.http.routes.owned(kind, param)` (calls, roll calls, cases, rooms, broadcasts,
  notices and their attachments, alerts). An object this node owns is served here; one
  owned by a live peer is forwarded to that peer — same method, path, query, body and
  `Authorization` — and the peer's status, headers and body are relayed (the body
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
  the list endpoints merge the answers with their own (`hub.http.lists`). Peers
  that did not answer are named in the `X-Zzhub-Nodes-Missing` header (and `nodes_missing` in
  paged bodies) and `X-Zzhub-Partial: 1` / `partial: true` say the list is incomplete.

`ClusterProxy` is the cluster's `hub.core.cluster.ClusterLink`: slices reach all of this
through `app[LINK]` only. Without `redis.url` none of it is set up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from hub.cluster.service import CLUSTER, NETWORK_ERRORS, PREFIX, Cluster, ClusterState, NodeInfo
from hub.core.auth import TOKENS, Principal, TokenIssuer
from hub.core.cluster import FORWARDED, LINK, LOCAL_ONLY, ClusterLink, Gathered
from hub.core.errors import Unavailable
from hub.core.events import EVENTS, Event
from hub.core.state import CONFIG
from hub.http.errors import Handler, error_for_status
from hub.http.routes import owner_of

log = logging.getLogger(__name__)

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
TOKEN_TTL = 60  # seconds: tokens of the requests a node makes as a user


class ClusterProxy(ClusterLink):
    def __init__(
        self,
        cluster: Cluster,
        tokens: TokenIssuer,
        *,
        list_timeout: float = 3.0,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(cluster.node.id, cluster.node.url)
        self.cluster = cluster
        self.tokens = tokens
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

    # -- the ClusterLink interface (hub.core.cluster) --------------------------------------
    def claimer(self) -> Callable[[str, str], None] | None:
        return self.cluster.claim if self.cluster.url is not None else None

    def claim(self, kind: str, item: str, meta: dict[str, object] | None = None) -> None:
        self.cluster.claim(kind, item, meta)

    def claim_many(self, kind: str, items: Iterable[str]) -> None:
        self.cluster.claim_many(kind, items)

    async def next_number(
        self,
        name: str,
        kind: str,
        local_max: int,
        *,
        prefix: str = "",
        digits: int = 0,
        ttl: int = 0,
    ) -> int | None:
        return await self.cluster.next_number(
            name, kind, local_max, prefix=prefix, digits=digits, ttl=ttl
        )

    def status(self) -> dict[str, object]:
        return {"cluster": str(self.cluster.state), "nodes": self.cluster.to_json()["nodes"]}

    def client_json(self) -> dict[str, object]:
        return self.cluster.client_json()

    def admin_json(self) -> dict[str, object]:
        c = self.cluster
        return {
            **c.to_json(),
            "peers": [n.to_json() for n in sorted(c.peers.values(), key=lambda n: n.id)],
            "events": {"sent": c.sent, "received": c.received, "dropped": c.dropped},
            "reconnects": c.reconnects,
            "swept": c.swept,
            "conflicts_total": c.conflicts_total,
        }

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
            raise Unavailable(
                f"the hub cluster is degraded (Redis unreachable): {kind} {item!r} is not "
                "on this node and its owner cannot be looked up; retry shortly",
                "cluster_degraded",
            )
        try:
            node_id = await r.hget(f"{PREFIX}owner:{kind}", item)
        except NETWORK_ERRORS:
            raise Unavailable(
                "the hub cluster is degraded (Redis unreachable)", "cluster_degraded"
            ) from None
        if not isinstance(node_id, str) or node_id == self.cluster.node.id:
            return None
        return self.cluster.peers.get(node_id)

    async def forward(
        self,
        request: web.Request,
        kind: str,
        item: str,
        known_here: Callable[[web.Application, str], bool] | None = None,
    ) -> web.StreamResponse | None:
        """Serve `request` from the node owning `item` of `kind`; None when it is served here:
        owned here, `known_here`, unknown, its node gone, or the request already forwarded."""
        if not self.active or FORWARDED in request.headers:
            return None
        if item in self.cluster.owned[kind] or (known_here and known_here(request.app, item)):
            return None
        node = await self.owner(kind, item)
        if node is None:
            return None  # unknown, or its node is gone: the local answer (404)
        return await self._relay(request, node)

    async def _relay(self, request: web.Request, node: NodeInfo) -> web.StreamResponse:
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
            raise Unavailable(
                f"node {node.id}, which holds this object, did not answer; retry shortly",
                "owner_unreachable",
            ) from None

    async def on_behalf(
        self, who: Principal, kind: str, item: str, path: str, body: dict[str, Any] | None = None
    ) -> Any:
        """A WebSocket request about an object another node owns: POST `path` there as `who`
        (a short-lived token of the same identity) and return its JSON answer; None when the
        object is here or unknown (the caller acts locally). Refusals come back as
        refusals with the owner's status, code and message."""
        if not self.active or item in self.cluster.owned[kind]:
            return None
        node = await self.owner(kind, item)
        if node is None:
            return None
        return await self._post(node, who, path, body)

    def _as(self, who: Principal) -> dict[str, str]:
        """Headers of a request this node makes as `who`: a short-lived token of the same
        identity, marked as forwarded (the peer serves it, never passes it on)."""
        token = self.tokens.issue(who.user, who.role, who.centre, TOKEN_TTL)
        return {"Authorization": f"Bearer {token}", FORWARDED: self.cluster.node.id}

    async def post_to(
        self, node: str, who: Principal, path: str, body: dict[str, Any] | None = None
    ) -> Any:
        """POST `path` on the live node `node` as `who` (see `_post`); `Unavailable` when
        that node is not live."""
        peer = self.cluster.peers.get(node)
        if peer is None:
            raise Unavailable(f"hub node {node} is not live", "node_unavailable")
        return await self._post(peer, who, path, body)

    async def _post(
        self, node: NodeInfo, who: Principal, path: str, body: dict[str, Any] | None = None
    ) -> Any:
        """POST `path` on `node` as `who`; its JSON answer, or the refusal with the node's
        status, code and message (503 `owner_unreachable` when it did not answer)."""
        headers = self._as(who)
        url = node.url.rstrip("/") + path
        self.forwarded += 1
        try:
            async with asyncio.timeout(self._timeout.sock_read or 30.0):
                async with self.session.post(url, json=body or {}, headers=headers) as resp:
                    status, data = resp.status, await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            self.failed += 1
            log.warning("cluster: POST %s to node %s failed: %s", url, node.id, err)
            raise Unavailable(
                f"node {node.id}, which holds this object, did not answer", "owner_unreachable"
            ) from None
        if status >= 400:
            error = data.get("error", {}) if isinstance(data, dict) else {}
            raise error_for_status(status, str(error.get("message", "refused")), error.get("code"))
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
        self, who: Principal, path: str, params: dict[str, str]
    ) -> list[tuple[str, Any]]:
        """GET `path` from every live peer as `who` (local only): the answers, by node id;
        peers that did not answer are left out (counted in `failed`, logged)."""
        if self.cluster.state is not ClusterState.UP or not self.cluster.peers:
            return []
        headers = {**self._as(who), LOCAL_ONLY: "1"}
        answers = await self._fan_out(path, params, headers)
        return [(node.id, a) for node, a in answers if not isinstance(a, BaseException)]

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


@web.middleware
async def owner_proxy(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Requests for an object another node owns (`hub.http.routes.owned`) are served there."""
    proxy = request.app.get(CLUSTER_PROXY)
    found = owner_of(request)
    if proxy is None or found is None:
        return await handler(request)
    mark, item = found
    forwarded = await proxy.forward(request, mark.kind, item, mark.known_here)
    return forwarded if forwarded is not None else await handler(request)


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
    proxy = ClusterProxy(cluster, app[TOKENS], ssl_context=tls)
    app[CLUSTER_PROXY] = proxy
    app[LINK] = proxy
    events = app[EVENTS]
    if proxy.active:
        tapped = events.taps.connect(proxy.tap)
    yield
    if proxy.active:
        tapped.disconnect()
    await proxy.close()


CLUSTER_PROXY = web.AppKey("cluster_proxy", ClusterProxy)
