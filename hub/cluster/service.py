"""Scale-out through Redis: node presence, cross-node events and the camera/room-to-node map.

With `redis.url` set, each hub node
- beats: `SET zzhub:node:<id> <json> PX node_ttl` every `heartbeat` seconds and keeps its id in
  the set `zzhub:nodes`; a node whose key expired is gone (noticed within heartbeat + node_ttl)
  and announced locally as event `cluster.node` {node, state: "down"};
- claims what it owns in the hashes `zzhub:owner:camera` and `zzhub:owner:room` (id → node),
  with what other nodes need to show an item they do not own in `zzhub:camera:meta` /
  `zzhub:room:meta` (id → JSON: centre, name …); `zzhub:camera:rev` grows with every change of
  the camera map, so other nodes reload it only when it changed (hub/cluster/cameras.py);
- sweeps the owner hashes when a node is gone (hub/cluster/sweep.py: one survivor removes the
  dead node's camera and room entries and announces them unavailable, once for every node's
  clients), and tells `node_listeners` (relay legs pulling from it are cut);
- forwards every event published on its EventBus to the channel `zzhub:events`, tagged with
  its node id, and re-publishes the other nodes' events on its own bus with `origin` set, so
  they are never sent back (no loops).

Redis unreachable: local features go on (the EventBus is in-process), the state turns
`degraded` (GET /api/health shows it), events for other nodes wait in a bounded outbox
(oldest dropped, counted), and the node reconnects with backoff; on reconnect it re-registers,
re-claims what it owns and announces `cluster.resync` locally so clients reload their state.
Without `redis.url` the cluster is `off` and nothing here runs.

The domain state builds on this: calls, roll calls, cases and broadcasts are claimed like rooms
(`owned` kinds `call`, `rollcall`, `petition`, `broadcast`), and so are notices, their attachments
and alerts (`notice`, `notice_attachment`, `alert`); hub/cluster/presence.py shares who
is connected to which node, hub/cluster/proxy.py forwards requests to an object's owner and
merges the list endpoints over every node.

Over 500 lines: heartbeats, ownership and event forwarding share one Redis session and its
reconnect loop (a re-join re-claims everything owned), so they stay in one module.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from config.schema import HubConfig
from hub.cluster import redis_client
from hub.cluster.sweep import CAMERA_REV, loads, room_meta, sweep
from hub.core.cluster import node_identity
from hub.core.events import Event, EventBus
from streams.hooks import Hook
from streams.tasks import TaskSet

log = logging.getLogger(__name__)

PREFIX = "zzhub:"
CHANNEL = PREFIX + "events"
NODES = PREFIX + "nodes"
OUTBOX = 1000  # events kept for other nodes while Redis is away
BACKOFF = (0.2, 0.5, 1.0, 2.0)  # seconds between reconnect attempts; the last repeats
NETWORK_ERRORS = (RedisError, OSError, TimeoutError)
HUB_WIDE = ""  # the centre of events for every user (`Subscription.wants`)
CONFLICTS_KEPT = 100
CLAIM_CHUNK = 2000
# Re-claim domain objects. KEYS: the owner hash; ARGV: this node, the node-key prefix, the ids.
# An id a live other node holds is left to it and returned: two nodes numbered the same case
# code or alert id while Redis was away. Returns a flat list [item, holding node, ...].
RECLAIM = """
local taken = {}
for i = 3, #ARGV do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if cur and cur ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. cur) == 1 then
    table.insert(taken, ARGV[i])
    table.insert(taken, cur)
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[1])
  end
end
return taken
"""
# The next number of a cluster-wide counter. KEYS: the counter, the owner hash of the ids it
# numbers; ARGV: a floor (the caller's local maximum), the id's prefix, its digits (0: plain),
# the counter's TTL in seconds (0: none). Numbers whose id a node claimed (numbered locally
# while Redis was away) are skipped.
NEXT_NUMBER = """
local floor = tonumber(ARGV[1])
if tonumber(redis.call('GET', KEYS[1]) or '0') < floor then redis.call('SET', KEYS[1], floor) end
local function id(n)
  if ARGV[3] == '0' then return ARGV[2] .. tostring(n) end
  return ARGV[2] .. string.format('%0' .. ARGV[3] .. 'd', n)
end
local n = redis.call('INCR', KEYS[1])
while redis.call('HEXISTS', KEYS[2], id(n)) == 1 do
  n = redis.call('INCR', KEYS[1])
end
if tonumber(ARGV[4]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
return n
"""
DOMAIN_KINDS = ("call", "rollcall", "petition", "broadcast", "notice", "notice_attachment", "alert")


class ClusterState(enum.StrEnum):
    OFF = "off"  # no redis.url: a single node
    CONNECTING = "connecting"
    UP = "up"
    DEGRADED = "degraded"  # Redis unreachable: local only, retrying


@dataclass(frozen=True, slots=True)
class NodeInfo:
    id: str
    url: str
    started: float

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "url": self.url, "started": self.started}


def _local_only(event: Event) -> bool:
    """Events that must not travel: other nodes' own copies, or ones each node makes itself."""
    if event.origin or event.topic.startswith("cluster."):
        return True
    # an alert.raised without an id is stored by the node's alert service (hub/alerts/service.py);
    # forwarded, every node would store it again
    return event.topic == "alert.raised" and "id" not in event.data


class Cluster:
    def __init__(self, config: HubConfig, events: EventBus) -> None:
        cfg = config.redis
        self.url = cfg.url
        self.heartbeat = cfg.heartbeat
        self.node_ttl = cfg.node_ttl
        self.node = NodeInfo(*node_identity(config), time.time())
        self.events = events
        self.state = ClusterState.OFF if self.url is None else ClusterState.CONNECTING
        self.peers: dict[str, NodeInfo] = {}  # other live nodes, as last seen
        self.owned: dict[str, set[str]] = {"camera": set(), "room": set()}
        # what other nodes show of an owned item (JSON text), kept to re-write it on reconnect
        self.meta: defaultdict[str, dict[str, str]] = defaultdict(dict)
        # called as listener(node, "up" | "down") when a peer appears or is gone (relay legs)
        self.node_listeners: Hook[[NodeInfo, str]] = Hook("cluster node up or down")
        self.swept = 0  # owner entries of dead nodes this node removed
        # ids this node holds that a live other node claimed first (newest last): twins
        self.conflicts: deque[dict[str, object]] = deque(maxlen=CONFLICTS_KEPT)
        self.conflicts_total = 0
        self._reported: set[tuple[str, str]] = set()  # each twin once, however many re-claims
        # domain objects created here (hub/cluster/proxy.py forwards requests for them)
        for kind in DOMAIN_KINDS:
            self.owned[kind] = set()
        self.sent = self.received = self.dropped = self.reconnects = 0
        self._outbox: deque[dict[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._redis: aioredis.Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self._writes = TaskSet("cluster writes", log)  # ownership writes: cancelled at close
        # cluster events concern the whole hub: addressed to its top centre(s)' scope
        self.scope = min((c.code for c in config.centres), key=len)

    # -- state -----------------------------------------------------------------------------
    def _set_state(self, new: ClusterState, why: str = "") -> None:
        if new is self.state:
            return
        old, self.state = self.state, new
        log.info("cluster %s: %s -> %s%s", self.node.id, old, new, f" ({why})" if why else "")
        # every console: a village terminal also follows the live nodes (its failover)
        self.events.publish("cluster.state", HUB_WIDE, {"node": self.node.id, "state": str(new)})

    def to_json(self) -> dict[str, object]:
        return {
            "state": str(self.state),
            "node": self.node.id,
            "nodes": sorted([self.node.id, *self.peers]) if self.state is ClusterState.UP else [],
            "conflicts": list(self.conflicts),
        }

    def client_json(self) -> dict[str, object]:
        """What a console learns at connect (WebSocket `hello`): this node, the state and the
        live nodes with their URLs, to fall back on when this node stays unreachable."""
        live = [self.node, *self.peers.values()] if self.state is ClusterState.UP else []
        return {
            "state": str(self.state),
            "node": self.node.id,
            "url": self.node.url,
            "nodes": [n.to_json() for n in sorted(live, key=lambda n: n.id)],
        }

    def live(self, node_id: str) -> bool:
        return self.state is ClusterState.UP and (node_id == self.node.id or node_id in self.peers)

    @property
    def redis(self) -> aioredis.Redis | None:
        """The Redis client while the cluster is up, for shared state other modules keep
        (hub/cluster/presence.py, case numbers); None otherwise."""
        return self._redis if self.state is ClusterState.UP else None

    # -- ownership ---------------------------------------------------------------------------
    def claim(self, kind: str, item: str, meta: dict[str, object] | None = None) -> None:
        """This node owns `item` (a camera or room id); written now or on the next connect.
        `meta`: what other nodes show of it (JSON-able; the node id is added)."""
        if item not in self.owned[kind]:
            self.owned[kind].add(item)
            self._spawn_write("hset", f"{PREFIX}owner:{kind}", item, self.node.id)
            if kind == "camera":
                self._spawn_write("incr", CAMERA_REV)
        if meta is not None:
            text = json.dumps({**meta, "node": self.node.id}, ensure_ascii=False)
            if self.meta[kind].get(item) != text:
                self.meta[kind][item] = text
                self._spawn_write("hset", f"{PREFIX}{kind}:meta", item, text)

    def claim_many(self, kind: str, items: Iterable[str]) -> None:
        """Claim many items at once (the ids a service kept from an earlier run): one write
        instead of one per item."""
        new = sorted(set(items) - self.owned[kind])
        if not new:
            return
        self.owned[kind].update(new)
        r = self._redis
        if r is None or self.state is not ClusterState.UP:
            return  # written by `_claim_all` on the next connect

        async def write() -> None:
            with contextlib.suppress(*NETWORK_ERRORS):
                await self._reclaim(r, kind, new)

        self._writes.spawn(write())

    def release(self, kind: str, item: str) -> None:
        self.owned[kind].discard(item)
        self._spawn_write("hdel", f"{PREFIX}owner:{kind}", item)
        if self.meta[kind].pop(item, None) is not None:
            self._spawn_write("hdel", f"{PREFIX}{kind}:meta", item)
        if kind == "camera":
            self._spawn_write("incr", CAMERA_REV)

    async def camera_map(
        self, known_rev: str | None
    ) -> tuple[str, dict[str, str], dict[str, str]] | None:
        """(revision, owner map, meta map) of every camera in the cluster; None when Redis is
        away or the revision is still `known_rev`."""
        r = self._redis
        if r is None or self.state is not ClusterState.UP:
            return None
        try:
            rev = str(await r.get(CAMERA_REV) or "0")
            if rev == known_rev:
                return None
            async with r.pipeline(transaction=True) as pipe:
                pipe.get(CAMERA_REV)
                pipe.hgetall(f"{PREFIX}owner:camera")
                pipe.hgetall(PREFIX + "camera:meta")
                rev_now, owners, meta = await pipe.execute()
        except NETWORK_ERRORS:
            return None
        return str(rev_now or "0"), dict(owners), dict(meta)

    async def owner(self, kind: str, item: str) -> NodeInfo | None:
        """The live node that owns `item`; None when unknown, its node is gone, or Redis is
        away (callers then treat the item as unavailable)."""
        if item in self.owned[kind]:
            return self.node
        r = self._redis
        if r is None or self.state is not ClusterState.UP:
            return None
        try:
            node_id = await r.hget(f"{PREFIX}owner:{kind}", item)
        except NETWORK_ERRORS:
            return None
        return self.peers.get(node_id) if isinstance(node_id, str) else None

    async def next_number(
        self,
        counter: str,
        kind: str,
        floor: int,
        *,
        prefix: str = "",
        digits: int = 0,
        ttl: int = 0,
    ) -> int | None:
        """The next value of the counter `zzhub:<counter>` (at least `floor` + 1), skipping
        numbers whose id (`prefix` + the number, zero-padded to `digits`) is claimed as
        `kind`; None while Redis is away (the caller numbers locally)."""
        r = self.redis
        if r is None:
            return None
        keys = (f"{PREFIX}{counter}", f"{PREFIX}owner:{kind}")
        try:
            n = await r.eval(NEXT_NUMBER, 2, *keys, floor, prefix, digits, ttl)
        except NETWORK_ERRORS:
            return None
        return int(n)

    def _spawn_write(self, op: str, *args: str) -> None:
        r = self._redis
        if r is None or self.state is not ClusterState.UP:
            return  # re-claimed from `owned` on the next connect

        async def write() -> None:
            with contextlib.suppress(*NETWORK_ERRORS):
                await getattr(r, op)(*args)

        self._writes.spawn(write())

    # -- events ------------------------------------------------------------------------------
    def _tap(self, event: Event) -> None:
        if _local_only(event):
            return
        if (
            event.topic == "room.updated"
            and isinstance(event.data.get("id"), str)
            and not event.data.get("unavailable")  # a swept room of a dead node: not ours
        ):
            room = event.data["id"]
            if event.data.get("ended"):
                self.release("room", room)
            else:
                self.claim("room", room, room_meta(event))
        if len(self._outbox) >= OUTBOX:
            self._outbox.popleft()
            self.dropped += 1
        self._outbox.append(
            {
                "origin": self.node.id,
                "topic": event.topic,
                "centre": event.centre,
                "data": event.data,
                "to_users": sorted(event.to_users),
                "at": event.at,
            }
        )
        self._wake.set()

    def _deliver(self, raw: str | bytes) -> None:
        try:
            msg = json.loads(raw)
            origin, topic, centre = msg["origin"], msg["topic"], msg["centre"]
        except (ValueError, KeyError, TypeError):
            log.warning("cluster: unreadable message on %s", CHANNEL)
            return
        if origin == self.node.id:
            return
        self.received += 1
        self.events.publish(
            topic,
            centre,
            msg.get("data") or {},
            to_users=frozenset(msg.get("to_users") or ()),
            origin=origin,
            at=msg.get("at"),
        )

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self.url is None:
            return
        self._tapped = self.events.taps.connect(self._tap)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self, *, graceful: bool = True) -> None:
        """Stop; graceful: deregister at once (peers learn now, not after node_ttl)."""
        self._tapped.disconnect()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._writes.close()
        r, self._redis = self._redis, None
        if r is not None:
            if graceful and self.state is ClusterState.UP:
                with contextlib.suppress(*NETWORK_ERRORS):
                    await self._leave(r)
            with contextlib.suppress(*NETWORK_ERRORS):
                await r.aclose()

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                await self._session()
            except NETWORK_ERRORS as err:
                why = f"{type(err).__name__}: {err}"
            else:
                why = "connection ended"
            r, self._redis = self._redis, None
            if r is not None:
                with contextlib.suppress(*NETWORK_ERRORS):
                    await r.aclose()
            if self.state is ClusterState.UP:
                attempt = 0
            self._set_state(ClusterState.DEGRADED, why)
            self.peers.clear()
            await asyncio.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
            attempt += 1
            self.reconnects += 1

    async def _session(self) -> None:
        assert self.url is not None
        timeout = max(1.0, self.node_ttl / 2)
        r: aioredis.Redis = redis_client.connect(
            self.url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=0,
        )
        self._redis = r
        pubsub = r.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(CHANNEL)
            await self._join(r)
            resynced = self.reconnects > 0
            self._set_state(ClusterState.UP)
            if resynced:
                self.events.publish("cluster.resync", HUB_WIDE, {"node": self.node.id})
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._beat(r))
                tg.create_task(self._send(r))
                tg.create_task(self._listen(pubsub))
        except* NETWORK_ERRORS as group:
            raise group.exceptions[0] from None
        finally:
            with contextlib.suppress(*NETWORK_ERRORS):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _join(self, r: aioredis.Redis) -> None:
        """Register this node and (re-)claim what it owns: after a Redis restart the keys are
        gone, after a partition another node may have written over them or swept them. Owner
        entries of nodes that died while this one was away are swept now."""
        await self._announce(r)
        await self._claim_all(r)
        await self._refresh_peers(r)
        await self._sweep(r)

    async def _claim_all(self, r: aioredis.Redis) -> None:
        for kind, items in self.owned.items():
            if items and kind in DOMAIN_KINDS:
                await self._reclaim(r, kind, sorted(items))
            elif items:
                await r.hset(f"{PREFIX}owner:{kind}", mapping=dict.fromkeys(items, self.node.id))
            if self.meta[kind]:
                meta = self.meta[kind]
                await r.hset(f"{PREFIX}{kind}:meta", mapping={k: meta[k] for k in meta})
        # cameras dropped from this node's config since it last ran: forget their meta
        stale = [
            item
            for item, raw in (await r.hgetall(PREFIX + "camera:meta")).items()
            if item not in self.owned["camera"] and _node_of(raw) == self.node.id
        ]
        if stale:
            await r.hdel(PREFIX + "camera:meta", *stale)
        await r.incr(CAMERA_REV)

    async def _reclaim(self, r: aioredis.Redis, kind: str, items: list[str]) -> None:
        """Claim domain objects kept from before (start, reconnect), leaving those a live
        other node holds to it: each such twin is logged, counted and announced
        (`cluster.conflict`). Cameras and rooms are claimed outright (hub/cluster/sweep.py)."""
        key = f"{PREFIX}owner:{kind}"
        for start in range(0, len(items), CLAIM_CHUNK):
            chunk = items[start : start + CLAIM_CHUNK]
            taken = await r.eval(RECLAIM, 1, key, self.node.id, PREFIX + "node:", *chunk)
            for item, other in zip(taken[::2], taken[1::2], strict=True):
                self._conflict(kind, str(item), str(other))

    def _conflict(self, kind: str, item: str, other: str) -> None:
        if (kind, item) in self._reported:
            return
        self._reported.add((kind, item))
        log.error(
            "cluster: %s %s is kept here and on node %s (both numbered it while Redis was "
            "away); requests through other nodes reach node %s's",
            kind, item, other, other,
        )  # fmt: skip
        entry: dict[str, object] = {"kind": kind, "item": item, "node": other, "at": time.time()}
        self.conflicts.append(entry)
        self.conflicts_total += 1
        self.events.publish("cluster.conflict", self.scope, {**entry, "here": self.node.id})

    async def _leave(self, r: aioredis.Redis) -> None:
        await r.delete(f"{PREFIX}node:{self.node.id}")
        await r.srem(NODES, self.node.id)
        for kind, items in self.owned.items():
            if items:
                await r.hdel(f"{PREFIX}owner:{kind}", *items)
        if self.meta["room"]:
            await r.hdel(PREFIX + "room:meta", *self.meta["room"])
        await r.incr(CAMERA_REV)  # its cameras stay listed (meta), unavailable

    async def _announce(self, r: aioredis.Redis) -> bool:
        """Beat; False when this node's key had expired (it stalled past node_ttl)."""
        info = json.dumps(self.node.to_json())
        old = await r.set(
            f"{PREFIX}node:{self.node.id}", info, px=int(self.node_ttl * 1000), get=True
        )
        await r.sadd(NODES, self.node.id)
        return old is not None

    async def _beat(self, r: aioredis.Redis) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            if not await self._announce(r):
                # others took this node for dead and may have swept its entries: claim again
                log.warning("cluster: %s was silent past node_ttl; re-claiming", self.node.id)
                await self._claim_all(r)
            await self._refresh_peers(r)

    async def _refresh_peers(self, r: aioredis.Redis) -> None:
        members = await r.smembers(NODES)  # str: decode_responses
        ids = sorted(str(i) for i in members if str(i) != self.node.id)
        infos = await r.mget([f"{PREFIX}node:{i}" for i in ids]) if ids else []
        alive: dict[str, NodeInfo] = {}
        for node_id, raw in zip(ids, infos, strict=True):
            if raw is None:
                await r.srem(NODES, node_id)  # its key expired: it stopped beating
                continue
            data = json.loads(raw)
            alive[node_id] = NodeInfo(node_id, str(data.get("url", "")), data.get("started", 0))
        gone = sorted(self.peers.keys() - alive.keys())
        came = sorted(alive.keys() - self.peers.keys())
        before, self.peers = self.peers, alive
        for node_id in gone:
            log.warning("cluster: node %s is gone", node_id)
            info = before[node_id].to_json()
            self.events.publish(
                "cluster.node", HUB_WIDE, {"node": node_id, "state": "down", **info}
            )
            self._tell(before[node_id], "down")
        for node_id in came:
            log.info("cluster: node %s is up (%s)", node_id, alive[node_id].url)
            self.events.publish(
                "cluster.node",
                HUB_WIDE,
                {"node": node_id, "state": "up", **alive[node_id].to_json()},
            )
            self._tell(alive[node_id], "up")
        if gone:
            await self._sweep(r)

    def _tell(self, node: NodeInfo, state: str) -> None:
        self.node_listeners.emit(node, state)

    async def _sweep(self, r: aioredis.Redis) -> None:
        """Dead nodes out of the owner maps; their cameras and rooms announced unavailable
        (hub/cluster/sweep.py: only the survivor whose script removed them publishes)."""
        self.swept += await sweep(r, self.events, self.scope)

    async def _send(self, r: aioredis.Redis) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox:
                msg = self._outbox[0]
                await r.publish(CHANNEL, json.dumps(msg, ensure_ascii=False))
                self._outbox.popleft()  # only once sent: a failure keeps it for the retry
                self.sent += 1

    async def _listen(self, pubsub: Any) -> None:
        # get_message with a timeout polls; listen() would hit socket_timeout when idle
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None and message.get("type") == "message":
                self._deliver(message["data"])


def _node_of(raw: object) -> str:
    return str(loads(raw).get("node", ""))


async def cluster_ctx(app: web.Application) -> AsyncIterator[None]:
    from hub.cameras.service import CAMERAS
    from hub.core.events import EVENTS
    from hub.core.state import CONFIG

    cluster = Cluster(app[CONFIG], app[EVENTS])
    app[CLUSTER] = cluster
    cluster.start()
    for camera in app[CAMERAS].all():
        cluster.claim("camera", camera.id, camera.cluster_meta())
    yield
    await cluster.close()


CLUSTER = web.AppKey("cluster", Cluster)
