"""Who is connected: users and terminals with their status, and centres derived from them.

A user is online while it has at least one WebSocket open; its status is `online`, `busy`
(set by the user) or `in_call` (set by calls and rooms). A centre is online while any of its
terminals or users is. Changes are published on the event bus as topic `presence`.

With a cluster (`redis.url`), `remote` is the directory of the members connected to the other
hub nodes (`hub.cluster.presence`): `get`, `online` and `online_in` then answer for the whole
hub, so calls and roll calls ring terminals wherever they are connected. Status changes apply
to this node's own members only.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from config.schema import Role
from hub.core.centres import within
from hub.core.events import EventBus


class Status(enum.StrEnum):
    OFFLINE = "offline"
    ONLINE = "online"
    BUSY = "busy"
    IN_CALL = "in_call"


@dataclass
class Member:
    user: str
    role: Role
    centre: str
    connections: int = 0
    status: Status = Status.OFFLINE
    since: float = field(default_factory=time.time)
    duty: bool = False
    node: str = ""  # "": connected to this hub node; else the node it is connected to

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "user": self.user,
            "role": str(self.role),
            "centre": self.centre,
            "status": str(self.status),
            "since": self.since,
            "duty": self.duty,
        }
        if self.node:
            data["node"] = self.node
        return data


class RemoteMembers(Protocol):
    """Members connected to other hub nodes (see `hub.cluster.presence`)."""

    def get(self, user: str) -> Member | None: ...

    def members(self) -> list[Member]: ...


class Presence:
    def __init__(self, events: EventBus, duty_users: set[str] | None = None) -> None:
        self._events = events
        self._members: dict[str, Member] = {}
        self._duty_users = duty_users or set()
        self.remote: RemoteMembers | None = None  # set while this node is part of a cluster

    def _set(self, member: Member, status: Status) -> None:
        if member.status is status:
            return
        member.status = status
        member.since = time.time()
        self._events.publish("presence", member.centre, member.to_json())

    def connect(self, user: str, role: Role, centre: str) -> Member:
        member = self._members.get(user)
        if member is None or member.centre != centre:
            member = Member(user, role, centre, duty=user in self._duty_users)
            self._members[user] = member
        member.connections += 1
        if member.status is Status.OFFLINE:
            self._set(member, Status.ONLINE)
        return member

    def disconnect(self, user: str) -> None:
        member = self._members.get(user)
        if member is None:
            return
        member.connections = max(0, member.connections - 1)
        if member.connections == 0:
            self._set(member, Status.OFFLINE)

    def set_status(self, user: str, status: Status) -> None:
        member = self._members.get(user)
        if member is not None and member.connections > 0:
            self._set(member, status)

    def get(self, user: str) -> Member | None:
        """The member connected here; else connected to another node; else as last seen."""
        member = self._members.get(user)
        if (member is None or member.connections == 0) and self.remote is not None:
            return self.remote.get(user) or member
        return member

    def local(self, user: str) -> Member | None:
        """This node's own record of `user` (what `set_status` changes)."""
        return self._members.get(user)

    def local_online(self) -> list[Member]:
        return [m for m in self._members.values() if m.connections > 0]

    def online(self, scope: str = "") -> list[Member]:
        return [m for m in self._everyone() if within(m.centre, scope)]

    def online_in(self, centre: str) -> list[Member]:
        """Members connected at exactly this centre (to any hub node)."""
        return [m for m in self._everyone() if m.centre == centre]

    def _everyone(self) -> list[Member]:
        here = self.local_online()
        if self.remote is None:
            return here
        users = {m.user for m in here}
        return here + [m for m in self.remote.members() if m.user not in users]


PRESENCE = web.AppKey("presence", Presence)
