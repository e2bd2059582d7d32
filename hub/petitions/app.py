"""Petitions in the app: the service's lifetime and the petitioner link's fence.

`petitions_ctx` comes after the rooms service in `hub/app.py`, so it is torn down before the
SFU: the hearing recorder leaves `Rooms.on_published`, stops its recordings, then the
overdue watch ends. `petitioner_guard` is a middleware (after authentication) that lets a
petitioner token (`petitioner:<code>`) reach its own case and its hearing room only, and only
while it is the newest link issued for the case.

In a hub cluster, case numbers come from `case_numbers`: one Redis counter per village per day,
seeded with each node's local maximum and skipping any code a node has claimed, so two nodes
never hand out the same code while Redis is reachable.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from config.schema import HubConfig
from hub.core.audit import AUDIT
from hub.core.auth import Principal
from hub.core.centres import CENTRES
from hub.core.cluster import ClusterLink, SharedCounter, link_of
from hub.core.db import DB
from hub.core.events import EVENTS
from hub.core.state import CONFIG
from hub.http.metrics import METRICS, Family, label
from hub.petitions import api
from hub.petitions.hearing import HEARINGS, HearingRecorder
from hub.petitions.service import PETITIONS, Petitions
from hub.petitions.store import CaseStore
from hub.petitions.watch import PetitionWatch
from hub.recordings.service import RECORDINGS
from hub.rooms.model import ROOMS, Room, Seat
from signaling.publish import Publication

COUNTER_TTL = 3 * 86400  # a day's counter outlives the day (time zones, late clocks)


def case_numbers(link: ClusterLink) -> Callable[[str, str, int], Awaitable[int | None]]:
    """The cluster's case numbers (`<origin>-<day>-<NNNN>`); None while Redis is away (the
    store then numbers from its local maximum: see docs/deploy.md for what can collide)."""
    counter = SharedCounter(
        link,
        "petition",
        "caseseq:{origin}:{day}",
        prefix="{origin}-{day}-",
        digits=4,
        ttl=COUNTER_TTL,
    )

    async def number(origin: str, day: str, local_max: int) -> int | None:
        return await counter.next(local_max, origin=origin, day=day)

    return number


def setup(app: web.Application, config: HubConfig) -> None:
    app.middlewares.append(api.petitioner_guard)  # after authentication and owner forwarding
    app.cleanup_ctx.append(petitions_ctx)
    api.add_routes(app)
    app[METRICS].add("petitions", lambda family: _families(app, family))


async def petitions_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the rooms service (so torn down before the SFU): cases, the overdue watch and
    the hearing recorder hooked on `Rooms.on_published`."""
    link = link_of(app)
    petitions = Petitions(
        CaseStore(app[DB]),
        app[CONFIG].petitions,
        app[CENTRES],
        app[ROOMS],
        app[EVENTS],
        claim=link.claimer(),
        numbers=case_numbers(link) if link.active else None,
    )
    await petitions.start()
    watch = PetitionWatch(petitions, app[EVENTS], lambda case: api.call_back(app, case, None))
    watch.start()
    hearing = HearingRecorder(app[ROOMS], app[RECORDINGS], petitions.case_of)
    hooked = [app[ROOMS].on_published.connect(hearing.published)]
    audit = app[AUDIT]

    def joined(room: Room, seat: Seat, publication: Publication) -> None:
        code = petitions.case_of(room)
        if code is not None:  # who was seen and heard in which hearing
            details = {"room": room.id, "publication": publication.id}
            audit.record(seat.user, "petition.hearing", f"case:{code}", details, room.centre)

    hooked.append(app[ROOMS].on_published.connect(joined))

    def may_read_case(tag: str, who: Principal) -> Awaitable[bool] | None:
        """A case's recordings are read by those who may read the case (api.may_read)."""
        return _may_read_case(petitions, tag, who) if CASE_CODE.fullmatch(tag) else None

    hooked.append(app[RECORDINGS].tag_readers.connect(may_read_case))
    app[PETITIONS] = petitions
    app[HEARINGS] = hearing
    yield
    for hook in hooked:
        hook.disconnect()
    await watch.close()
    await hearing.close()
    await petitions.close()


async def _families(app: web.Application, family: Family) -> None:
    counts = await app[PETITIONS].sla_counts()
    family(
        "zzhub_sla_items",
        "gauge",
        "Open items by deadline colour (blue: under 75 % of the time, yellow, red: overdue).",
        [
            (f"service={label('petitions')},status={label(colour)}", float(n))
            for colour, n in sorted(counts.items())
        ],
    )


CASE_CODE = re.compile(r"\d{6,12}-\d{8}-\d{4}")  # <origin>-<day>-<NNNN>


async def _may_read_case(petitions: Petitions, code: str, who: Principal) -> bool:
    case = await petitions.store.get(code)
    return case is not None and api.may_read(who, case)
