"""Service-level fixtures for the petitions slice: a real SQLite file, a real event bus, the
test topology's centre tree, real rooms and a fake clock (no sockets, no aiohttp app)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from config import parse_config
from config.schema import PetitionsConfig, Role
from hub.core.auth import Principal
from hub.core.centres import CentreTree
from hub.core.db import Database
from hub.core.events import Event, EventBus, Subscription
from hub.petitions.service import Petitions
from hub.petitions.store import CaseStore
from hub.rooms.model import Rooms
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, VILLAGE, topology

TZ = ZoneInfo("Asia/Shanghai")
OTHER_VILLAGE = "410922101203"  # a village of OTHER_TOWN
KIOSK = Principal("village-t", Role.TERMINAL, VILLAGE)
DESK = Principal("town-r", Role.RECEPTIONIST, TOWN)
COUNTY_DESK = Principal("county-r", Role.RECEPTIONIST, COUNTY)
MONDAY_9 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ).timestamp()  # Monday 23 Nov 2026, 09:00


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    """A Beijing wall-clock time as epoch seconds."""
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=TZ).timestamp()


class Clock:
    """A settable clock for `Petitions(clock=...)`."""

    def __init__(self, now: float = MONDAY_9) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def petitions_config(**cfg: Any) -> Any:
    data = topology(petitions=cfg)
    data["centres"].append({"code": OTHER_VILLAGE, "name": "西街村"})
    return parse_config(data)


def drain(sub: Subscription) -> list[Event]:
    """Every event queued for `sub` so far (without waiting)."""
    out = []
    while sub._queue:
        out.append(sub._queue.popleft())
    return out


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 2.0) -> None:
    """Poll `check` every few milliseconds until it holds (tasks owned by a service)."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.005)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "petitions.sqlite3")
    await database.open()
    yield database
    await database.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def bus() -> EventBus:
    return EventBus(maxsize=10_000)


class Maker:
    """Builds `Petitions` services over one database (a second one is a restart)."""

    def __init__(self, db: Database, clock: Clock, bus: EventBus) -> None:
        self.db, self.clock, self.bus = db, clock, bus
        self.made: list[Petitions] = []

    async def __call__(
        self,
        *,
        rooms: Rooms | None = None,
        claim: Callable[[str, str], None] | None = None,
        numbers: Callable[[str, str, int], Awaitable[int | None]] | None = None,
        **cfg: Any,
    ) -> Petitions:
        config = petitions_config(**cfg)
        petitions = Petitions(
            CaseStore(self.db),
            config.petitions,
            CentreTree.from_config(config),
            rooms or Rooms(self.bus),
            self.bus,
            clock=self.clock,
            claim=claim,
            numbers=numbers,
        )
        await petitions.start()
        self.made.append(petitions)
        return petitions


@pytest.fixture
async def make(db: Database, clock: Clock, bus: EventBus) -> AsyncIterator[Maker]:
    maker = Maker(db, clock, bus)
    yield maker
    for petitions in maker.made:
        await petitions.close()


@pytest.fixture
async def petitions(make: Maker) -> Petitions:
    return await make()


def config_of(**cfg: Any) -> PetitionsConfig:
    return PetitionsConfig(**cfg)


__all__ = [
    "COUNTY",
    "COUNTY_DESK",
    "DESK",
    "KIOSK",
    "MONDAY_9",
    "OTHER_TOWN",
    "OTHER_VILLAGE",
    "TOWN",
    "TZ",
    "VILLAGE",
    "Clock",
    "Maker",
    "at",
    "config_of",
    "drain",
    "eventually",
]
