"""Petitions (视频接访): requests, queues, hearings and the case lifecycle, one code per case.

`Petitions` owns every change of a case: it checks the move against `MOVES`, writes the case
and its timeline entries in one transaction (`CaseStore`), and publishes `petition.queued` /
`petition.updated` to the queue's centre and to the people of the case. Mutations are
serialised by one lock (one node owns its cases). A hearing is a `RoomKind.HEARING` room
hosted by the receptionist with the requester invited; its media is recorded by
`hub.petitions.hearing`. At start, hearings a previous run left open are marked `interrupted`
and the case goes back to the front of its queue; a hearing room its host ends before the case
is resolved sends the case back too (`hearing_ended`, a move run by a task owned here and
awaited by `close()`). Deadlines and call-backs are watched by `hub.petitions.watch`.

In a hub cluster the node that files a case owns it (`claim("petition", code)`; every case
kept here is re-claimed at start) and numbers it from the cluster's shared counter
(`numbers`, see `hub.petitions.app.case_numbers`) so codes stay unique across nodes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from aiohttp import web

from config.schema import PetitionsConfig
from hub.core.auth import Principal
from hub.core.centres import CentreTree, within
from hub.core.errors import Conflict, NotFound
from hub.core.events import EventBus
from hub.petitions.deadlines import Deadlines, colour, colour_at
from hub.petitions.model import (
    HEARING,
    OPEN,
    WAITING,
    Case,
    Category,
    Entry,
    IllegalMove,
    Outcome,
    Status,
    check_move,
)
from hub.petitions.store import CaseStore
from hub.rooms.model import Room, RoomKind, Rooms
from streams.hooks import Connection
from streams.tasks import TaskSet

log = logging.getLogger(__name__)


class Petitions:
    def __init__(
        self,
        store: CaseStore,
        config: PetitionsConfig,
        tree: CentreTree,
        rooms: Rooms,
        events: EventBus,
        *,
        clock: Callable[[], float] = time.time,
        claim: Callable[[str, str], None] | None = None,
        numbers: Callable[[str, str, int], Awaitable[int | None]] | None = None,
    ) -> None:
        self.store = store
        self._claim = claim  # a hub cluster: (kind, code) is owned by this node
        self._hooked: list[Connection] = []  # disconnected at close
        # a hub cluster: (origin, day, local maximum) → the case number, None when unavailable
        self._numbers = numbers
        self.config = config
        self.deadlines = Deadlines(config)
        self._tree = tree
        self._rooms = rooms
        self._events = events
        self.clock = clock
        self._lock = asyncio.Lock()
        self._tasks = TaskSet("petitions", log)  # moves after a host ended a hearing
        self._hearings: dict[str, str] = {}  # room id → case code

    # -- lifetime ---------------------------------------------------------------------------
    async def start(self) -> None:
        await self.store.migrate()
        if self._claim is not None:
            for code in await self.store.codes():
                self._claim("petition", code)
        for case in await self.store.find(statuses=[str(s) for s in HEARING]):
            note = "the hub stopped during the hearing; back in the queue"
            await self._move(case, "interrupted", "system", note, room=None, host=None)
            log.warning("petition %s: hearing interrupted by a restart", case.code)
        self._hooked.append(self._rooms.on_end.connect(self._room_ended))

    async def close(self) -> None:
        for hook in self._hooked:
            hook.disconnect()
        await self._tasks.close()

    # -- requests ---------------------------------------------------------------------------
    def route(self, origin: str) -> str:
        """The queue centre for a request from `origin`: the longest configured prefix, else
        the origin's township (or the origin itself when it is a township or county)."""
        matches = [k for k in self.config.routes if within(origin, k)]
        if matches:
            return self.config.routes[max(matches, key=len)]
        return self._tree.queue_of(origin)

    async def create(
        self, who: Principal, origin: str, category: Category, urgent: bool, text: str
    ) -> Case:
        now = self.clock()
        queue = self.route(origin)

        def make(code: str) -> Case:
            return Case(
                code=code,
                origin=origin,
                queue=queue,
                category=category,
                urgent=urgent,
                text=text,
                origin_user=who.user,
                created=now,
                due_at=self.deadlines.due(now, category, urgent),
                status=Status.TRIAGED,
                queued_at=now,
            )

        def entries(case: Case) -> list[Entry]:
            received = Entry(case.code, now, who.user, "receive", None, "received", text)
            note = f"routed to the queue of {queue}"
            return [
                received,
                Entry(case.code, now, "system", "triage", "received", "triaged", note),
            ]

        day = self.deadlines.day_code(now)
        async with self._lock:
            seq = None
            if self._numbers is not None:
                seq = await self._numbers(origin, day, await self.store.max_seq(origin, day))
            case = await self.store.create(day, make, entries, seq=seq)
        if self._claim is not None:
            self._claim("petition", case.code)
        self._publish("petition.queued", case)
        return case

    # -- reading ----------------------------------------------------------------------------
    async def require(self, code: str) -> Case:
        case = await self.store.get(code)
        if case is None:
            raise NotFound(f"no case {code!r}")
        return case

    def view(self, case: Case, waiting: list[Case] | None = None) -> dict[str, Any]:
        data = case.to_json()
        data["colour"] = colour(case, self.clock())
        data["waited"] = round(self.clock() - case.queued_at, 1) if case.status in WAITING else 0
        if waiting is not None and case.status in WAITING:
            ahead = [c.code for c in waiting if c.queue == case.queue]
            position = ahead.index(case.code) + 1 if case.code in ahead else len(ahead) + 1
            data["position"] = position
            data["estimate"] = position * self.config.minutes_per_case * 60
        return data

    async def waiting(self, queue: str) -> list[Case]:
        return await self.store.find(statuses=[str(s) for s in WAITING], queue=queue)

    # -- moves ------------------------------------------------------------------------------
    async def accept(self, code: str, who: Principal) -> Case:
        async with self._lock:
            case = await self.require(code)
            self._legal(case, "accept")
            room = self._rooms.create(
                who,
                kind=RoomKind.HEARING,
                title=f"视频接访 {case.code}",
                users=[case.origin_user, case.petitioner, *case.invited],
            )
            self._hearings[room.id] = case.code
            return await self._move(case, "accept", who.user, "", room=room.id, host=who.user)

    async def transfer(self, code: str, who: Principal, centre: str, note: str) -> Case:
        async with self._lock:
            case = await self.require(code)
            self._legal(case, "transfer")
            self._end_room(case)
            data = {"from": case.queue, "to": centre}
            return await self._move(
                case,
                "transfer",
                who.user,
                note,
                data,
                queue=centre,
                queued_at=self.clock(),
                room=None,
                host=None,
            )

    async def invite(self, code: str, who: Principal, users: list[str], note: str) -> Case:
        async with self._lock:
            case = await self.require(code)
            self._legal(case, "invite")
            room = self._rooms.get(case.room or "")
            if room is None or room.ended:
                raise Conflict(f"case {code} has no live hearing room to invite into")
            self._rooms.invite(room, users=users)
            invited = list(dict.fromkeys([*case.invited, *users]))
            moved = await self._move(
                case, "invite", who.user, note, {"users": users}, invited=invited
            )
        for user in users:
            data = {"case": code, "room": room.id, "by": who.user}
            self._events.publish("petition.invited", case.queue, data, to_users={user})
        return moved

    async def resolve(self, code: str, who: Principal, outcome: Outcome, note: str) -> Case:
        async with self._lock:
            case = await self.require(code)
            self._legal(case, "resolve")
            self._end_room(case)
            data = {"outcome": str(outcome)}
            return await self._move(
                case, "resolve", who.user, note, data, outcome=outcome, resolved_at=self.clock()
            )

    async def followup(self, code: str, who: Principal, satisfaction: int, note: str) -> Case:
        async with self._lock:
            case = await self.require(code)
            self._legal(case, "followup")
            data = {"satisfaction": satisfaction}
            return await self._move(
                case, "followup", who.user, note, data, satisfaction=satisfaction
            )

    async def archive(self, code: str, who: Principal, note: str) -> Case:
        async with self._lock:
            case = await self.require(code)
            self._legal(case, "archive")
            return await self._move(case, "archive", who.user, note)

    async def record(
        self, code: str, actor: str, action: str, note: str = "", **changes: Any
    ) -> Case:
        """A timeline entry that does not move the case: a note, a link, a call back."""
        async with self._lock:
            case = await self.require(code)
            if case.status is Status.ARCHIVED and action == "note":
                raise Conflict(f"case {code} is archived: no more notes")
            data = {k: v for k, v in changes.items() if k != "link_iat"}
            updated = replace(case, **changes)
            entry = Entry(code, self.clock(), actor, action, None, None, note, data)
            await self.store.save(updated, [entry])
        self._publish("petition.updated", updated)
        return updated

    async def flag_overdue(self, code: str, note: str) -> Case | None:
        """Mark `code` overdue now, if it is still open, past its deadline and not flagged
        (checked under the lock: a case resolved meanwhile is left alone)."""
        async with self._lock:
            case = await self.require(code)
            now = self.clock()
            if case.status not in OPEN or case.overdue_at is not None or now <= case.due_at:
                return None
            updated = replace(case, overdue_at=now)
            entry = Entry(code, now, "system", "overdue", None, None, note, {"overdue_at": now})
            await self.store.save(updated, [entry])
        self._publish("petition.updated", updated)
        return updated

    def _legal(self, case: Case, action: str) -> None:
        try:
            check_move(case.code, case.status, action)
        except IllegalMove as err:
            raise Conflict(str(err), "illegal_transition") from None

    async def _move(
        self,
        case: Case,
        action: str,
        actor: str,
        note: str,
        data: dict[str, Any] | None = None,
        **changes: Any,
    ) -> Case:
        target = check_move(case.code, case.status, action)
        updated = replace(case, status=target, **changes)
        entry = Entry(
            case.code, self.clock(), actor, action, str(case.status), str(target), note, data or {}
        )
        await self.store.save(updated, [entry])
        self._publish("petition.updated", updated)
        return updated

    def _end_room(self, case: Case) -> None:
        self._hearings.pop(case.room or "", None)  # first: ending it here is no surprise
        room = self._rooms.get(case.room or "")
        if room is not None and not room.ended:
            self._rooms.end(room)

    def _room_ended(self, room: Room) -> None:
        """The host ended a hearing room without resolving: the case goes back to its queue."""
        code = self._hearings.pop(room.id, None)
        if code is not None:
            self._tasks.spawn(self._hearing_ended(code, room.id), cancellable=False)

    async def _hearing_ended(self, code: str, room_id: str) -> None:
        async with self._lock:
            case = await self.require(code)
            if case.status in HEARING and case.room == room_id:
                note = "the hearing room was ended before the case was resolved"
                await self._move(case, "hearing_ended", "system", note, room=None, host=None)

    async def sla_counts(self) -> dict[str, int]:
        """Open cases (the deadline runs) by deadline colour: blue, yellow, red."""
        now = self.clock()
        counts = {"blue": 0, "yellow": 0, "red": 0}
        for created, due_at in await self.store.deadlines([str(s) for s in OPEN]):
            counts[colour_at(created, due_at, now)] += 1
        return counts

    def case_of(self, room: Room) -> str | None:
        """The case code a live hearing room belongs to."""
        return self._hearings.get(room.id) if room.kind is RoomKind.HEARING else None

    def _publish(self, topic: str, case: Case) -> None:
        data = self.view(case)
        self._events.publish(topic, case.queue, data)
        self._events.publish(topic, case.queue, data, to_users=case.people())


PETITIONS = web.AppKey("petitions", Petitions)
