"""`Calls` without sockets: the call state machine, multi-party calls, the ring timeout,
max_live, who may answer, the rooms glue, presence, pending rings and the restart.

Real Database (tmp_path), EventBus, Presence, Rooms and CentreTree (tests/hub/calls/conftest.py);
events are read from the bus's tap, history from the SQLite rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from config.schema import Role
from hub.calls.model import MOVES, Call, CallState, CallTarget, TargetState
from hub.calls.store import CallHistory
from hub.core.auth import Principal
from hub.core.errors import Conflict, Forbidden, HubError, Invalid, NotFound, Unavailable
from hub.core.presence import Status
from hub.core.scopes import call_targets
from hub.rooms.model import RoomKind
from tests.hub.calls.conftest import (
    ADMIN,
    DISPATCHER,
    OUTSIDER,
    T2,
    TOWN_D,
    V2,
    V2_TERM,
    V3,
    V3_TERM,
    V_OP,
    V_TERM,
    T,
    V,
    World,
    until,
)

SHORT = 0.05


async def place(
    w: World,
    *codes: str,
    people: tuple[tuple[str, str], ...] = (),
    caller: Principal = DISPATCHER,
    timeout: float | None = None,
    title: str = "",
) -> Call:
    return await w.calls.place(
        caller,
        [w.centre(c) for c in codes],
        [(name, w.centre(code)) for name, code in people],
        timeout=timeout,
        title=title,
    )


async def row_state(w: World, call_id: str) -> tuple[str, str | None, list[str]]:
    saved = await w.calls.history.get(call_id)
    assert saved is not None
    return str(saved.state), saved.end_reason, [str(t.state) for t in saved.targets]


# -- the target move table -------------------------------------------------------------------
@pytest.mark.parametrize("old", list(TargetState))
@pytest.mark.parametrize("new", list(TargetState))
def test_target_moves_only_out_of_ringing(old: TargetState, new: TargetState) -> None:
    target = CallTarget(V, "东关村", state=old)
    if old is TargetState.RINGING and new is not TargetState.RINGING:
        target.move("c1", new, by="v-term")
        assert target.state is new and target.settled_at is not None
        assert target.answered_by == (
            "v-term" if new in (TargetState.ACCEPTED, TargetState.DECLINED) else None
        )
        assert (target.accepted_at is not None) is (new is TargetState.ACCEPTED)
    else:
        with pytest.raises(Conflict, match=f"is {old}: it cannot become {new}"):
            target.move("c1", new, by="v-term")
        assert target.state is old and target.settled_at is None


def test_move_table_has_no_way_out_of_a_settled_target() -> None:
    assert set(MOVES) == {TargetState.RINGING}


# -- the call state machine, one target ---------------------------------------------------------
Step = Callable[[World, Call], Awaitable[object]]


async def _accept(w: World, call: Call) -> object:
    return await w.calls.accept(call.id, V_TERM)


async def _decline(w: World, call: Call) -> object:
    return await w.calls.decline(call.id, V_TERM)


async def _cancel(w: World, call: Call) -> object:
    return await w.calls.cancel(call.id, DISPATCHER)


async def _hangup(w: World, call: Call) -> object:
    return await w.calls.hangup(call.id, DISPATCHER)


async def _timeout(w: World, call: Call) -> object:
    await until(lambda: not call.ringing)
    return None


async def _room_end(w: World, call: Call) -> object:
    room = w.rooms.get(call.room)
    assert room is not None
    w.rooms.end(room)
    return None


STEPS: dict[str, Step] = {
    "accept": _accept,
    "decline": _decline,
    "cancel": _cancel,
    "hangup": _hangup,
    "timeout": _timeout,
    "room_end": _room_end,
}
# steps → (call state, end reason, target state)
MACHINE = [
    (("accept",), "active", None, "accepted"),
    (("decline",), "ended", "declined", "declined"),
    (("cancel",), "ended", "cancelled", "cancelled"),
    (("timeout",), "ended", "no_answer", "missed"),
    (("hangup",), "ended", "hangup", "cancelled"),
    (("room_end",), "ended", "room_ended", "cancelled"),
    (("accept", "hangup"), "ended", "hangup", "accepted"),
    (("accept", "room_end"), "ended", "room_ended", "accepted"),
    (("accept", "timeout"), "active", None, "accepted"),
]


@pytest.mark.parametrize(
    ("steps", "state", "reason", "target"),
    [pytest.param(*m, id="-".join(m[0])) for m in MACHINE],
)
async def test_call_state_machine(
    world: World, steps: tuple[str, ...], state: str, reason: str | None, target: str
) -> None:
    world.online(DISPATCHER, V_TERM)
    call = await place(world, V, timeout=SHORT if "timeout" in steps else None)
    assert call.state is CallState.RINGING and [t.state for t in call.targets] == ["ringing"]
    for step in steps:
        await STEPS[step](world, call)
    if "timeout" in steps and state == "active":
        await asyncio.sleep(3 * SHORT)  # the timer has nothing left to miss
    assert (str(call.state), call.end_reason, str(call.targets[0].state)) == (
        state,
        reason,
        target,
    )
    if state == "ended":
        assert call.ended_at is not None
        await until(lambda: call not in world.calls.live())
        assert await row_state(world, call.id) == (state, reason, [target])
        room = world.rooms.get(call.room)
        assert room is not None and room.ended
    else:
        assert call in world.calls.live()
        assert await row_state(world, call.id) == (state, None, [target])


ILLEGAL = [
    # (first step by v-term or None, actor, action, error)
    ("accept", V_TERM, "accept", Conflict),
    ("accept", V_TERM, "decline", Conflict),
    ("decline", V_TERM, "accept", Conflict),
    ("decline", V_TERM, "decline", Conflict),
    (None, DISPATCHER, "accept", Forbidden),
    (None, DISPATCHER, "decline", Forbidden),
    (None, V3_TERM, "accept", Forbidden),
    (None, V3_TERM, "decline", Forbidden),
    (None, V_TERM, "cancel", Forbidden),
    (None, V_TERM, "hangup", Forbidden),
    (None, TOWN_D, "cancel", Forbidden),
    (None, TOWN_D, "hangup", Forbidden),
    ("accept", V_TERM, "cancel", Forbidden),
]


@pytest.mark.parametrize(
    ("first", "actor", "action", "error"),
    [pytest.param(*c, id=f"{c[0]}-then-{c[1].user}-{c[2]}") for c in ILLEGAL],
)
async def test_illegal_moves_are_refused_and_change_nothing(
    world: World, first: str | None, actor: Principal, action: str, error: type[HubError]
) -> None:
    world.online(DISPATCHER, V_TERM, V2_TERM, V3_TERM)
    call = await place(world, V, V2)  # V2 keeps the call alive after V declines
    if first == "accept":
        await world.calls.accept(call.id, V_TERM)
    elif first == "decline":
        await world.calls.decline(call.id, V_TERM)
    before = call.to_json()
    updates = len(world.topics("call.updated"))
    with pytest.raises(error):
        await getattr(world.calls, action)(call.id, actor)
    assert call.to_json() == before
    assert len(world.topics("call.updated")) == updates


async def test_cancel_with_nobody_ringing_is_conflict(world: World) -> None:
    world.online(DISPATCHER, V_TERM, V2_TERM)
    call = await place(world, V, V2)
    await world.calls.accept(call.id, V_TERM)
    await world.calls.accept(call.id, V2_TERM)
    with pytest.raises(Conflict, match="hang up instead"):
        await world.calls.cancel(call.id, DISPATCHER)
    assert call.state is CallState.ACTIVE


@pytest.mark.parametrize("action", ["accept", "decline", "cancel", "hangup"])
async def test_every_move_on_an_ended_call_is_conflict(world: World, action: str) -> None:
    world.online(DISPATCHER, V_TERM)
    call = await place(world, V)
    await world.calls.cancel(call.id, DISPATCHER)
    await until(lambda: call not in world.calls.live())  # now only in the history
    actor = V_TERM if action in ("accept", "decline") else DISPATCHER
    with pytest.raises(Conflict, match=r"has ended \(cancelled\)"):
        await getattr(world.calls, action)(call.id, actor)


@pytest.mark.parametrize("action", ["accept", "decline", "cancel", "hangup"])
async def test_unknown_or_invisible_call_is_not_found(world: World, action: str) -> None:
    with pytest.raises(NotFound):
        await getattr(world.calls, action)("no-such-call", DISPATCHER)
    world.online(DISPATCHER, V_TERM)
    call = await place(world, V)
    await world.calls.hangup(call.id, DISPATCHER)
    with pytest.raises(NotFound):  # another county does not learn the call exists
        await getattr(world.calls, action)(call.id, OUTSIDER)


async def test_admin_may_cancel_and_hang_up_anyones_call(world: World) -> None:
    world.online(TOWN_D, V_TERM, V2_TERM)
    one = await place(world, V, caller=TOWN_D)
    await world.calls.cancel(one.id, ADMIN)
    assert one.end_reason == "cancelled"
    two = await place(world, V2, caller=TOWN_D)
    await world.calls.accept(two.id, V2_TERM)
    await world.calls.hangup(two.id, ADMIN)
    assert two.end_reason == "hangup"


async def test_an_admin_of_another_township_cannot_end_a_county_call(world: World) -> None:
    """Found by the outside check: any admin could hang up or cancel any live call."""
    other_admin = Principal("t2-admin", Role.ADMIN, T2)
    world.online(DISPATCHER, V_TERM)
    call = await place(world, V)  # the county dispatcher rings a village of the first township
    for action in ("cancel", "hangup"):
        with pytest.raises(NotFound):  # it cannot read the call, so it does not exist for it
            await getattr(world.calls, action)(call.id, other_admin)
    assert not call.ended
    await world.calls.cancel(call.id, ADMIN)  # the county admin sees it and may
    assert call.end_reason == "cancelled"


# -- placing -------------------------------------------------------------------------------------
async def test_place_needs_a_target(world: World) -> None:
    with pytest.raises(Invalid):
        await world.calls.place(DISPATCHER, [], [])
    assert world.calls.live() == []
    assert world.rooms.active() == []


async def test_place_opens_a_call_room_and_rings_who_is_online(world: World) -> None:
    world.online(DISPATCHER, V_TERM, V_OP, V2_TERM)
    call = await place(world, V, people=(("v2-term", V2),))
    room = world.rooms.get(call.room)
    assert room is not None and room.kind is RoomKind.CALL and room.host == "county-d"
    assert room.invited_centres == {V} and room.invited_users == {"v2-term"}
    assert call.title == "county-d 呼叫 东关村、v2-term"
    assert call.timeout == 30.0 and call.caller_role == "dispatcher"
    centre_target, person_target = call.targets
    assert sorted(centre_target.rung) == ["v-op", "v-term"]
    assert person_target.user == "v2-term" and person_target.rung == ["v2-term"]
    ringing = {(e.centre, *e.to_users): e.data for e in world.topics("call.ringing")}
    assert set(ringing) == {(V, "v-term"), (V, "v-op"), (V2, "v2-term")}
    assert ringing[(V, "v-term")]["auto_answer"] is True  # a duty terminal
    assert ringing[(V, "v-op")]["auto_answer"] is False
    assert ringing[(V2, "v2-term")]["target"] == "v2-term"
    assert ringing[(V, "v-term")]["expires_at"] == call.expires_at
    [updated] = world.topics("call.updated")
    assert updated.to_users == {"county-d", "v-term", "v-op", "v2-term"}
    assert updated.data["state"] == "ringing"
    assert await row_state(world, call.id) == ("ringing", None, ["ringing", "ringing"])


async def test_the_caller_is_not_rung_at_its_own_centre(world: World) -> None:
    world.online(TOWN_D, Principal("town-clerk", TOWN_D.role, T))
    call = await place(world, T, caller=TOWN_D)
    assert call.targets[0].rung == ["town-clerk"]


async def test_an_offline_person_is_not_rung_but_sees_the_ring_on_connecting(world: World) -> None:
    world.online(DISPATCHER)
    call = await place(world, people=(("v-term", V),))
    assert call.targets[0].rung == [] and world.topics("call.ringing") == []
    assert world.calls.pending_for(V_TERM) == [call.ringing_event(call.targets[0], None)]  # offline
    world.online(V_TERM)
    [pending] = world.calls.pending_for(V_TERM)
    assert pending["call"] == call.id and pending["status"] == "online"
    assert pending["auto_answer"] is True and pending["busy"] is False
    assert world.calls.pending_for(DISPATCHER) == []  # the caller is not rung
    assert world.calls.pending_for(V_OP) == []  # the call names v-term only


async def test_pending_for_drops_settled_targets(world: World) -> None:
    world.online(DISPATCHER, V_TERM, V2_TERM)
    call = await place(world, V, V2)
    assert [p["centre"] for p in world.calls.pending_for(V_TERM)] == [V]
    await world.calls.decline(call.id, V_TERM)
    assert world.calls.pending_for(V_TERM) == []
    assert [p["centre"] for p in world.calls.pending_for(V2_TERM)] == [V2]


async def test_a_busy_person_is_rung_marked_busy(world: World) -> None:
    world.online(DISPATCHER, TOWN_D, V_TERM)
    first = await place(world, V, caller=TOWN_D)
    await world.calls.accept(first.id, V_TERM)
    world.published.clear()
    await place(world, people=(("v-term", V),))
    [ring] = world.topics("call.ringing")
    assert ring.data["busy"] is True and ring.data["status"] == "in_call"


async def test_timeout_argument_overrides_the_ring_timeout(world: World) -> None:
    world.online(DISPATCHER)
    call = await place(world, V, timeout=7.5, title="紧急")
    assert call.timeout == 7.5 and call.title == "紧急"
    assert call.expires_at == pytest.approx(call.created + 7.5)


async def test_max_live_refuses_then_frees_a_slot(world: World) -> None:
    world.online(DISPATCHER)
    calls = [await place(world, V) for _ in range(3)]  # the fixture's max_live is 3
    rooms = len(world.rooms.active())
    with pytest.raises(Unavailable, match="limit 3"):
        await place(world, V2)
    assert len(world.rooms.active()) == rooms  # no room left behind
    await world.calls.hangup(calls[0].id, DISPATCHER)
    await until(lambda: len(world.calls.live()) == 2)
    assert (await place(world, V2)).targets[0].centre == V2


async def test_scope_decides_who_may_place(world: World) -> None:
    # the service trusts its caller; the API checks scope first with call_targets
    with pytest.raises(Forbidden):
        call_targets(V_TERM, world.tree, [V2])
    up = call_targets(V_TERM, world.tree, [T])
    world.online(V_TERM, TOWN_D)
    call = await world.calls.place(V_TERM, up, [])
    assert call.caller == "v-term" and call.targets[0].rung == ["town-d"]
    accepted = await world.calls.accept(call.id, TOWN_D)
    assert accepted.targets[0].answered_by == "town-d"


# -- who may answer ----------------------------------------------------------------------------
async def test_anyone_at_a_rung_centre_may_answer(world: World) -> None:
    world.online(DISPATCHER, V_TERM, V_OP)
    call = await place(world, V)
    await world.calls.accept(call.id, V_OP)
    assert call.targets[0].answered_by == "v-op"
    with pytest.raises(Conflict):  # the centre answered already
        await world.calls.accept(call.id, V_TERM)


async def test_a_named_person_only_is_rung_by_a_person_target(world: World) -> None:
    world.online(DISPATCHER, V_TERM, V_OP)
    call = await place(world, people=(("v-term", V),))
    with pytest.raises(Forbidden, match="not ringing you"):
        await world.calls.accept(call.id, V_OP)
    await world.calls.accept(call.id, V_TERM)
    assert call.targets[0].state is TargetState.ACCEPTED


async def test_a_person_and_their_centre_the_person_target_settles_first(world: World) -> None:
    world.online(DISPATCHER, V_TERM, V_OP)
    call = await place(world, V, people=(("v-term", V),))
    await world.calls.decline(call.id, V_TERM)
    assert [t.state for t in call.targets] == ["ringing", "declined"]
    await world.calls.accept(call.id, V_TERM)  # then the centre target it also hears
    assert [t.state for t in call.targets] == ["accepted", "declined"]


# -- multi-party ---------------------------------------------------------------------------------
async def test_one_answer_leaves_the_others_ringing(world: World) -> None:
    world.online(DISPATCHER, V_TERM, V2_TERM, V3_TERM)
    call = await place(world, V, V2, V3)
    await world.calls.accept(call.id, V2_TERM)
    assert call.state is CallState.ACTIVE
    assert [t.state for t in call.targets] == ["ringing", "accepted", "ringing"]
    assert [p["centre"] for p in world.calls.pending_for(V_TERM)] == [V]
    await world.calls.decline(call.id, V_TERM)
    await world.calls.accept(call.id, V3_TERM)
    assert call.state is CallState.ACTIVE and call.talking() == {"county-d", "v2-term", "v3-term"}
    assert call.to_json()["answered"] is True


async def test_all_decline_ends_the_call_declined(world: World) -> None:
    world.online(DISPATCHER, V_TERM, V2_TERM)
    call = await place(world, V, V2)
    await world.calls.decline(call.id, V_TERM)
    assert call.state is CallState.RINGING
    await world.calls.decline(call.id, V2_TERM)
    assert (call.state, call.end_reason) == (CallState.ENDED, "declined")
    await until(lambda: call not in world.calls.live())
    assert await row_state(world, call.id) == ("ended", "declined", ["declined", "declined"])


async def test_one_declines_the_other_is_missed_no_answer(world: World) -> None:
    world.online(DISPATCHER, V_TERM, V2_TERM)
    call = await place(world, V, V2, timeout=SHORT)
    await world.calls.decline(call.id, V_TERM)
    await until(lambda: call.ended)
    assert call.end_reason == "no_answer"
    assert [t.state for t in call.targets] == ["declined", "missed"]
    await until(lambda: call not in world.calls.live())
    assert await row_state(world, call.id) == ("ended", "no_answer", ["declined", "missed"])


async def test_timeout_misses_only_who_still_rings_and_keeps_the_call(world: World) -> None:
    world.online(DISPATCHER, V_TERM, V2_TERM)
    call = await place(world, V, V2, timeout=SHORT)
    await world.calls.accept(call.id, V_TERM)
    await until(lambda: not call.ringing)
    assert [t.state for t in call.targets] == ["accepted", "missed"]
    assert call.state is CallState.ACTIVE and call.end_reason is None
    assert call in world.calls.live()
    saved: list[object] = []

    async def poll() -> None:
        saved.append(await row_state(world, call.id))

    for _ in range(100):
        await poll()
        if saved[-1] == ("active", None, ["accepted", "missed"]):
            break
    assert saved[-1] == ("active", None, ["accepted", "missed"])


async def test_cancel_after_one_answer_stops_the_ringing_only(world: World) -> None:
    world.online(DISPATCHER, V_TERM, V2_TERM)
    call = await place(world, V, V2)
    await world.calls.accept(call.id, V_TERM)
    await world.calls.cancel(call.id, DISPATCHER)
    assert [t.state for t in call.targets] == ["accepted", "cancelled"]
    assert call.state is CallState.ACTIVE and call.end_reason is None
    assert call in world.calls.live()


# -- presence and the room ---------------------------------------------------------------------
async def test_accept_sets_in_call_and_hangup_gives_it_back(world: World) -> None:
    world.online(DISPATCHER, V_TERM)
    call = await place(world, V)
    await world.calls.accept(call.id, V_TERM)
    status = {u: world.presence.get(u).status for u in ("county-d", "v-term")}  # type: ignore[union-attr]
    assert status == {"county-d": Status.IN_CALL, "v-term": Status.IN_CALL}
    await world.calls.hangup(call.id, DISPATCHER)
    status = {u: world.presence.get(u).status for u in ("county-d", "v-term")}  # type: ignore[union-attr]
    assert status == {"county-d": Status.ONLINE, "v-term": Status.ONLINE}
    target = call.targets[0]
    assert target.ended_at is not None and target.duration is not None and target.duration >= 0


async def test_a_caller_in_two_calls_stays_in_call_until_the_last_ends(world: World) -> None:
    world.online(DISPATCHER, V_TERM, V2_TERM)
    one, two = await place(world, V), await place(world, V2)
    await world.calls.accept(one.id, V_TERM)
    await world.calls.accept(two.id, V2_TERM)
    await world.calls.hangup(one.id, DISPATCHER)
    assert world.presence.get("county-d").status is Status.IN_CALL  # type: ignore[union-attr]
    assert world.presence.get("v-term").status is Status.ONLINE  # type: ignore[union-attr]
    await world.calls.hangup(two.id, DISPATCHER)
    assert world.presence.get("county-d").status is Status.ONLINE  # type: ignore[union-attr]


async def test_a_user_set_busy_is_not_made_online_by_the_end(world: World) -> None:
    world.online(DISPATCHER, V_TERM)
    call = await place(world, V)
    world.presence.set_status("county-d", Status.BUSY)
    await world.calls.cancel(call.id, DISPATCHER)
    assert world.presence.get("county-d").status is Status.BUSY  # type: ignore[union-attr]


async def test_the_answerer_leaving_the_room_stops_its_duration(world: World) -> None:
    world.online(DISPATCHER, V_TERM)
    call = await place(world, V)
    await world.calls.accept(call.id, V_TERM)
    room = world.rooms.get(call.room)
    assert room is not None
    world.rooms.join(room, V_TERM)
    world.rooms.leave(room, "v-term")
    left_at = room.seats["v-term"].left_at
    assert call.targets[0].ended_at == left_at and call.state is CallState.ACTIVE
    await world.calls.hangup(call.id, DISPATCHER)
    assert call.targets[0].ended_at == left_at  # not moved to the hang-up
    saved = await world.calls.history.get(call.id)
    assert saved is not None and saved.targets[0].ended_at == left_at


async def test_hangup_ends_the_room_and_the_seats(world: World) -> None:
    world.online(DISPATCHER, V_TERM)
    call = await place(world, V)
    await world.calls.accept(call.id, V_TERM)
    room = world.rooms.get(call.room)
    assert room is not None
    world.rooms.join(room, DISPATCHER)
    world.rooms.join(room, V_TERM)
    await world.calls.hangup(call.id, DISPATCHER)
    assert room.ended and not any(s.present for s in room.seats.values())
    last = world.topics("call.updated")[-1]
    assert last.data["state"] == "ended" and last.data["end_reason"] == "hangup"
    assert last.to_users == {"county-d", "v-term"}


# -- reading -------------------------------------------------------------------------------------
async def test_get_live_then_from_history_scoped(world: World) -> None:
    world.online(DISPATCHER, V_TERM)
    call = await place(world, V)
    assert await world.calls.get(call.id, V_TERM) is call
    assert await world.calls.get(call.id, TOWN_D) is call  # V is below the township
    with pytest.raises(NotFound):
        await world.calls.get(call.id, V3_TERM)  # neither party nor in scope
    await world.calls.hangup(call.id, DISPATCHER)
    await until(lambda: call not in world.calls.live())
    saved = await world.calls.get(call.id, V_TERM)
    assert saved is not call and saved.to_json() == call.to_json()
    with pytest.raises(NotFound):
        await world.calls.get(call.id, OUTSIDER)


async def test_visible_by_scope_of_the_caller_or_a_target(world: World) -> None:
    world.online(TOWN_D, V3_TERM)
    call = await place(world, V3, caller=TOWN_D)
    assert world.calls.visible(call, V3_TERM)  # its centre is rung
    assert world.calls.visible(call, Principal("t2-d", TOWN_D.role, T2))  # V3 is below T2
    assert world.calls.visible(call, DISPATCHER)  # the county sees everything
    assert not world.calls.visible(call, V2_TERM)
    assert not world.calls.visible(call, OUTSIDER)


async def test_page_returns_the_live_object_for_live_calls(world: World) -> None:
    world.online(DISPATCHER, V_TERM)
    ended = await place(world, V)
    await world.calls.cancel(ended.id, DISPATCHER)
    live = await place(world, V2)
    await until(lambda: ended not in world.calls.live())
    calls, total = await world.calls.page(DISPATCHER, 1, 10)
    assert total == 2 and [c.id for c in calls] == [live.id, ended.id]
    assert calls[0] is live and calls[1] is not ended


# -- start and close -------------------------------------------------------------------------------
async def test_start_closes_the_calls_a_previous_run_left_open(world: World) -> None:
    history = CallHistory(world.db)
    open_call = Call(
        id="left-open",
        room="r1",
        caller="county-d",
        caller_role="dispatcher",
        caller_centre="410922",
        title="t",
        timeout=30,
        targets=[
            CallTarget(
                V, "东关村", state=TargetState.ACCEPTED, answered_by="v-term", accepted_at=1.0
            ),
            CallTarget(V2, "西关村"),
        ],
        state=CallState.ACTIVE,
    )
    done = Call("done", "r2", "county-d", "dispatcher", "410922", "t", 30, [CallTarget(V, "x")])
    done.targets[0].move("done", TargetState.DECLINED, by="v-term")
    done.state, done.end_reason, done.ended_at = CallState.ENDED, "declined", 5.0
    for c in (open_call, done):
        await history.save(history.snapshot(c))
    claimed: list[tuple[str, str]] = []
    restarted = world.new_calls(claim=lambda kind, id_: claimed.append((kind, id_)))
    await restarted.start()
    try:
        assert sorted(claimed) == [("call", "done"), ("call", "left-open")]
        saved = await restarted.history.get("left-open")
        assert saved is not None
        assert (saved.state, saved.end_reason) == (CallState.ENDED, "interrupted")
        assert [t.state for t in saved.targets] == ["accepted", "missed"]
        assert saved.targets[0].duration is None  # unknown length
        again = await restarted.history.get("done")
        assert again is not None and again.end_reason == "declined" and again.ended_at == 5.0
        assert restarted.live() == []
    finally:
        await restarted.close()


async def test_close_ends_live_calls_as_shutdown_but_leaves_rooms(world: World) -> None:
    world.online(DISPATCHER, V_TERM)
    call = await place(world, V)
    await world.calls.close()
    assert (call.state, call.end_reason) == (CallState.ENDED, "shutdown")
    room = world.rooms.get(call.room)
    assert room is not None and not room.ended
    assert await row_state(world, call.id) == ("ended", "shutdown", ["cancelled"])
    # the hooks are gone: ending the room now does not touch the call
    world.rooms.end(room)
    assert call.end_reason == "shutdown"
    world.calls = world.new_calls()
    await world.calls.start()
