"""Service-level fixtures for calls: a real Database on tmp_path, a real EventBus, Presence,
Rooms and CentreTree, no sockets and no aiohttp app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from config.schema import CentreConfig, Role
from hub.calls.service import Calls
from hub.calls.store import CallHistory
from hub.core.auth import Principal
from hub.core.centres import Centre, CentreTree
from hub.core.db import Database
from hub.core.events import Event, EventBus
from hub.core.presence import Presence
from hub.rooms.model import Rooms

C, T, T2 = "410922", "410922100", "410922101"
V, V2, V3 = "410922100201", "410922100202", "410922101201"
OC = "410923"
NAMES = {
    C: "清丰县",
    T: "城关镇",
    T2: "马庄桥镇",
    V: "东关村",
    V2: "西关村",
    V3: "南街村",
    OC: "南乐县",
}

DISPATCHER = Principal("county-d", Role.DISPATCHER, C)
TOWN_D = Principal("town-d", Role.DISPATCHER, T)
ADMIN = Principal("admin", Role.ADMIN, C)
V_TERM = Principal("v-term", Role.TERMINAL, V)
V_OP = Principal("v-op", Role.OPERATOR, V)
V2_TERM = Principal("v2-term", Role.TERMINAL, V2)
V3_TERM = Principal("v3-term", Role.TERMINAL, V3)
OUTSIDER = Principal("oc-d", Role.DISPATCHER, OC)


@dataclass
class World:
    db: Database
    events: EventBus
    presence: Presence
    rooms: Rooms
    tree: CentreTree
    calls: Calls
    published: list[Event] = field(default_factory=list)

    def centre(self, code: str) -> Centre:
        centre = self.tree.get(code)
        assert centre is not None
        return centre

    def online(self, *people: Principal) -> None:
        for p in people:
            self.presence.connect(p.user, p.role, p.centre)

    def topics(self, topic: str) -> list[Event]:
        return [e for e in self.published if e.topic == topic]

    def new_calls(self, **kwargs: object) -> Calls:
        """A second service over the same database and rooms (a restart)."""
        options: dict[str, object] = {"ring_timeout": 30.0, **kwargs}
        return Calls(
            CallHistory(self.db),
            self.rooms,
            self.presence,
            self.events,
            **options,  # type: ignore[arg-type]
        )


def make_tree() -> CentreTree:
    return CentreTree([CentreConfig(code=code, name=name) for code, name in NAMES.items()])


async def until(pred: Callable[[], bool], timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.005)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    db = Database(tmp_path / "hub.sqlite3")
    await db.open()
    events = EventBus()
    presence = Presence(events, duty_users={V_TERM.user})
    rooms = Rooms(events)
    calls = Calls(CallHistory(db), rooms, presence, events, ring_timeout=30.0, max_live=3)
    w = World(db, events, presence, rooms, make_tree(), calls)
    w.events.taps.connect(w.published.append)
    await calls.start()
    yield w
    await w.calls.close()
    await db.close()
