"""What the slices may ask of a hub cluster, and the single-node answers.

A slice never imports `hub.cluster`. It asks `app[LINK]` (a `ClusterLink`) instead:

- ownership: `claimer()` is the callable a service calls when it creates an object (None on a
  single node: nothing to claim), `claim_many` re-claims what a store holds at start;
- counters: `next_number` hands out the next number of a named sequence shared by every node
  (case codes, alert ids), None when there is no shared counter (one node, or Redis away): the
  caller then numbers from its own store;
- merged lists: `fans_out` says whether a list request should be merged with the other nodes'
  lists, `gather` asks them (see `hub.http.lists` for the paged and plain merges);
- requests on behalf of a user: `on_behalf` (a WebSocket action about an object another node
  owns), `ask_peers` (GET the same list from every other node), `post_to` (one node);
- forwarding: `forward` serves a request for an object another node owns from that node, or
  returns None when it is here (routes declare what they own with `hub.http.routes.owned`).

This module's `ClusterLink` is the single-node implementation: no peers, nothing forwarded,
no shared counters. With `redis.url` set the cluster add-on (`hub/cluster/`) puts its own
implementation under the same key.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from config.schema import HubConfig
from hub.core.auth import Principal

Claim = Callable[[str, str], None]

FORWARDED = "X-Zzhub-Forwarded"  # on a request one node forwarded to another
LOCAL_ONLY = "X-Zzhub-Local"  # on a list request: this node's own data only
PARTIAL = "X-Zzhub-Partial"
MISSING = "X-Zzhub-Nodes-Missing"


@dataclass
class Gathered:
    """What the other nodes answered to a fanned-out list request."""

    bodies: list[Any] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # live nodes that did not answer
    partial: bool = False  # missing nodes, or Redis away (the nodes are unknown then)


def node_identity(config: HubConfig) -> tuple[str, str]:
    """This node's id (`redis.node_id`, else HOSTNAME-PORT) and the base URL other nodes use
    (`redis.advertise_url`, else this machine's name and the HTTP port)."""
    http = config.http
    scheme = "https" if http.tls_cert else "http"
    host = socket.gethostname() if http.host in ("0.0.0.0", "::", "") else http.host
    node = config.redis.node_id or f"{socket.gethostname()}-{http.port}"
    return node, config.redis.advertise_url or f"{scheme}://{host}:{http.port}"


class ClusterLink:
    """One hub node on its own."""

    def __init__(self, node_id: str = "", url: str = "") -> None:
        self._node_id, self._url = node_id, url

    @classmethod
    def single(cls, config: HubConfig) -> ClusterLink:
        return cls(*node_identity(config))

    @property
    def active(self) -> bool:
        return False

    @property
    def node_id(self) -> str:
        return self._node_id

    def claimer(self) -> Claim | None:
        return None

    def claim(self, kind: str, item: str, meta: dict[str, object] | None = None) -> None:
        return None

    def claim_many(self, kind: str, items: Iterable[str]) -> None:
        return None

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
        return None

    def fans_out(self, request: web.Request) -> bool:
        return False

    async def gather(self, request: web.Request, query: dict[str, str] | None = None) -> Gathered:
        return Gathered()

    async def on_behalf(
        self, who: Principal, kind: str, item: str, path: str, body: dict[str, Any] | None = None
    ) -> Any:
        return None

    async def ask_peers(
        self, who: Principal, path: str, params: dict[str, str]
    ) -> list[tuple[str, Any]]:
        return []

    async def post_to(
        self, node: str, who: Principal, path: str, body: dict[str, Any] | None = None
    ) -> Any:
        return None

    async def forward(
        self,
        request: web.Request,
        kind: str,
        item: str,
        known_here: Callable[[web.Application, str], bool] | None = None,
    ) -> web.StreamResponse | None:
        return None

    def status(self) -> dict[str, object]:
        """`/api/health`'s view: the cluster state ("off": no `redis.url`) and its live nodes."""
        return {"cluster": "off", "nodes": []}

    def client_json(self) -> dict[str, object]:
        """What a console learns at connect (WebSocket `hello`): this node, the state and the
        live nodes with their URLs, to fall back on when this node stays unreachable."""
        return {"state": "off", "node": self._node_id, "url": self._url, "nodes": []}

    def admin_json(self) -> dict[str, object]:
        """`GET /api/cluster`: state, live nodes, counters, conflicting ids."""
        return {
            "state": "off",
            "node": self._node_id,
            "nodes": [],
            "conflicts": [],
            "peers": [],
            "events": {"sent": 0, "received": 0, "dropped": 0},
            "reconnects": 0,
            "swept": 0,
            "conflicts_total": 0,
        }


LINK = web.AppKey("cluster_link", ClusterLink)


class SharedCounter:
    """One numbered sequence for the whole hub: case codes (one sequence per village and day)
    and alert ids use it alike. `name` and `prefix` are templates filled from the fields of
    each call; the id of number n is `prefix` + n zero-padded to `digits`, and ids claimed
    as `kind` are skipped. None when the link has no shared counter (a single node, or
    Redis away): the caller numbers from its own store then."""

    def __init__(
        self,
        link: ClusterLink,
        kind: str,
        name: str,
        *,
        prefix: str = "",
        digits: int = 0,
        ttl: int = 0,
    ) -> None:
        self.link, self.kind, self.name = link, kind, name
        self.prefix, self.digits, self.ttl = prefix, digits, ttl

    async def next(self, local_max: int, **fields: str) -> int | None:
        return await self.link.next_number(
            self.name.format(**fields),
            self.kind,
            local_max,
            prefix=self.prefix.format(**fields),
            digits=self.digits,
            ttl=self.ttl,
        )


def link_of(app: web.Application) -> ClusterLink:
    """`app[LINK]`, or a single-node link for an app built without one (unit tests)."""
    return app.get(LINK) or ClusterLink()
