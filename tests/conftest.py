"""Shared fixtures: a test topology, tokens, a running hub app (aiohttp test client)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config import HubConfig, parse_config
from config.schema import Role
from hub.app import build_app
from hub.core.auth import TokenIssuer

SECRET = "test-secret-0123456789abcdef-0123456789"
COUNTY, TOWN, OTHER_TOWN, VILLAGE = "410922", "410922100", "410922101", "410922100201"


def _test_data_root() -> Path:
    """Data dirs of the hubs this test process builds; removed when the session ends."""
    root = Path(tempfile.gettempdir()) / f"zzhub-tests-{os.getpid()}"
    root.mkdir(exist_ok=True)
    return root


@pytest.fixture(scope="session", autouse=True)
def _remove_test_data() -> Iterator[None]:
    yield
    shutil.rmtree(_test_data_root(), ignore_errors=True)


def topology(
    cameras: dict[str, list[dict[str, Any]]] | None = None, **sections: Any
) -> dict[str, Any]:
    """A county → 2 townships → 1 village config dict with small synthetic cameras."""
    small = "size=320x240&fps=25&gop=25"
    cams = cameras or {
        COUNTY: [{"id": "county-cam", "name": "县大厅", "url": f"synthetic://county-cam?{small}"}],
        TOWN: [{"id": "town-cam", "name": "镇大厅", "url": f"synthetic://town-cam?{small}"}],
        OTHER_TOWN: [{"id": "other-cam", "name": "邻镇", "url": f"synthetic://other-cam?{small}"}],
        VILLAGE: [
            {"id": "village-cam", "name": "村值班室", "url": f"synthetic://village-cam?{small}"}
        ],
    }
    names = {COUNTY: "清丰县", TOWN: "城关镇", OTHER_TOWN: "马庄桥镇", VILLAGE: "东关村"}
    data: dict[str, Any] = {
        "http": {
            "host": "127.0.0.1",
            "port": 0,
            "max_body_bytes": 64 * 1024,
            "data_dir": tempfile.mkdtemp(prefix="hub-", dir=_test_data_root()),
        },
        "auth": {"secret": SECRET},
        "streams": {"linger": 0.5, "connect_timeout": 5, "backoff": [[0.2, 1000]]},
        "webrtc": {"session_timeout": 20},
        "centres": [
            {"code": code, "name": name, "cameras": cams.get(code, [])}
            for code, name in names.items()
        ],
        "users": [
            {"name": "admin", "role": "admin", "centre": COUNTY, "password": "admin-pass"},
            {"name": "town-op", "role": "operator", "centre": TOWN, "password": "town-pass"},
        ],
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return data


@pytest.fixture
def hub_config() -> HubConfig:
    return parse_config(topology())


@pytest.fixture
def token() -> Callable[..., str]:
    issuer = TokenIssuer(SECRET, 3600)

    def make(
        role: str = "admin", centre: str = COUNTY, user: str = "tester", ttl: int | None = None
    ) -> str:
        return issuer.issue(user, Role(role), centre, ttl)

    return make


@pytest.fixture
def auth(token: Callable[..., str]) -> Callable[..., dict[str, str]]:
    def headers(role: str = "admin", centre: str = COUNTY, user: str = "tester") -> dict[str, str]:
        return {"Authorization": f"Bearer {token(role, centre, user)}"}

    return headers


@pytest.fixture
async def client(hub_config: HubConfig) -> AsyncIterator[TestClient[Any, Any]]:
    app = build_app(hub_config)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c
