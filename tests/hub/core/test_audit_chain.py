"""The audit log's hash chain: exact hashes, filters, and `check_chain` naming the first
row that was edited, removed or forged."""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.core.audit import (
    GENESIS,
    AuditLog,
    ChainBreak,
    canonical,
    check_chain,
    row_fields,
    row_hash,
)
from hub.core.db import Database
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, VILLAGE


@pytest.fixture
async def audit(tmp_path: Path) -> AsyncIterator[AuditLog]:
    db = Database(tmp_path / "zzhub.sqlite3")
    await db.open()
    log = AuditLog(db)
    await log.start()
    try:
        yield log
    finally:
        await log.close()
        await db.close()


async def filled(audit: AuditLog, n: int = 5) -> Path:
    for i in range(1, n + 1):
        await audit.append(f"u{i}", "view.start", f"camera:c{i}", {"i": i}, TOWN)
    return audit.db.path


def open_raw(path: Path) -> sqlite3.Connection:
    """What someone with file access does: a connection with the triggers dropped."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    conn.commit()
    return conn


def test_canonical_json_is_sorted_compact_and_keeps_chinese() -> None:
    assert canonical({"b": 1, "a": "镇", "c": [1, 2]}) == '{"a":"镇","b":1,"c":[1,2]}'.encode()


def test_row_hash_is_sha256_of_prev_then_canonical_fields() -> None:
    fields = {"id": 1, "actor": "li"}
    expected = hashlib.sha256(GENESIS.encode() + b'{"actor":"li","id":1}').hexdigest()
    assert row_hash(GENESIS, fields) == expected
    assert row_hash("f" * 64, fields) != expected


def test_row_fields_parses_details_and_keeps_text_that_is_not_json() -> None:
    row = {
        "id": 3,
        "at_ms": 10,
        "actor": "a",
        "action": "x",
        "target": "t",
        "centre": TOWN,
        "details": '{"k":[1]}',
        "prev": "p",
        "hash": "h",
    }
    assert row_fields(row) == {
        "id": 3,
        "at_ms": 10,
        "actor": "a",
        "action": "x",
        "target": "t",
        "centre": TOWN,
        "details": {"k": [1]},
    }
    assert row_fields({**row, "details": "not json"})["details"] == "not json"


async def test_rows_link_genesis_then_each_previous_hash(audit: AuditLog) -> None:
    await filled(audit, 3)
    rows = list(reversed(await audit.rows(COUNTY)))
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert rows[0]["prev"] == GENESIS
    assert rows[1]["prev"] == rows[0]["hash"] and rows[2]["prev"] == rows[1]["hash"]
    for row in rows:
        fields = {
            k: row[k] for k in ("id", "at_ms", "actor", "action", "target", "centre", "details")
        }
        assert row["hash"] == row_hash(row["prev"], fields)
    assert rows[2]["details"] == {"i": 3} and rows[2]["actor"] == "u3"
    assert audit.appended == 3


async def test_append_returns_ids_and_keeps_odd_details(audit: AuditLog) -> None:
    first = await audit.append("li", "export", "case:1", {"path": Path("/x/y"), "n": 1}, VILLAGE)
    second = await audit.append("li", "export", "case:1", {"镇": "城关", "list": (1, 2)}, VILLAGE)
    assert (first, second) == (1, 2)
    rows = await audit.rows(VILLAGE)
    assert rows[0]["details"] == {"list": [1, 2], "镇": "城关"}
    assert rows[1]["details"] == {"n": 1, "path": "/x/y"}  # default=str
    assert await audit.verify() == (2, None)


async def test_rows_filters_and_paging(audit: AuditLog) -> None:
    await audit.append("boss", "login", "user:boss", {}, COUNTY)
    await audit.append("wang", "view.start", "camera:a", {}, TOWN)
    await audit.append("li", "view.start", "camera:b", {}, VILLAGE)
    await audit.append("ma", "view.start", "camera:c", {}, OTHER_TOWN)
    await audit.append("wang", "login", "user:wang", {}, TOWN)
    assert [r["id"] for r in await audit.rows(COUNTY)] == [5, 4, 3, 2, 1]
    assert [r["id"] for r in await audit.rows(TOWN)] == [5, 3, 2]
    assert [r["id"] for r in await audit.rows(TOWN, before=5)] == [3, 2]
    assert [r["id"] for r in await audit.rows(COUNTY, limit=2)] == [5, 4]
    assert [r["id"] for r in await audit.rows(COUNTY, action="login")] == [5, 1]
    assert [r["id"] for r in await audit.rows(COUNTY, actor="wang")] == [5, 2]
    assert [r["id"] for r in await audit.rows(TOWN, action="view.start", actor="li")] == [3]
    assert await audit.rows(VILLAGE, actor="wang") == []


async def test_empty_chain_is_clean(audit: AuditLog) -> None:
    assert await audit.verify() == (0, None)


async def test_record_is_written_by_the_task_in_order(audit: AuditLog) -> None:
    audit.record("a", "one", "t", {}, TOWN)
    audit.record("b", "two", "t", {}, TOWN)
    await audit.close()
    assert [r["action"] for r in await audit.rows(TOWN)] == ["two", "one"]
    assert audit.lost == 0
    assert await audit.verify() == (2, None)


async def test_record_before_start_is_lost_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(tmp_path / "z.sqlite3")
    await db.open()
    log = AuditLog(db)
    with caplog.at_level(logging.ERROR, logger="hub.core.audit"):
        log.record("li", "login", "user:li", {}, TOWN)
    assert log.lost == 1
    assert "audit log not running: li login user:li lost" in caplog.text
    await db.close()


async def test_edited_content_names_that_row(audit: AuditLog) -> None:
    path = await filled(audit)
    conn = open_raw(path)
    conn.execute("UPDATE audit_log SET details = ? WHERE id = 2", (json.dumps({"i": 99}),))
    conn.commit()
    assert check_chain(conn) == (2, ChainBreak(2, "its content does not match its hash"))
    conn.close()


@pytest.mark.parametrize("column", ["actor", "action", "target", "centre", "at_ms"])
async def test_every_hashed_column_is_covered(audit: AuditLog, column: str) -> None:
    path = await filled(audit, 3)
    conn = open_raw(path)
    value: object = 1 if column == "at_ms" else "forged"
    conn.execute(f"UPDATE audit_log SET {column} = ? WHERE id = 3", (value,))
    conn.commit()
    assert check_chain(conn) == (3, ChainBreak(3, "its content does not match its hash"))
    conn.close()


async def test_removed_middle_row_is_named(audit: AuditLog) -> None:
    path = await filled(audit)
    conn = open_raw(path)
    conn.execute("DELETE FROM audit_log WHERE id = 3")
    conn.commit()
    assert check_chain(conn) == (3, ChainBreak(3, "row 3 is missing"))
    conn.close()


async def test_removed_first_row_breaks_the_link_to_genesis(audit: AuditLog) -> None:
    path = await filled(audit)
    conn = open_raw(path)
    conn.execute("DELETE FROM audit_log WHERE id = 1")
    conn.commit()
    assert check_chain(conn) == (
        1,
        ChainBreak(2, "its prev hash does not match the row before"),
    )
    conn.close()


async def test_rehashed_edit_is_caught_at_the_next_row(audit: AuditLog) -> None:
    path = await filled(audit)
    conn = open_raw(path)
    row = conn.execute("SELECT * FROM audit_log WHERE id = 2").fetchone()
    fields = {**row_fields(row), "actor": "mallory"}
    conn.execute(
        "UPDATE audit_log SET actor = 'mallory', hash = ? WHERE id = 2",
        (row_hash(row["prev"], fields),),
    )
    conn.commit()
    assert check_chain(conn) == (3, ChainBreak(3, "its prev hash does not match the row before"))
    conn.close()


async def test_forged_row_with_a_wrong_prev_is_named(audit: AuditLog) -> None:
    path = await filled(audit, 2)
    conn = open_raw(path)
    fields = {
        "id": 3,
        "at_ms": 1,
        "actor": "x",
        "action": "y",
        "target": "z",
        "centre": TOWN,
        "details": {},
    }
    conn.execute(
        "INSERT INTO audit_log VALUES (3, 1, 'x', 'y', 'z', ?, '{}', ?, ?)",
        (TOWN, GENESIS, row_hash(GENESIS, fields)),
    )
    conn.commit()
    assert check_chain(conn) == (3, ChainBreak(3, "its prev hash does not match the row before"))
    conn.close()


async def test_appends_after_a_clean_check_keep_the_chain(audit: AuditLog) -> None:
    await filled(audit, 2)
    assert await audit.verify() == (2, None)
    await audit.append("z", "late", "t", {}, TOWN)
    assert await audit.verify() == (3, None)
