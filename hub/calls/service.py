"""Calls: a caller rings centres and people; they accept, decline or are missed; history kept.

`Calls` owns the live calls (in memory, bounded by `max_live`), one timeout task per ringing
call, and the writes of the history (`CallHistory`, every change upserted). Each call has a
room (`RoomKind.CALL`) that the caller hosts and the targets are invited to; media goes through
the room endpoints. A call ends when no target is ringing and nobody accepted, when the caller
cancels everything or hangs up, or when its room ends. Events (see docs/protocol.md):
`call.ringing` to each person rung, `call.updated` to everyone the call concerns.

In a hub cluster the node that places a call owns it (`claim("call", id)`, history included:
re-claimed at start); `Presence` then knows the members of every node, so a terminal connected
to another node is rung too (the events travel through the cluster) and its answers reach this
node through `hub.cluster.proxy`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from config.schema import Role
from hub.calls.model import Call, CallState, CallTarget, TargetState
from hub.calls.store import CallHistory
from hub.core.auth import Principal
from hub.core.centres import Centre
from hub.core.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from hub.core.events import EventBus
from hub.core.presence import Presence, Status
from hub.rooms.model import Room, RoomKind, Rooms, Seat
from streams.hooks import Connection
from streams.tasks import TaskSet

log = logging.getLogger(__name__)


class Calls:
    def __init__(
        self,
        history: CallHistory,
        rooms: Rooms,
        presence: Presence,
        events: EventBus,
        *,
        ring_timeout: float,
        max_live: int = 500,
        claim: Callable[[str, str], None] | None = None,
    ) -> None:
        self.history = history
        self._claim = claim  # a hub cluster: (kind, id) is owned by this node
        self._hooked: list[Connection] = []  # disconnected at close
        self._rooms = rooms
        self._presence = presence
        self._events = events
        self.ring_timeout = ring_timeout
        self.max_live = max_live
        self._live: dict[str, Call] = {}
        self._by_room: dict[str, str] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._tasks = TaskSet(__name__, log)  # timers (cancellable) and writes (awaited)

    async def start(self) -> None:
        closed = await self.history.open()
        if closed:
            log.warning("closed %d call(s) left open by the previous run", closed)
        if self._claim is not None:
            for call_id in await self.history.ids():
                self._claim("call", call_id)
        self._hooked += [
            self._rooms.on_end.connect(self._room_ended),
            self._rooms.on_seat_left.connect(self._seat_left),
        ]

    async def close(self) -> None:
        """Stop every timer, end the live calls (`shutdown`) and wait for their last writes."""
        for hook in self._hooked:
            hook.disconnect()
        for call in list(self._live.values()):
            self._finish(call, "shutdown", end_room=False)  # rooms are torn down by theirs
        self._timers.clear()
        await self._tasks.close()

    # -- placing and answering -----------------------------------------------------------
    async def place(
        self,
        caller: Principal,
        centres: list[Centre],
        people: list[tuple[str, Centre]],
        *,
        timeout: float | None = None,
        title: str = "",
    ) -> Call:
        """Ring `centres` (everyone connected there) and `people` (by name). Scope is checked
        by the caller of this method (`hub.core.scopes`)."""
        if len(self._live) >= self.max_live:
            raise Unavailable(f"too many live calls (limit {self.max_live})")
        targets = [CallTarget(c.code, c.name) for c in centres]
        targets += [CallTarget(c.code, c.name, user=name) for name, c in people]
        if not targets:
            raise Invalid("name at least one centre or user to call")
        names = "、".join(t.user or t.centre_name for t in targets)
        title = title or f"{caller.user} 呼叫 {names}"[:200]
        room = self._rooms.create(
            caller,
            kind=RoomKind.CALL,
            title=title,
            users=[t.user for t in targets if t.user],
            centres=[t.centre for t in targets if not t.user],
        )
        call = Call(
            id=secrets.token_urlsafe(9),
            room=room.id,
            caller=caller.user,
            caller_role=str(caller.role),
            caller_centre=caller.centre,
            title=title,
            timeout=timeout or self.ring_timeout,
            targets=targets,
        )
        self._live[call.id] = call
        self._by_room[room.id] = call.id
        if self._claim is not None:
            self._claim("call", call.id)
        for target in targets:
            self._ring(call, target)
        self._timers[call.id] = self._spawn(self._expire(call))
        self._updated(call)
        await self._saved(call)
        return call

    async def accept(self, call_id: str, who: Principal) -> Call:
        call = await self._live_call(call_id, who)
        target = self._target_for(call, who)
        target.move(call.id, TargetState.ACCEPTED, by=who.user)
        self._presence.set_status(who.user, Status.IN_CALL)
        self._presence.set_status(call.caller, Status.IN_CALL)
        call.set_state(CallState.ACTIVE)
        self._settle(call)
        await self._saved(call)
        return call

    async def decline(self, call_id: str, who: Principal) -> Call:
        call = await self._live_call(call_id, who)
        self._target_for(call, who).move(call.id, TargetState.DECLINED, by=who.user)
        self._settle(call)
        await self._saved(call)
        return call

    async def cancel(self, call_id: str, who: Principal) -> Call:
        """Stop ringing every target still ringing; a call nobody accepted then ends."""
        call = await self._live_call(call_id, who)
        self._require_caller(call, who)
        if not call.ringing:
            raise Conflict(f"call {call.id} is not ringing anyone: hang up instead")
        for target in call.ringing:
            target.move(call.id, TargetState.CANCELLED, by=who.user)
        self._settle(call, reason="cancelled")
        await self._saved(call)
        return call

    async def hangup(self, call_id: str, who: Principal) -> Call:
        call = await self._live_call(call_id, who)
        self._require_caller(call, who)
        write = self._finish(call, "hangup")
        if write is not None:
            await asyncio.shield(write)
        return call

    # -- reading -------------------------------------------------------------------------
    async def get(self, call_id: str, who: Principal) -> Call:
        call = self._live.get(call_id) or await self.history.get(call_id)
        if call is None or not self.visible(call, who):
            raise NotFound(f"no call {call_id!r} in your scope")
        return call

    async def page(self, who: Principal, page: int, per_page: int) -> tuple[list[Call], int]:
        calls, total = await self.history.page(who.centre, page, per_page)
        return [self._live.get(c.id, c) for c in calls], total

    @staticmethod
    def visible(call: Call, who: Principal) -> bool:
        if who.can_see(call.caller_centre) or who.user in call.people():
            return True
        return any(who.can_see(t.centre) for t in call.targets)

    def pending_for(self, who: Principal) -> list[dict[str, Any]]:
        """The rings `who` could answer now (for a terminal that connects mid-ring)."""
        member = self._presence.get(who.user)
        out = []
        for call in self._live.values():
            for target in call.ringing:
                if call.caller != who.user and target.rings(who):
                    out.append(call.ringing_event(target, member))
        return out

    def live(self) -> list[Call]:
        return list(self._live.values())

    # -- internals -----------------------------------------------------------------------
    async def _live_call(self, call_id: str, who: Principal) -> Call:
        call = self._live.get(call_id)
        if call is not None and not call.ended:
            return call
        ended = call or await self.history.get(call_id)
        if ended is None or not self.visible(ended, who):
            raise NotFound(f"no call {call_id!r} in your scope")
        raise Conflict(f"call {call_id} has ended ({ended.end_reason})")

    def _require_caller(self, call: Call, who: Principal) -> None:
        """The caller, or an admin who can see the call (an admin of another township cannot
        end a county call: for it the call does not exist)."""
        if who.user == call.caller:
            return
        if not self.visible(call, who):
            raise NotFound(f"no call {call.id!r} in your scope")
        if who.role is not Role.ADMIN:
            raise Forbidden(f"only the caller ({call.caller}) may do that")

    @staticmethod
    def _target_for(call: Call, who: Principal) -> CallTarget:
        if who.user == call.caller:
            raise Forbidden("you placed this call: cancel or hang up instead")
        matches = [t for t in call.targets if t.rings(who)]
        matches.sort(key=lambda t: (t.state is not TargetState.RINGING, t.user is None))
        if not matches:
            raise Forbidden(f"call {call.id} is not ringing you or your centre")
        return matches[0]

    def _ring(self, call: Call, target: CallTarget) -> None:
        if target.user:
            one = self._presence.get(target.user)
            members = [one] if one is not None and one.connections > 0 else []
        else:
            members = self._presence.online_in(target.centre)
        for member in members:
            if member.user == call.caller or member.user in target.rung:
                continue
            target.rung.append(member.user)
            data = call.ringing_event(target, member)
            self._events.publish("call.ringing", target.centre, data, to_users={member.user})

    async def _expire(self, call: Call) -> None:
        await asyncio.sleep(max(0.0, call.expires_at - time.time()))
        self._timers.pop(call.id, None)
        for target in call.ringing:
            target.move(call.id, TargetState.MISSED)
        self._settle(call)
        await self._saved(call)

    def _settle(self, call: Call, reason: str = "") -> None:
        """After a target moved: stop the timer once nothing rings; end an unanswered call."""
        if not call.ringing:
            timer = self._timers.pop(call.id, None)
            if timer is not None and timer is not asyncio.current_task():
                timer.cancel()
            if not call.accepted:
                declined = all(t.state is TargetState.DECLINED for t in call.targets)
                self._finish(call, reason or ("declined" if declined else "no_answer"))
                return
        self._updated(call)

    def _finish(
        self, call: Call, reason: str, *, end_room: bool = True
    ) -> asyncio.Task[None] | None:
        if call.ended:
            return None
        now = time.time()
        for target in call.ringing:
            target.move(call.id, TargetState.CANCELLED)
        room = self._rooms.get(call.room)
        for target in call.accepted:
            seat = room.seats.get(target.answered_by or "") if room else None
            if target.ended_at is None or (seat is not None and seat.present):
                target.ended_at = now
        call.set_state(CallState.ENDED)
        call.ended_at, call.end_reason = now, reason
        timer = self._timers.pop(call.id, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        if end_room and room is not None and not room.ended:
            self._rooms.end(room)
        for user in {call.caller, *(t.answered_by for t in call.accepted if t.answered_by)}:
            member = self._presence.get(user)
            busy_elsewhere = any(c is not call and user in c.talking() for c in self._live.values())
            if member is not None and member.status is Status.IN_CALL and not busy_elsewhere:
                self._presence.set_status(user, Status.ONLINE)
        self._updated(call)
        write = self._save(call)
        write.add_done_callback(lambda _: self._forget(call))
        return write

    def _forget(self, call: Call) -> None:
        self._live.pop(call.id, None)
        self._by_room.pop(call.room, None)

    def _room_ended(self, room: Room) -> None:
        call = self._live.get(self._by_room.get(room.id, ""))
        if call is not None and not call.ended:
            self._finish(call, "room_ended")

    def _seat_left(self, room: Room, seat: Seat) -> None:
        call = self._live.get(self._by_room.get(room.id, ""))
        if call is None or call.ended:
            return
        for target in call.accepted:
            if target.answered_by == seat.user:
                target.ended_at = seat.left_at or time.time()
                self._save(call)

    def _updated(self, call: Call) -> None:
        self._events.publish(
            "call.updated", call.caller_centre, call.to_json(), to_users=call.people()
        )

    async def _saved(self, call: Call) -> None:
        """Write the call and wait for it; a cancelled caller does not cancel the write."""
        await asyncio.shield(self._save(call))

    def _save(self, call: Call) -> asyncio.Task[None]:
        return self._spawn(self.history.save(self.history.snapshot(call)), write=True)

    def _spawn(self, coro: Coroutine[Any, Any, None], write: bool = False) -> asyncio.Task[None]:
        return self._tasks.spawn(coro, cancellable=not write)


CALLS = web.AppKey("calls", Calls)
