"""Service-level fixtures for duty checks: a real SQLite file, a real event bus, configured
users at the village, township and county, and a factory that starts (and closes)
`DutyChecks` services over one database (a second one is a restart)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from config.schema import DutyConfig, Role, UserConfig
from hub.core.db import Database
from hub.core.events import EventBus
from hub.duty.service import DutyChecks
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, VILLAGE

USERS = [
    UserConfig(name="village-op", role=Role.OPERATOR, centre=VILLAGE),
    UserConfig(name="town-op", role=Role.OPERATOR, centre=TOWN),
    UserConfig(name="other-op", role=Role.OPERATOR, centre=OTHER_TOWN),
    UserConfig(name="county-op", role=Role.OPERATOR, centre=COUNTY),
    UserConfig(name="disp", role=Role.DISPATCHER, centre=COUNTY),
    UserConfig(name="village-t", role=Role.TERMINAL, centre=VILLAGE),
]


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "duty.sqlite3")
    await database.open()
    yield database
    await database.close()


@pytest.fixture
def bus() -> EventBus:
    return EventBus(maxsize=10_000)


class DutyMaker:
    def __init__(self, db: Database, bus: EventBus) -> None:
        self.db, self.bus = db, bus
        self.made: list[DutyChecks] = []

    async def __call__(
        self,
        *,
        bus: EventBus | None = None,
        rng: random.Random | None = None,
        people: list[UserConfig] | None = None,
        **cfg: Any,
    ) -> DutyChecks:
        duty = DutyChecks(self.db, bus or self.bus, DutyConfig(**cfg), people or USERS, rng=rng)
        await duty.start()
        self.made.append(duty)
        return duty


@pytest.fixture
async def make(db: Database, bus: EventBus) -> AsyncIterator[DutyMaker]:
    maker = DutyMaker(db, bus)
    yield maker
    for duty in maker.made:
        await duty.close()
