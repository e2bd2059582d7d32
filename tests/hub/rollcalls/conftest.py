"""Service-level fixtures for roll calls: a real Database on tmp_path, a real EventBus,
Presence, Rooms and CentreTree; snapshots under tmp_path; no sockets, no aiohttp app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from config.schema import CentreConfig, Role
from hub.core.auth import Principal
from hub.core.centres import Centre, CentreTree
from hub.core.db import Database
from hub.core.events import Event, EventBus
from hub.core.presence import Presence
from hub.rollcalls.service import RollCalls
from hub.rollcalls.store import RollCallLedger
from hub.rooms.model import Rooms

C, T, T2 = "410922", "410922100", "410922101"
V, V2, V4, V3 = "410922100201", "410922100202", "410922100204", "410922101201"
OC = "410923"
NAMES = {
    C: "清丰县",
    T: "城关镇",
    T2: "马庄桥镇",
    V: "东关村",
    V2: "西关村",
    V4: "北关村",
    V3: "南街村",
    OC: "南乐县",
}

DISPATCHER = Principal("county-d", Role.DISPATCHER, C)
TOWN_D = Principal("town-d", Role.DISPATCHER, T)
OTHER_D = Principal("other-d", Role.DISPATCHER, T2)
ADMIN = Principal("admin", Role.ADMIN, C)
V_T = Principal("v-t", Role.TERMINAL, V)  # the duty terminal of V
V_SPARE = Principal("v-spare", Role.TERMINAL, V)  # a terminal of V, not on duty
V_OP = Principal("v-op", Role.OPERATOR, V)
V_DUTY_OP = Principal("v-duty-op", Role.OPERATOR, V)  # an operator on the duty list
V2_T = Principal("v2-t", Role.TERMINAL, V2)
V4_T = Principal("v4-t", Role.TERMINAL, V4)  # not connected when the roll call starts
V3_T = Principal("v3-t", Role.TERMINAL, V3)
DUTY = {"v-t", "v-duty-op", "v2-t", "v4-t", "v3-t"}
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"


@dataclass
class World:
    db: Database
    events: EventBus
    presence: Presence
    rooms: Rooms
    tree: CentreTree
    data_dir: Path
    rollcalls: RollCalls
    published: list[Event] = field(default_factory=list)

    def centres(self, *codes: str) -> list[Centre]:
        out = [self.tree.get(c) for c in codes]
        assert all(out)
        return [c for c in out if c is not None]

    def online(self, *people: Principal) -> None:
        for p in people:
            self.presence.connect(p.user, p.role, p.centre)

    def topics(self, topic: str) -> list[Event]:
        return [e for e in self.published if e.topic == topic]

    def new_rollcalls(self, **kwargs: object) -> RollCalls:
        """A second service over the same database, rooms and data dir (a restart)."""
        options: dict[str, object] = {"timeout": 30.0, "duty_users": DUTY, **kwargs}
        return RollCalls(
            RollCallLedger(self.db),
            self.rooms,
            self.presence,
            self.events,
            data_dir=self.data_dir,
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
    presence = Presence(events, duty_users=DUTY)
    rooms = Rooms(events)
    rollcalls = RollCalls(
        RollCallLedger(db),
        rooms,
        presence,
        events,
        data_dir=tmp_path / "data",
        timeout=30.0,
        duty_users=DUTY,
        max_live=2,
    )
    w = World(db, events, presence, rooms, make_tree(), tmp_path / "data", rollcalls)
    events.taps.connect(w.published.append)
    await rollcalls.start()
    yield w
    await w.rollcalls.close()
    await db.close()
