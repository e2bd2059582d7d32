"""Sweeping a dead hub node out of the owner maps, and telling every node's clients once.

`sweep` runs on a surviving node when it notices a peer is gone (and when it joins). One Lua
script removes, atomically, the entries of `zzhub:owner:camera` and `zzhub:owner:room` whose
node has no presence key (`zzhub:node:<id>`), and returns them: when two survivors run it, the
first gets the entries and the second nothing, so only one publishes — and its events travel
to the other nodes like any other (hub.cluster), reaching every node's clients once. A node
that came back has its key again, so what it re-claimed is never swept.

The survivor publishes `camera.status` {status: "unavailable", node, available: false} per
camera (its centre from `zzhub:camera:meta`, kept so other nodes still list it) and
`room.updated` {unavailable: true, ended: true, node} per room, to the room's audience (from
`zzhub:room:meta`, deleted with the room).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis.asyncio as aioredis

from hub.core.events import Event, EventBus

log = logging.getLogger(__name__)

PREFIX = "zzhub:"
CAMERA_REV = PREFIX + "camera:rev"  # grows with every change of the camera map
KINDS = ("camera", "room")

# KEYS: the owner hashes; ARGV[1]: the node key prefix, ARGV[2]: the camera map's revision key.
# Returns the removed entries as a flat list [hash key, item, node, ...]. It reads node keys
# not named in KEYS: fine on one Redis (not on Redis Cluster). It walks the whole hashes:
# ~50,000 entries cost Redis some tens of ms, once per node death.
SWEEP = """
local removed, alive = {}, {}
for _, key in ipairs(KEYS) do
  local entries = redis.call('HGETALL', key)
  for i = 1, #entries, 2 do
    local node = entries[i + 1]
    if alive[node] == nil then
      alive[node] = redis.call('EXISTS', ARGV[1] .. node) == 1
    end
    if not alive[node] then
      redis.call('HDEL', key, entries[i])
      table.insert(removed, key)
      table.insert(removed, entries[i])
      table.insert(removed, node)
    end
  end
end
if #removed > 0 then redis.call('INCR', ARGV[2]) end
return removed
"""


async def sweep(r: aioredis.Redis, events: EventBus, scope: str) -> int:
    """Remove the dead nodes' entries; publish what they mean. Returns how many it removed.
    `scope`: the centre for events whose item's centre is unknown."""
    keys = [f"{PREFIX}owner:{kind}" for kind in KINDS]
    removed = await r.eval(SWEEP, len(keys), *keys, PREFIX + "node:", CAMERA_REV)
    if not removed:
        return 0
    entries = [
        (str(removed[i]), str(removed[i + 1]), str(removed[i + 2]))
        for i in range(0, len(removed), 3)
    ]
    cameras = [(item, node) for key, item, node in entries if key.endswith(":camera")]
    rooms = [(item, node) for key, item, node in entries if key.endswith(":room")]
    log.warning(
        "cluster: swept %d camera(s) and %d room(s) of dead node(s) %s",
        len(cameras),
        len(rooms),
        ", ".join(sorted({node for _, _, node in entries})),
    )
    if cameras:
        metas = await r.hmget(PREFIX + "camera:meta", [camera for camera, _ in cameras])
        for (camera, node), raw in zip(cameras, metas, strict=True):
            data = {"camera": camera, "status": "unavailable", "was": "", "node": node}
            centre = str(loads(raw).get("centre") or scope)
            events.publish("camera.status", centre, {**data, "available": False})
    if rooms:
        metas = await r.hmget(PREFIX + "room:meta", [room for room, _ in rooms])
        await r.hdel(PREFIX + "room:meta", *(room for room, _ in rooms))
        for (room, node), raw in zip(rooms, metas, strict=True):
            meta = loads(raw)
            audience = meta.pop("audience", None)
            users = frozenset(str(u) for u in audience) if isinstance(audience, list) else None
            events.publish(
                "room.updated",
                str(meta.get("centre") or scope),
                {
                    **meta,
                    "id": room,
                    "node": node,
                    "ended": True,
                    "unavailable": True,
                    "seats": [],  # the shape of a room, for clients that read one
                    "cameras": [],
                },
                to_users=users or frozenset(),
            )
    return len(entries)


def room_meta(event: Event) -> dict[str, object]:
    """What a survivor needs to tell a dead node's room audience that the room is gone."""
    data = event.data
    meta: dict[str, object] = {k: data[k] for k in ("kind", "title", "host") if k in data}
    return {**meta, "centre": event.centre, "audience": sorted(event.to_users)}


def loads(raw: object) -> dict[str, Any]:
    """A meta entry as a dict ({} when missing or malformed)."""
    try:
        value = json.loads(raw) if isinstance(raw, str | bytes) else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
