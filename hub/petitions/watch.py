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
        now = petitions.clock()
        flagged = []
        for case in await petitions.store.find(statuses=[str(s) for s in OPEN]):
            if case.overdue_at is not None or now <= case.due_at:
                continue
            rule = petitions.deadlines.rule(case.category, case.urgent)
            note = f"past the deadline ({rule})"
            updated = await petitions.record(case.code, "system", "overdue", note, overdue_at=now)
            above = parent_of(case.queue) or case.queue
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
            call_id = await self._call_back(case)
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
