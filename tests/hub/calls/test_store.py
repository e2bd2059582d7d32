"""`CallHistory` on a real SQLite file: round trips, upserts, paging and scope, and the
closing of calls a previous run left open."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.calls.model import Call, CallState, CallTarget, TargetState
from hub.calls.store import CallHistory
from hub.core.db import Database
from tests.hub.calls.conftest import OC, T2, V2, V3, C, T, V


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "calls.sqlite3")
    await database.open()
    yield database
    await database.close()


@pytest.fixture
async def history(db: Database) -> CallHistory:
    h = CallHistory(db)
    assert await h.open() == 0
    return h


def make_call(
    call_id: str,
    caller_centre: str = C,
    targets: tuple[str, ...] = (V,),
    created: float = 1000.0,
    state: CallState = CallState.RINGING,
) -> Call:
    return Call(
        id=call_id,
        room=f"room-{call_id}",
        caller=f"user-{caller_centre}",
        caller_role="dispatcher",
        caller_centre=caller_centre,
        title=f"呼叫 {call_id}",
        timeout=30.0,
        targets=[CallTarget(code, f"中心{code[-3:]}") for code in targets],
        created=created,
        state=state,
    )


async def save(history: CallHistory, call: Call) -> None:
    await history.save(history.snapshot(call))


async def test_round_trip_keeps_every_field(history: CallHistory) -> None:
    call = make_call("c1", targets=(V, V2))
    call.targets.append(CallTarget(V3, "南街村", user="v3-term"))
    call.targets[0].rung = ["v-term", "东关值班"]
    call.targets[0].move(call.id, TargetState.ACCEPTED, by="v-term")
    call.targets[0].ended_at = call.targets[0].accepted_at + 12.5  # type: ignore[operator]
    call.targets[1].move(call.id, TargetState.DECLINED, by="v2-term")
    call.state, call.ended_at, call.end_reason = CallState.ENDED, 2000.0, "hangup"
    await save(history, call)
    got = await history.get("c1")
    assert got == call
    assert got is not None and got.to_json() == call.to_json()
    assert got.targets[0].duration == 12.5 and got.targets[2].user == "v3-term"


async def test_rows_as_stored(history: CallHistory, db: Database) -> None:
    call = make_call("c1", targets=(V,))
    call.targets[0].rung = ["东关值班"]
    await save(history, call)
    head = await db.fetchone("SELECT * FROM calls WHERE id = 'c1'")
    assert head is not None and (head["state"], head["answered"]) == ("ringing", 0)
    target = await db.fetchone("SELECT * FROM call_targets WHERE call = 'c1'")
    assert target is not None
    assert target["rung"] == '["东关值班"]'  # JSON, not \\u escapes
    assert (target["seq"], target["centre"], target["user"]) == (0, V, None)
    call.targets[0].move(call.id, TargetState.ACCEPTED, by="东关值班")
    call.state = CallState.ACTIVE
    await save(history, call)
    head = await db.fetchone("SELECT state, answered FROM calls WHERE id = 'c1'")
    assert head is not None and (head["state"], head["answered"]) == ("active", 1)


async def test_save_is_an_upsert_that_replaces_the_targets(
    history: CallHistory, db: Database
) -> None:
    call = make_call("c1", targets=(V, V2, V3))
    await save(history, call)
    call.targets = call.targets[:1]
    call.title = "改过"
    await save(history, call)
    rows = await db.fetchall("SELECT seq, centre FROM call_targets WHERE call = 'c1'")
    assert [(r["seq"], r["centre"]) for r in rows] == [(0, V)]
    count = await db.fetchone("SELECT COUNT(*) AS n FROM calls")
    assert count is not None and count["n"] == 1
    got = await history.get("c1")
    assert got is not None and got.title == "改过" and len(got.targets) == 1


async def test_get_unknown_is_none_and_ids_lists_everything(history: CallHistory) -> None:
    assert await history.get("nope") is None
    assert await history.ids() == []
    for i in range(3):
        await save(history, make_call(f"c{i}"))
    assert sorted(await history.ids()) == ["c0", "c1", "c2"]


async def test_page_newest_first_with_total(history: CallHistory) -> None:
    for i in range(7):
        await save(history, make_call(f"c{i}", created=1000.0 + i))
    seen: list[str] = []
    for page in (1, 2, 3):
        calls, total = await history.page(C, page, 3)
        assert total == 7
        assert len(calls) == (3 if page < 3 else 1)
        seen += [c.id for c in calls]
    assert seen == [f"c{i}" for i in reversed(range(7))]
    beyond, total = await history.page(C, 4, 3)
    assert beyond == [] and total == 7


async def test_page_carries_the_targets_of_each_call(history: CallHistory) -> None:
    await save(history, make_call("a", targets=(V, V2), created=1.0))
    await save(history, make_call("b", targets=(V3,), created=2.0))
    calls, _ = await history.page(C, 1, 10)
    assert [(c.id, [t.centre for t in c.targets]) for c in calls] == [
        ("b", [V3]),
        ("a", [V, V2]),
    ]


async def test_page_ties_on_created_are_ordered_by_id(history: CallHistory) -> None:
    for call_id in ("m", "a", "z"):
        await save(history, make_call(call_id, created=5.0))
    calls, _ = await history.page(C, 1, 10)
    assert [c.id for c in calls] == ["a", "m", "z"]


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        (C, ["county-to-t2", "t-to-county", "county-to-v", "v-to-t"]),
        (T, ["t-to-county", "county-to-v", "v-to-t"]),
        (V, ["county-to-v", "v-to-t"]),
        (T2, ["county-to-t2"]),
        (V2, []),
        (OC, ["other-county"]),
    ],
)
async def test_page_scope_is_caller_or_any_target_at_or_below(
    history: CallHistory, scope: str, expected: list[str]
) -> None:
    await save(history, make_call("v-to-t", caller_centre=V, targets=(T,), created=1.0))
    await save(history, make_call("county-to-v", caller_centre=C, targets=(V,), created=2.0))
    await save(history, make_call("t-to-county", caller_centre=T, targets=(C,), created=3.0))
    await save(history, make_call("county-to-t2", caller_centre=C, targets=(T2,), created=4.0))
    await save(history, make_call("other-county", caller_centre=OC, targets=(OC,), created=5.0))
    calls, total = await history.page(scope, 1, 10)
    assert [c.id for c in calls] == expected
    assert total == len(expected)


async def test_open_closes_ringing_and_active_calls_as_interrupted(
    history: CallHistory, db: Database
) -> None:
    ringing = make_call("ringing", targets=(V, V2))
    active = make_call("active", targets=(V, V2, V3), state=CallState.ACTIVE)
    active.targets[0].move("active", TargetState.ACCEPTED, by="v-term")
    active.targets[1].move("active", TargetState.DECLINED, by="v2-term")
    ended = make_call("ended", state=CallState.ENDED)
    ended.targets[0].move("ended", TargetState.MISSED)
    ended.ended_at, ended.end_reason = 1234.0, "no_answer"
    for call in (ringing, active, ended):
        await save(history, call)

    again = CallHistory(db)
    assert await again.open() == 2
    got = {c: await again.get(c) for c in ("ringing", "active", "ended")}
    r, a, e = got["ringing"], got["active"], got["ended"]
    assert r is not None and a is not None and e is not None
    assert (r.state, r.end_reason) == (CallState.ENDED, "interrupted")
    assert [t.state for t in r.targets] == ["missed", "missed"]
    assert all(t.settled_at == r.ended_at for t in r.targets)
    assert (a.state, a.end_reason) == (CallState.ENDED, "interrupted")
    assert [t.state for t in a.targets] == ["accepted", "declined", "missed"]
    assert a.targets[0].duration is None and a.targets[0].answered_by == "v-term"
    assert a.targets[1].settled_at == active.targets[1].settled_at  # settled ones untouched
    assert e.to_json() == ended.to_json()
    assert await CallHistory(db).open() == 0  # nothing left to close; migrations ran once
    versions = await db.fetchone("SELECT version FROM schema_versions WHERE component = 'calls'")
    assert versions is not None and versions["version"] == 1


async def test_the_snapshot_is_taken_when_asked_not_when_written(history: CallHistory) -> None:
    call = make_call("c1")
    rows = history.snapshot(call)
    call.targets[0].move("c1", TargetState.ACCEPTED, by="v-term")  # after the snapshot
    await history.save(rows)
    got = await history.get("c1")
    assert got is not None and got.targets[0].state is TargetState.RINGING
