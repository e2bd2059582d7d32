"""Service-level fixtures for the alerts slice: a real SQLite store on tmp_path, a real bus."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.alerts.service import Alerts
from hub.core.db import Database
from hub.core.events import EventBus


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "hub.db")
    await database.open()
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
async def alerts(db: Database, bus: EventBus) -> AsyncIterator[Alerts]:
    service = Alerts(db, bus, pre_event=10.0)
    await service.start()
    try:
        yield service
    finally:
        await service.close()
