"""Audit log: hash chain, append-only triggers, logins and WHEP views recorded, admin scope,
`zzhub verify --audit` names the first broken row."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient

from config import parse_config
from hub.app import build_app
from hub.core.audit import AUDIT, AuditLog
from hub.core.db import Database
from hub.recordings.verify import verify_audit
from tests.conftest import COUNTY, TOWN, VILLAGE, topology
from tests.fixtures.webrtc import WhepViewer

ROOT = Path(__file__).resolve().parents[3]


async def test_chain_and_append_only(tmp_path: Path) -> None:
    db = Database(tmp_path / "zzhub.sqlite3")
    await db.open()
    audit = AuditLog(db)
    await audit.start()
    try:
        await asyncio.gather(
            *(audit.append(f"u{i}", "view.start", "camera:x", {"i": i}, TOWN) for i in range(20))
        )
        audit.record("u", "login", "user:u", {"remote": "127.0.0.1"}, VILLAGE)
        await audit.close()
        checked, broken = await audit.verify()
        assert checked == 21 and broken is None
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            await db.execute("UPDATE audit_log SET actor = 'x' WHERE id = 3")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            await db.execute("DELETE FROM audit_log WHERE id = 3")
        rows = await audit.rows(TOWN, limit=5)
        assert [r["id"] for r in rows] == [21, 20, 19, 18, 17]
        assert rows[0]["action"] == "login" and rows[0]["centre"] == VILLAGE
        assert await audit.rows("410922101") == []
    finally:
        await db.close()
    assert verify_audit(tmp_path / "zzhub.sqlite3").ok
    # someone with file access drops the trigger and edits row 7: verify names row 7
    conn = sqlite3.connect(tmp_path / "zzhub.sqlite3")
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("UPDATE audit_log SET target = 'camera:y' WHERE id = 7")
    conn.commit()
    conn.close()
    report = verify_audit(tmp_path / "zzhub.sqlite3")
    assert report.problems == ["CHAIN audit row 7: its content does not match its hash"]


def test_cli_verify_audit_names_a_removed_row(tmp_path: Path) -> None:
    cfg = topology()
    cfg["http"]["data_dir"] = str(tmp_path)
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True))

    async def fill() -> None:
        db = Database(tmp_path / "zzhub.sqlite3")
        await db.open()
        audit = AuditLog(db)
        await audit.start()
        for i in range(5):
            await audit.append("u", "login", "user:u", {"n": i}, COUNTY)
        await audit.close()
        await db.close()

    asyncio.run(fill())
    run = [sys.executable, "-m", "hub.cli", "verify", "--audit", "-c", str(path)]
    ok = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "5 audit rows checked, OK" in ok.stdout
    conn = sqlite3.connect(tmp_path / "zzhub.sqlite3")
    conn.execute("DROP TRIGGER audit_log_no_delete")
    conn.execute("DELETE FROM audit_log WHERE id = 3")
    conn.commit()
    conn.close()
    bad = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "CHAIN audit row 3: row 3 is missing" in bad.stdout


async def test_logins_and_scope(
    client: TestClient[Any, Any], auth: Callable[..., dict[str, str]]
) -> None:
    r = await client.post("/api/login", json={"user": "town-op", "password": "town-pass"})
    assert r.status == 200
    r = await client.post("/api/login", json={"user": "town-op", "password": "wrong"})
    assert r.status == 401
    await asyncio.sleep(0.1)  # queued rows reach the database
    r = await client.get("/api/audit?actor=town-op", headers=auth())
    rows = await r.json()
    assert [x["action"] for x in rows] == ["login.failed", "login"]
    assert rows[0]["details"]["remote"] == "127.0.0.1"
    r = await client.get("/api/audit", headers=auth("admin", "410922101"))
    assert r.status == 200 and await r.json() == []  # another township's admin sees none
    r = await client.get("/api/audit", headers=auth("operator", COUNTY))
    assert r.status == 403
    r = await client.get("/api/audit/verify", headers=auth())
    assert (await r.json())["ok"] is True


async def test_whep_view_start_and_stop_are_audited(token: Callable[..., str]) -> None:
    app = build_app(parse_config(topology()))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession() as http:
            viewer = WhepViewer(
                http, f"{base}/api/cameras/town-cam/whep", token("operator", TOWN, "watcher")
            )
            await viewer.start()
            await viewer.wait_frames(3, timeout=20)
            await viewer.stop()
        await asyncio.sleep(0.3)
        rows = await app[AUDIT].rows(COUNTY, actor="watcher")
        assert [r["action"] for r in rows] == ["view.stop", "view.start"]
        assert all(r["target"] == "camera:town-cam" and r["centre"] == TOWN for r in rows)
        assert rows[0]["details"]["session"] == rows[1]["details"]["session"]
    finally:
        await runner.cleanup()
