"""The petitions' periodic duties: overdue flags (限时办结) and scheduled call-backs (回访).

One task, owned here, runs `check()` every `petitions.check_interval` seconds: each open case
past its deadline is flagged once (timeline entry `overdue`, event `petition.overdue` to the
centre above its queue); each resolved case whose call-back time has come is rung back through
`call_back` (a call placed via `hub.calls.service`). `close()` cancels and awaits the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from config.schema import parent_of
from hub.core.events import EventBus
from hub.petitions.model import OPEN, Case, Status
from hub.petitions.service import Petitions

log = logging.getLogger(__name__)

CallBack = Callable[[Case], Awaitable[str]]  # places the call, returns its id


class PetitionWatch:
    def __init__(self, petitions: Petitions, events: EventBus, call_back: CallBack) -> None:
        self.petitions = petitions
        self._events = events
        self._call_back = call_back
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="petitions:watch")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check(self) -> None:
        await self.check_overdue()
        await self.check_followups()

    async def check_overdue(self) -> list[Case]:
        """Flag every open case past its deadline once, to the centre above its queue."""
        petitions = self.petitions
        flagged = []
        for code in await petitions.store.overdue([str(s) for s in OPEN], petitions.clock()):
            case = await petitions.require(code)
            rule = petitions.deadlines.rule(case.category, case.urgent)
            updated = await petitions.flag_overdue(code, f"past the deadline ({rule})")
            if updated is None:  # resolved or flagged meanwhile
                continue
            above = parent_of(updated.queue) or updated.queue
            self._events.publish("petition.overdue", above, petitions.view(updated))
            flagged.append(updated)
        return flagged

    async def check_followups(self) -> list[Case]:
        """Ring back every resolved case whose scheduled call-back time has come."""
        now = self.petitions.clock()
        rung = []
        for case in await self.petitions.store.find(statuses=[str(Status.RESOLVED)]):
            if case.followup_at is None or case.followup_call or case.followup_at > now:
                continue
            try:
                call_id = await self._call_back(case)
            except Exception:  # the next round tries again; the others are rung now
                log.exception("petition %s: the scheduled call back failed", case.code)
                continue
            note = "scheduled call back placed"
            rung.append(
                await self.petitions.record(
                    case.code, "system", "followup_call", note, followup_call=call_id
                )
            )
        return rung

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:
                log.exception("petitions watch failed")
            await asyncio.sleep(self.petitions.config.check_interval)
