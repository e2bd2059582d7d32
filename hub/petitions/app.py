"""Petitions in the app: the service's lifetime and the petitioner link's fence.

`petitions_ctx` comes after the rooms service in `hub/app.py`, so it is torn down before the
SFU: the hearing recorder leaves `RoomMedia.on_published`, stops its recordings, then the
overdue watch ends. `petitioner_guard` is a middleware (after authentication) that lets a
petitioner token (`petitioner:<code>`) reach its own case and its hearing room only, and only
while it is the newest link issued for the case.

In a hub cluster, case numbers come from `case_numbers`: one Redis counter per village per day,
seeded with each node's local maximum and skipping any code a node has claimed, so two nodes
never hand out the same code while Redis is reachable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import jwt
from aiohttp import web

from config.schema import Role
from hub.calls.service import CALLS
from hub.core.audit import AUDIT
from hub.core.auth import PRINCIPAL, Principal
from hub.core.centres import CENTRES
from hub.core.cluster import ClusterLink, SharedCounter, link_of
from hub.core.db import DB
from hub.core.errors import Conflict, Forbidden, Unauthenticated
from hub.core.events import EVENTS
from hub.core.state import CONFIG
from hub.http.errors import Handler
from hub.petitions.hearing import HEARINGS, HearingRecorder, Recording
from hub.petitions.model import Case
from hub.petitions.service import PETITIONS, Petitions
from hub.petitions.store import CaseStore
from hub.petitions.watch import PetitionWatch
from hub.recordings.service import RECORDINGS
from hub.rooms.model import ROOMS, Room, Seat
from hub.rooms.service import ROOM_MEDIA
from signaling.publish import Publication
from streams.relay import Relay


@web.middleware
async def petitioner_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    p = request.get(PRINCIPAL)
    if p is None or p.role is not Role.PETITIONER:
        return await handler(request)
    code = p.user.removeprefix("petitioner:")
    case = await request.app[PETITIONS].store.get(code) if code != p.user else None
    if case is None:  # not a link of a case: it opens nothing
        raise Forbidden("a petitioner token opens its own case only, and it names none")
    token = request.headers.get("Authorization", "")[7:].strip() or request.query.get("token", "")
    iat = jwt.decode(token, options={"verify_signature": False}).get("iat", 0) if token else 0
    if int(iat) < case.link_iat:
        raise Unauthenticated("this petitioner link is no longer valid (a newer one was issued)")
    if request.path == "/api/me":  # its own identity and ICE servers: nothing of others
        return await handler(request)
    own = [f"/api/petitions/{code}"]
    if case.room:
        own.append(f"/api/rooms/{case.room}")
    if not any(request.path == o or request.path.startswith(o + "/") for o in own):
        raise Forbidden("a petitioner link opens its own case and hearing only")
    return await handler(request)


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


async def petitions_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the rooms service (so torn down before the SFU): cases, the overdue watch and
    the hearing recorder hooked on `RoomMedia.on_published`."""
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
    watch = PetitionWatch(petitions, app[EVENTS], lambda case: call_back(app, case, None))
    watch.start()
    service = app[RECORDINGS]

    async def record(relay: Relay, tag: str, track: str, centre: str) -> Recording:
        return await service.record_room(relay, tag=tag, track=track, centre=centre)

    hearing = HearingRecorder(app[ROOMS], record, petitions.case_of)
    media = app[ROOM_MEDIA]
    media.on_published.append(hearing.published)
    audit = app[AUDIT]

    def joined(room: Room, seat: Seat, publication: Publication) -> None:
        code = petitions.case_of(room)
        if code is not None:  # who was seen and heard in which hearing
            details = {"room": room.id, "publication": publication.id}
            audit.record(seat.user, "petition.hearing", f"case:{code}", details, room.centre)

    media.on_published.append(joined)
    app[PETITIONS] = petitions
    app[HEARINGS] = hearing
    yield
    media.on_published.remove(hearing.published)
    media.on_published.remove(joined)
    await watch.close()
    await hearing.close()
    await petitions.close()


async def call_back(app: web.Application, case: Case, caller: Principal | None) -> str:
    """回访: ring the kiosk that filed `case` and its petitioner link; returns the call id.
    The caller is the given person, else the receptionist who heard the case."""
    centre = app[CENTRES].get(case.origin)
    if centre is None:
        raise Conflict(f"the origin centre {case.origin} is no longer configured")
    who = caller or Principal(case.host or f"centre-{case.queue}", Role.RECEPTIONIST, case.queue)
    people = [(u, centre) for u in dict.fromkeys([case.origin_user, case.petitioner])]
    call = await app[CALLS].place(who, [], people, title=f"回访 {case.code}")
    return call.id
