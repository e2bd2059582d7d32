"""`RollCalls` without sockets: running over centres, who may answer, double answers, the
timeout, closing, the room glue, snapshots, pending checks, the ledger rows and the restart.

Real Database (tmp_path), EventBus, Presence, Rooms and CentreTree
(tests/hub/rollcalls/conftest.py); events are read from the bus's tap.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import pytest

from config.schema import Role
from hub.core.auth import Principal
from hub.core.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from hub.core.scopes import rollcall_targets
from hub.rollcalls.model import MOVES, EntryStatus, RollCall, RollCallEntry, RollCallState
from hub.rollcalls.service import MAX_SNAPSHOT
from hub.rollcalls.store import RollCallLedger
from hub.rooms.model import RoomKind
from signaling.publish import Publication
from tests.hub.rollcalls.conftest import (
    ADMIN,
    DISPATCHER,
    JPEG,
    OTHER_D,
    T2,
    TOWN_D,
    V2,
    V2_T,
    V3,
    V3_T,
    V4,
    V4_T,
    V_DUTY_OP,
    V_OP,
    V_SPARE,
    V_T,
    T,
    V,
    World,
    until,
)

SHORT = 0.05


async def run(
    w: World,
    *codes: str,
    host: Principal = DISPATCHER,
    timeout: float | None = None,
    label: str = "查岗",
) -> RollCall:
    return await w.rollcalls.run(host, w.centres(*codes), timeout=timeout, label=label)


async def ledger_row(w: World, rollcall_id: str) -> tuple[str, str | None, dict[str, str]]:
    saved = await w.rollcalls.ledger.get(rollcall_id)
    assert saved is not None
    return (
        str(saved.state),
        saved.close_reason,
        {c: str(e.status) for c, e in saved.entries.items()},
    )


def statuses(rc: RollCall) -> dict[str, str]:
    return {c: str(e.status) for c, e in rc.entries.items()}


# -- the entry move table -----------------------------------------------------------------------
ALLOWED = {
    (EntryStatus.CHECKING, EntryStatus.ANSWERED),
    (EntryStatus.CHECKING, EntryStatus.NO_ANSWER),
    (EntryStatus.OFFLINE, EntryStatus.ANSWERED),
}


@pytest.mark.parametrize("old", list(EntryStatus))
@pytest.mark.parametrize("new", list(EntryStatus))
def test_entry_moves(old: EntryStatus, new: EntryStatus) -> None:
    entry = RollCallEntry(V, "东关村", old)
    if (old, new) in ALLOWED:
        entry.move("rc1", new)
        assert entry.status is new
    else:
        with pytest.raises(Conflict, match=f"is {old}: not {new}"):
            entry.move("rc1", new)
        assert entry.status is old


def test_move_table_matches_the_documented_one() -> None:
    assert {(a, b) for a, bs in MOVES.items() for b in bs} == ALLOWED


# -- running --------------------------------------------------------------------------------------
async def test_run_checks_duty_terminals_and_marks_the_rest_offline(world: World) -> None:
    world.online(DISPATCHER, V_T, V_SPARE, V_OP, V_DUTY_OP, V2_T)
    rc = await run(world, V, V2, V4, label="城关镇 全部村")
    assert statuses(rc) == {V: "checking", V2: "checking", V4: "offline"}
    assert sorted(rc.entries[V].asked) == ["v-duty-op", "v-t"]  # not the spare nor v-op
    assert rc.entries[V2].asked == ["v2-t"] and rc.entries[V4].asked == []
    assert (rc.state, rc.label, rc.timeout, rc.started_by) == (
        RollCallState.RUNNING,
        "城关镇 全部村",
        30.0,
        "county-d",
    )
    checks = {(e.centre, *e.to_users): e.data for e in world.topics("rollcall.check")}
    assert set(checks) == {(V, "v-t"), (V, "v-duty-op"), (V2, "v2-t")}
    assert checks[(V2, "v2-t")] == {
        "rollcall": rc.id,
        "room": rc.room,
        "centre": V2,
        "from": "county-d",
        "from_centre": "410922",
        "expires_at": rc.expires_at,
        "auto_answer": True,
    }
    room = world.rooms.get(rc.room)
    assert room is not None and room.kind is RoomKind.ROLLCALL
    assert room.host == "county-d" and room.invited_centres == {V, V2, V4}
    assert room.title == "一键查岗 城关镇 全部村"
    [updated] = world.topics("rollcall.updated")
    assert updated.to_users == {"county-d"} and updated.data["centres"] == 3
    assert world.rollcalls.running() == [rc]
    assert world.rollcalls.for_room(rc.room) == rc.id
    assert await ledger_row(world, rc.id) == (
        "running",
        None,
        {V: "checking", V2: "checking", V4: "offline"},
    )


async def test_run_needs_centres_and_respects_max_live(world: World) -> None:
    with pytest.raises(Invalid):
        await run(world)
    await run(world, V)
    await run(world, V2)  # max_live is 2 in the fixture
    rooms = len(world.rooms.active())
    with pytest.raises(Unavailable, match="limit 2"):
        await run(world, V4)
    assert len(world.rooms.active()) == rooms and len(world.rollcalls.running()) == 2


async def test_timeout_argument_overrides_the_default(world: World) -> None:
    rc = await run(world, V, timeout=12.0)
    assert rc.timeout == 12.0 and rc.expires_at == pytest.approx(rc.started + 12.0)


async def test_scope_decides_who_may_run(world: World) -> None:
    # the service trusts its caller; the API checks with rollcall_targets first
    with pytest.raises(Forbidden):
        rollcall_targets(TOWN_D, world.tree, [V3])
    with pytest.raises(Forbidden):
        rollcall_targets(V_T, world.tree, [V])
    centres = rollcall_targets(TOWN_D, world.tree, [V, V2])
    rc = await world.rollcalls.run(TOWN_D, centres, timeout=None, label="")
    assert list(rc.entries) == [V, V2] and rc.started_by_centre == T


# -- answering ---------------------------------------------------------------------------------------
async def test_answer_records_who_how_and_how_fast(world: World) -> None:
    world.online(V_T, V2_T)
    rc = await run(world, V, V2)
    world.published.clear()
    await asyncio.sleep(0.02)
    await world.rollcalls.answer(rc.id, V_T, auto=True)
    e = rc.entries[V]
    assert (e.status, e.answered_by, e.auto) == (EntryStatus.ANSWERED, "v-t", True)
    assert e.answered_at is not None
    assert e.response_time == round(e.answered_at - rc.started, 3)
    assert e.response_time >= 0.02
    assert rc.running
    to_runner, to_centre = world.topics("rollcall.updated")
    assert to_runner.to_users == {"county-d"} and len(to_runner.data["entries"]) == 2
    assert to_centre.to_users == {"v-t"} and to_centre.centre == V
    assert [x["centre"] for x in to_centre.data["entries"]] == [V]  # its own entry only
    assert to_centre.data["answered"] == 1 and to_centre.data["not_answered"] == 1
    row = await world.db.fetchone(
        "SELECT answered, auto, answered_by FROM rollcall_entries WHERE centre = ?", (V,)
    )
    assert row is not None and tuple(row) == (1, 1, "v-t")


@pytest.mark.parametrize(
    ("who", "ok"),
    [
        (V_T, True),  # the duty terminal
        (V_SPARE, True),  # any terminal of the centre
        (V_DUTY_OP, True),  # on the duty list though not a terminal
        (V_OP, False),  # an operator of the centre
        (V3_T, False),  # a terminal of a centre not checked
        (TOWN_D, False),  # the township is not checked
        (Principal("v-d", Role.DISPATCHER, V), False),  # a dispatcher there
    ],
    ids=lambda v: v.user if isinstance(v, Principal) else str(v),
)
async def test_who_may_answer(world: World, who: Principal, ok: bool) -> None:
    world.online(V_T, V2_T)
    rc = await run(world, V, V2)
    if ok:
        await world.rollcalls.answer(rc.id, who)
        assert rc.entries[V].answered_by == who.user and rc.entries[V].auto is False
    else:
        with pytest.raises(Forbidden):
            await world.rollcalls.answer(rc.id, who)
        assert statuses(rc) == {V: "checking", V2: "checking"}


async def test_double_answer_is_conflict(world: World) -> None:
    world.online(V_T, V2_T)
    rc = await run(world, V, V2)
    await world.rollcalls.answer(rc.id, V_T)
    first = rc.entries[V].answered_at
    for again in (V_T, V_SPARE):
        with pytest.raises(Conflict, match="already answered"):
            await world.rollcalls.answer(rc.id, again, auto=True)
    assert rc.entries[V].answered_by == "v-t" and rc.entries[V].answered_at == first


async def test_an_offline_centre_may_still_answer_in_time(world: World) -> None:
    world.online(V_T)
    rc = await run(world, V, V4)
    assert rc.entries[V4].status is EntryStatus.OFFLINE
    world.online(V4_T)  # connects late
    assert [p["centre"] for p in world.rollcalls.pending_for(V4_T)] == [V4]
    await world.rollcalls.answer(rc.id, V4_T)
    assert rc.entries[V4].status is EntryStatus.ANSWERED and rc.entries[V4].asked == []
    assert world.rollcalls.pending_for(V4_T) == []


async def test_every_centre_answering_closes_it(world: World) -> None:
    world.online(V_T, V2_T)
    rc = await run(world, V, V2)
    await world.rollcalls.answer(rc.id, V_T)
    await world.rollcalls.answer(rc.id, V2_T)
    assert (rc.state, rc.close_reason) == (RollCallState.CLOSED, "all_answered")
    assert rc.closed_at is not None
    await until(lambda: world.rollcalls.running() == [])
    assert await ledger_row(world, rc.id) == (
        "closed",
        "all_answered",
        {V: "answered", V2: "answered"},
    )
    with pytest.raises(Conflict, match=r"closed \(all_answered\)"):
        await world.rollcalls.answer(rc.id, V_SPARE)


async def test_unknown_or_invisible_roll_call_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        await world.rollcalls.answer("nope", V_T)
    with pytest.raises(NotFound):
        await world.rollcalls.finish("nope", DISPATCHER)
    with pytest.raises(NotFound):
        await world.rollcalls.get("nope", DISPATCHER)
    rc = await run(world, V2, host=TOWN_D)
    await world.rollcalls.finish(rc.id, TOWN_D)
    with pytest.raises(NotFound):  # a closed one outside the scope does not exist for you
        await world.rollcalls.answer(rc.id, V3_T)
    with pytest.raises(Conflict):
        await world.rollcalls.answer(rc.id, V2_T)


# -- timeout and closing ---------------------------------------------------------------------------
async def test_timeout_marks_no_answer_and_keeps_offline_and_answered(world: World) -> None:
    world.online(V_T, V2_T)
    rc = await run(world, V, V2, V4, timeout=SHORT)
    await world.rollcalls.answer(rc.id, V2_T)
    await until(lambda: not rc.running)
    assert rc.close_reason == "timeout"
    assert statuses(rc) == {V: "no_answer", V2: "answered", V4: "offline"}
    await until(lambda: world.rollcalls.running() == [])
    assert await ledger_row(world, rc.id) == (
        "closed",
        "timeout",
        {V: "no_answer", V2: "answered", V4: "offline"},
    )
    # the close tells each checked centre's people their own entry
    closing = [e for e in world.topics("rollcall.updated") if e.data["state"] == "closed"]
    by_centre = {e.centre: e.to_users for e in closing}
    assert by_centre == {"410922": {"county-d"}, V: {"v-t"}, V2: {"v2-t"}}


async def test_an_admin_of_another_township_cannot_close_a_roll_call_it_cannot_read(
    world: World,
) -> None:
    """Found by the outside check: any admin could close any running roll call."""
    world.online(V_T)
    rc = await run(world, V, host=TOWN_D)  # the first township checks one of its villages
    with pytest.raises(NotFound):
        await world.rollcalls.finish(rc.id, Principal("t2-admin", Role.ADMIN, T2))
    assert rc.running
    await world.rollcalls.finish(rc.id, ADMIN)  # the county admin sees it and may
    assert not rc.running


async def test_finish_by_the_runner_or_an_admin_only(world: World) -> None:
    world.online(V_T)
    rc = await run(world, V, host=TOWN_D)
    for other in (DISPATCHER, OTHER_D, V_T):
        with pytest.raises(Forbidden, match="only town-d"):
            await world.rollcalls.finish(rc.id, other)
    assert rc.running
    await world.rollcalls.finish(rc.id, TOWN_D)
    assert (rc.close_reason, statuses(rc)) == ("closed", {V: "no_answer"})
    with pytest.raises(Conflict):
        await world.rollcalls.finish(rc.id, TOWN_D)
    second = await run(world, V2, host=TOWN_D)
    await world.rollcalls.finish(second.id, ADMIN)
    assert second.close_reason == "closed"


async def test_closing_leaves_the_grid_room_open_until_it_ends(world: World) -> None:
    rc = await run(world, V)
    await world.rollcalls.finish(rc.id, DISPATCHER)
    room = world.rooms.get(rc.room)
    assert room is not None and not room.ended
    assert world.rollcalls.for_room(rc.room) == rc.id  # late publishers still file snapshots
    world.rooms.end(room)
    assert world.rollcalls.for_room(rc.room) is None
    assert rc.close_reason == "closed"  # not changed by the room's end


async def test_the_room_ending_closes_a_running_roll_call(world: World) -> None:
    world.online(V_T)
    rc = await run(world, V)
    room = world.rooms.get(rc.room)
    assert room is not None
    world.rooms.end(room)
    assert (rc.state, rc.close_reason) == (RollCallState.CLOSED, "room_ended")
    await until(lambda: world.rollcalls.running() == [])
    assert await ledger_row(world, rc.id) == ("closed", "room_ended", {V: "no_answer"})


async def test_close_shuts_running_ones_down(world: World) -> None:
    rc = await run(world, V)
    await world.rollcalls.close()
    assert rc.close_reason == "shutdown"
    assert await ledger_row(world, rc.id) == ("closed", "shutdown", {V: "offline"})
    world.rollcalls = world.new_rollcalls()
    await world.rollcalls.start()


async def test_start_closes_roll_calls_left_running(world: World) -> None:
    ledger = RollCallLedger(world.db)
    left = RollCall(
        "left",
        "room-1",
        "county-d",
        "410922",
        "x",
        60.0,
        {
            V: RollCallEntry(V, "东关村", EntryStatus.CHECKING, ["v-t"]),
            V2: RollCallEntry(V2, "西关村", EntryStatus.OFFLINE),
            V4: RollCallEntry(V4, "北关村", EntryStatus.ANSWERED, answered_by="v4-t"),
        },
    )
    done = RollCall(
        "done",
        "room-2",
        "county-d",
        "410922",
        "y",
        60.0,
        {V: RollCallEntry(V, "东关村", EntryStatus.NO_ANSWER)},
        state=RollCallState.CLOSED,
        closed_at=5.0,
        close_reason="timeout",
    )
    for rc in (left, done):
        await ledger.save(ledger.snapshot(rc))
    claimed: list[tuple[str, str]] = []
    restarted = world.new_rollcalls(claim=lambda kind, id_: claimed.append((kind, id_)))
    await restarted.start()
    try:
        assert sorted(claimed) == [("rollcall", "done"), ("rollcall", "left")]
        assert await ledger_row(world, "left") == (
            "closed",
            "interrupted",
            {V: "no_answer", V2: "offline", V4: "answered"},
        )
        again = await restarted.ledger.get("done")
        assert again is not None and (again.closed_at, again.close_reason) == (5.0, "timeout")
        assert restarted.running() == []
    finally:
        await restarted.close()


# -- reading -------------------------------------------------------------------------------------------
async def test_get_and_page_live_then_from_the_ledger(world: World) -> None:
    rc = await run(world, V)
    assert await world.rollcalls.get(rc.id, V_T) is rc
    with pytest.raises(NotFound):
        await world.rollcalls.get(rc.id, V3_T)
    live_two = await run(world, V2)
    await world.rollcalls.finish(rc.id, DISPATCHER)
    await until(lambda: world.rollcalls.running() == [live_two])
    got = await world.rollcalls.get(rc.id, TOWN_D)
    assert got is not rc and got.to_json() == rc.to_json()
    page, total = await world.rollcalls.page(DISPATCHER, 1, 10)
    assert total == 2 and [r.id for r in page] == [live_two.id, rc.id]
    assert page[0] is live_two
    page, total = await world.rollcalls.page(V2_T, 1, 10)
    assert total == 1 and page[0] is live_two


async def test_pending_for_lists_unanswered_checks_of_the_centre(world: World) -> None:
    world.online(V_T, V2_T)
    one = await run(world, V, V2)
    two = await run(world, V)
    assert {p["rollcall"] for p in world.rollcalls.pending_for(V_SPARE)} == {one.id, two.id}
    await world.rollcalls.answer(one.id, V_T)
    assert [p["rollcall"] for p in world.rollcalls.pending_for(V_T)] == [two.id]
    await world.rollcalls.finish(two.id, DISPATCHER)
    assert world.rollcalls.pending_for(V_T) == []
    assert [p["rollcall"] for p in world.rollcalls.pending_for(V2_T)] == [one.id]
    assert world.rollcalls.pending_for(V3_T) == []


# -- snapshots -------------------------------------------------------------------------------------
async def test_attach_snapshot_stores_the_file_and_the_ledger_path(world: World) -> None:
    world.online(V_T)
    rc = await run(world, V, V2)
    path = await world.rollcalls.attach_snapshot(rc.id, V, JPEG)
    assert path == f"rollcall/{rc.id}/{V}.jpg"
    assert (world.data_dir / path).read_bytes() == JPEG
    assert not list((world.data_dir / "rollcall" / rc.id).glob("*.tmp"))
    assert rc.entries[V].snapshot == path and rc.entries[V].to_json()["has_snapshot"] is True
    assert rc.entries[V2].to_json()["has_snapshot"] is False
    row = await world.db.fetchone(
        "SELECT snapshot FROM rollcall_entries WHERE rollcall = ? AND centre = ?", (rc.id, V)
    )
    assert row is not None and row["snapshot"] == path
    assert await world.rollcalls.read_snapshot(rc, V) == JPEG
    second = JPEG + b"\x00"
    await world.rollcalls.attach_snapshot(rc.id, V, second)  # replaces the picture
    assert await world.rollcalls.read_snapshot(rc, V) == second


async def test_a_snapshot_after_the_close_goes_to_the_ledger(world: World) -> None:
    rc = await run(world, V)
    await world.rollcalls.finish(rc.id, DISPATCHER)
    await until(lambda: world.rollcalls.running() == [])
    path = await world.rollcalls.attach_snapshot(rc.id, V, JPEG)
    saved = await world.rollcalls.ledger.get(rc.id)
    assert saved is not None and saved.entries[V].snapshot == path
    assert saved.state is RollCallState.CLOSED  # the row is not rewritten as running
    assert await world.rollcalls.read_snapshot(saved, V) == JPEG


@pytest.mark.parametrize(
    ("rollcall_id", "centre", "jpeg"),
    [
        ("../etc", V, JPEG),
        ("a/b", V, JPEG),
        ("x" * 65, V, JPEG),
        ("", V, JPEG),
        ("{id}", "../x", JPEG),
        ("{id}", "41092210020a", JPEG),
        ("{id}", V, b"\x89PNG\r\n\x1a\n"),
        ("{id}", V, b""),
        ("{id}", V, b"\xff"),
        ("{id}", V, b"\xff\xd8" + b"\x00" * (MAX_SNAPSHOT - 1)),
    ],
    ids=[
        "dotdot",
        "slash",
        "long id",
        "empty id",
        "centre path",
        "centre letters",
        "png",
        "empty",
        "one byte",
        "one byte too big",
    ],
)
async def test_attach_snapshot_refuses_bad_input(
    world: World, rollcall_id: str, centre: str, jpeg: bytes
) -> None:
    rc = await run(world, V)
    with pytest.raises(Invalid):
        await world.rollcalls.attach_snapshot(rollcall_id.format(id=rc.id), centre, jpeg)
    assert rc.entries[V].snapshot is None
    assert not (world.data_dir / "rollcall").exists()


async def test_attach_snapshot_of_the_largest_size_is_kept(world: World) -> None:
    rc = await run(world, V)
    big = b"\xff\xd8" + b"\x00" * (MAX_SNAPSHOT - 2)
    await world.rollcalls.attach_snapshot(rc.id, V, big)
    assert (world.data_dir / "rollcall" / rc.id / f"{V}.jpg").stat().st_size == MAX_SNAPSHOT


async def test_attach_snapshot_unknown_roll_call_or_centre(world: World) -> None:
    with pytest.raises(NotFound):
        await world.rollcalls.attach_snapshot("nope", V, JPEG)
    rc = await run(world, V)
    with pytest.raises(NotFound, match=V3):
        await world.rollcalls.attach_snapshot(rc.id, V3, JPEG)


async def test_read_snapshot_not_found(world: World, tmp_path: Path) -> None:
    rc = await run(world, V, V2)
    with pytest.raises(NotFound):
        await world.rollcalls.read_snapshot(rc, V)  # none taken
    with pytest.raises(NotFound):
        await world.rollcalls.read_snapshot(rc, V3)  # not checked
    path = await world.rollcalls.attach_snapshot(rc.id, V2, JPEG)
    (world.data_dir / path).unlink()
    with pytest.raises(NotFound, match="gone"):
        await world.rollcalls.read_snapshot(rc, V2)


class _NoPicture:
    """A publication whose video never sends a keyframe."""

    class _Relay:
        info = None

        async def wait_keyframe(self, timeout: float) -> bool:
            return False

    video = _Relay()


async def test_seat_published_takes_a_snapshot_for_roll_call_rooms_only(world: World) -> None:
    world.online(V_T)
    rc = await run(world, V)
    room = world.rooms.get(rc.room)
    assert room is not None
    host_seat = world.rooms.join(room, DISPATCHER)
    seat = world.rooms.join(room, V_T)
    publication = cast(Publication, _NoPicture())
    assert world.rollcalls.seat_published(room, host_seat, publication) is None
    meeting = world.rooms.create(DISPATCHER, centres=[V])
    other_seat = world.rooms.join(meeting, V_T)
    assert world.rollcalls.seat_published(meeting, other_seat, publication) is None
    stray = world.rooms.create(DISPATCHER, kind=RoomKind.ROLLCALL, centres=[V])
    stray_seat = world.rooms.join(stray, V_T)
    assert world.rollcalls.seat_published(stray, stray_seat, publication) is None
    job = world.rollcalls.seat_published(room, seat, publication)
    assert job is not None
    await job  # no keyframe: nothing filed
    assert rc.entries[V].snapshot is None
    # the hook is what Rooms calls
    results = world.rooms.on_published.emit(room, seat, publication)
    assert len(results) == 1 and results[0] is not None
    results[0].close()
