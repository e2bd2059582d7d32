"""Signing out: `POST /api/logout` and an admin's `POST /api/users/{user}/revoke` refuse every
token of the user issued before, on every node (events) and after a restart (SQLite)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from hub.core.db import Database
from hub.core.events import EventBus
from hub.core.revocations import TOPIC, Revocations
from tests.conftest import COUNTY, OTHER_TOWN


async def login(client: TestClient[Any, Any], user: str, password: str) -> dict[str, str]:
    resp = await client.post("/api/login", json={"user": user, "password": password})
    assert resp.status == 200, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def test_logout_signs_the_token_out(client: TestClient[Any, Any]) -> None:
    headers = await login(client, "town-op", "town-pass")
    assert (await client.get("/api/me", headers=headers)).status == 200
    resp = await client.post("/api/logout", headers=headers)
    assert resp.status == 200 and (await resp.json())["signed_out"] is True
    resp = await client.get("/api/me", headers=headers)
    body = await resp.json()
    assert resp.status == 401 and body["error"]["code"] == "signed_out"
    again = await login(client, "town-op", "town-pass")  # a new sign-in works at once
    assert (await client.get("/api/me", headers=again)).status == 200


async def test_an_admin_signs_out_a_user_of_its_scope(
    client: TestClient[Any, Any], token: Callable[..., str]
) -> None:
    op = await login(client, "town-op", "town-pass")
    other_admin = {"Authorization": f"Bearer {token('admin', OTHER_TOWN, 'ot-admin')}"}
    operator = {"Authorization": f"Bearer {token('operator', COUNTY, 'x')}"}
    assert (await client.post("/api/users/town-op/revoke", headers=other_admin)).status == 404
    assert (await client.post("/api/users/town-op/revoke", headers=operator)).status == 403
    assert (await client.get("/api/me", headers=op)).status == 200
    admin = {"Authorization": f"Bearer {token('admin', COUNTY, 'admin')}"}
    assert (await client.post("/api/users/town-op/revoke", headers=admin)).status == 200
    assert (await client.get("/api/me", headers=op)).status == 401
    assert (await client.post("/api/users/nobody/revoke", headers=admin)).status == 404


async def test_sign_outs_survive_a_restart_and_travel_between_nodes(tmp_path: Path) -> None:
    db = Database(tmp_path / "hub.sqlite3")
    await db.open()
    try:
        bus = EventBus()
        first = Revocations(db, bus)
        await first.start()
        before = int(time.time() * 1000) - 10
        await first.revoke("wang")
        assert first.revoked("wang", before) and not first.revoked("li", before)
        await first.close()
        again = Revocations(db, EventBus())  # the next run reads the rows
        await again.start()
        assert again.revoked("wang", before)
        assert not again.revoked("wang", int(time.time() * 1000) + 10)  # a later sign-in
        # another node's sign-out arrives as its event
        when = int(time.time() * 1000) + 5
        again.events.publish(TOPIC, "", {"user": "li", "not_before_ms": when}, origin="node-b")
        assert again.revoked("li", when - 1)
        await asyncio.sleep(0)
        await again.close()  # its row is written before close returns
        third = Revocations(db, EventBus())
        await third.start()
        assert third.revoked("li", when - 1)
        await third.close()
    finally:
        await db.close()


async def test_a_sign_out_closes_the_users_open_sockets(client: TestClient[Any, Any]) -> None:
    headers = await login(client, "town-op", "town-pass")
    token = headers["Authorization"][7:]
    async with client.ws_connect(f"/ws?token={token}") as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        assert (await client.post("/api/logout", headers=headers)).status == 200
        async with asyncio.timeout(5):
            msg = await ws.receive()
            while msg.type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                msg = await ws.receive()
        assert ws.close_code == 1008
    # and it cannot come back: the handshake itself is refused
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(f"/ws?token={token}")
    assert refused.value.status == 401
