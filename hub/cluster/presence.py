"""Cluster presence: who is connected to the other hub nodes, so the hub rings them all.

Each node keeps its own connected members in the Redis hash `zzhub:presence:<node>`
(user → the member's JSON, as in the `presence` event), written on every change of its own
presence and rewritten whole each time it (re)joins the cluster (`cluster.state` up). The other
nodes learn from three sources:
- the `presence` events the cluster already forwards (their `origin` is the node);
- a `presence.snapshot` message a node sends when it (re)joins: its whole list, riding the
  event bus addressed to nobody (`to_users={NOBODY}`), so no WebSocket client receives it;
- a read of every live peer's hash when this node (re)joins, and of a node's hash when it is
  announced up (`cluster.node` up) — in case its snapshot was sent before this node listened.
A node's members vanish when it is announced down (`cluster.node` down) and every remote
member vanishes while this node's Redis link is down (`cluster.state` degraded): events cannot
reach them then, so nobody rings them in vain.

`ClusterPresence` is the `RemoteMembers` directory of `hub.core.presence.Presence`: with it,
`Presence.get/online/online_in` answer for the whole hub. Its one worker task (writes and
reads in order) is owned here and awaited by `close()`; pending work is coalesced per user
(bounded by the number of users), never queued without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from config.schema import Role
from hub.cluster.service import NETWORK_ERRORS, PREFIX, Cluster
from hub.core.events import Event, EventBus
from hub.core.presence import Member, Presence, Status

log = logging.getLogger(__name__)

NOBODY = "zzhub:node"  # no user has this name: events addressed to it reach nodes only
SNAPSHOT = "presence.snapshot"


def presence_key(node: str) -> str:
    return f"{PREFIX}presence:{node}"


def _member(data: dict[str, Any], node: str) -> Member | None:
    try:
        member = Member(
            str(data["user"]),
            Role(data["role"]),
            str(data["centre"]),
            connections=1,
            status=Status(data["status"]),
            since=float(data.get("since") or 0.0),
            duty=bool(data.get("duty")),
            node=node,
        )
    except (KeyError, ValueError, TypeError):
        return None
    return None if member.status is Status.OFFLINE else member


class ClusterPresence:
    def __init__(self, cluster: Cluster, presence: Presence, events: EventBus) -> None:
        self.cluster = cluster
        self.presence = presence
        self.events = events
        self.node = cluster.node.id
        self._remote: dict[str, dict[str, Member]] = {}  # node → user → member
        self._writes: dict[str, str | None] = {}  # own user → JSON (None: remove)
        self._rewrite = False  # rewrite the own hash whole
        self._reads: set[str] = set()  # nodes whose hash to read
        self._reading: dict[str, set[str]] = {}  # node → users changed by events meanwhile
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- RemoteMembers ---------------------------------------------------------------------
    def get(self, user: str) -> Member | None:
        for members in self._remote.values():
            if user in members:
                return members[user]
        return None

    def members(self) -> list[Member]:
        seen: dict[str, Member] = {}
        for node in sorted(self._remote):
            for user, member in self._remote[node].items():
                seen.setdefault(user, member)
        return list(seen.values())

    def nodes(self) -> dict[str, int]:
        """How many members each other node has connected (for tests and health)."""
        return {node: len(members) for node, members in sorted(self._remote.items())}

    # -- lifetime --------------------------------------------------------------------------
    def start(self) -> None:
        if self.cluster.url is None:
            return
        self.presence.remote = self
        self._tapped = self.events.taps.connect(self._tap)
        self._task = asyncio.get_running_loop().create_task(self._run())
        if self.cluster.redis is not None:  # it joined before this tap listened
            self._rewrite = True
            self._read(*self.cluster.peers)

    async def close(self) -> None:
        self._tapped.disconnect()
        if self.presence.remote is self:
            self.presence.remote = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        r = self.cluster.redis
        if r is not None:  # a graceful stop: peers need not wait for `cluster.node` down
            with contextlib.suppress(*NETWORK_ERRORS):
                await r.delete(presence_key(self.node))

    # -- events ----------------------------------------------------------------------------
    def _tap(self, event: Event) -> None:
        topic, data = event.topic, event.data
        if topic == "presence":
            if event.origin:
                self._remote_change(event.origin, data)
            elif isinstance(data.get("user"), str):
                offline = data.get("status") == str(Status.OFFLINE)
                self._writes[data["user"]] = None if offline else json.dumps(data)
                self._wake.set()
        elif topic == SNAPSHOT and event.origin:
            members = data.get("members")
            if isinstance(members, list):
                self._apply(event.origin, members)
        elif topic == "cluster.node" and isinstance(data.get("node"), str):
            if data.get("state") == "down":
                gone = self._remote.pop(data["node"], {})
                if gone:
                    log.info("cluster presence: %d member(s) of %s gone", len(gone), data["node"])
            elif data.get("state") == "up":
                self._read(data["node"])
        elif topic == "cluster.state" and not event.origin:
            if data.get("state") == "up":
                self._rewrite = True
                self._read(*self.cluster.peers)
            elif data.get("state") == "degraded":
                self._remote.clear()

    def _remote_change(self, node: str, data: dict[str, Any]) -> None:
        user = data.get("user")
        if not isinstance(user, str):
            return
        if node in self._reading:
            self._reading[node].add(user)
        member = _member(data, node)
        members = self._remote.setdefault(node, {})
        if member is None:
            members.pop(user, None)
        else:
            members[user] = member

    def _apply(self, node: str, members: list[Any], keep: frozenset[str] = frozenset()) -> None:
        old = self._remote.get(node, {})
        new: dict[str, Member] = {u: m for u, m in old.items() if u in keep}
        for raw in members:
            member = _member(raw, node) if isinstance(raw, dict) else None
            if member is not None and member.user not in keep:
                new[member.user] = member
        self._remote[node] = new

    def _read(self, *nodes: str) -> None:
        self._reads.update(n for n in nodes if n != self.node)
        self._wake.set()

    # -- Redis -----------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            r = self.cluster.redis
            if r is None:
                self._writes.clear()  # the whole list is rewritten on the next join
                self._reads.clear()
                continue
            try:
                if self._rewrite:
                    self._rewrite = False
                    self._writes.clear()
                    await self._write_all(r)
                while self._writes:
                    user, value = self._writes.popitem()
                    if value is None:
                        await r.hdel(presence_key(self.node), user)
                    else:
                        await r.hset(presence_key(self.node), user, value)
                while self._reads:
                    node = self._reads.pop()
                    if node in self.cluster.peers:
                        await self._read_node(r, node)
            except NETWORK_ERRORS as err:
                log.info("cluster presence: Redis error (%s); retried on the next join", err)

    async def _write_all(self, r: Any) -> None:
        members = [m.to_json() for m in self.presence.local_online()]
        mapping = {str(m["user"]): json.dumps(m) for m in members}
        async with r.pipeline(transaction=True) as pipe:
            pipe.delete(presence_key(self.node))
            if mapping:
                pipe.hset(presence_key(self.node), mapping=mapping)
            await pipe.execute()
        self.events.publish(
            SNAPSHOT,
            self.cluster.scope,
            {"node": self.node, "members": members},
            to_users={NOBODY},
        )

    async def _read_node(self, r: Any, node: str) -> None:
        self._reading[node] = set()
        try:
            raw = await r.hgetall(presence_key(node))
        finally:
            touched = self._reading.pop(node)
        members = []
        for value in raw.values():
            with contextlib.suppress(ValueError):
                members.append(json.loads(value))
        if node in self.cluster.peers:  # not announced down while we read
            self._apply(node, members, keep=frozenset(touched))


async def cluster_presence_ctx(app: web.Application) -> AsyncIterator[None]:
    """After `cluster_ctx`: the remote half of `Presence` while `redis.url` is set."""
    from hub.cluster.service import CLUSTER
    from hub.core.events import EVENTS
    from hub.core.presence import PRESENCE

    directory = ClusterPresence(app[CLUSTER], app[PRESENCE], app[EVENTS])
    directory.start()
    app[CLUSTER_PRESENCE] = directory
    yield
    await directory.close()


CLUSTER_PRESENCE = web.AppKey("cluster_presence", ClusterPresence)
