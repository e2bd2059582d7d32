"""Petitions over HTTP: requests, the scoped queue, case actions, petitioner links, export.

Who may do what:
- a terminal (village kiosk) files requests from its own centre and reads the cases it filed;
- receptionists, mediators, dispatchers and admins read cases whose queue or origin is in
  their scope (or that they host or were invited to), act on cases whose queue is in scope,
  and file requests on behalf of a centre in scope;
- a petitioner link (`petitioner:<code>`, role petitioner) opens its own case and its hearing
  room and nothing else: `petitioner_guard` refuses every other path (the WebSocket too: the
  kiosk polls), and a link is void once a newer one was issued for the case.

In a hub cluster `GET /api/petitions` is the queue of every live node: the peers' lists are
merged with this node's, re-sorted and re-numbered (`position`, `estimate`); the headers
`X-Zzhub-Partial: 1` and `X-Zzhub-Nodes-Missing` say when a node did not answer. A case's own
endpoints are forwarded to the node that owns it (`hub.cluster.proxy`). The WebSocket
`petition.list` merges the peers' lists the same way.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from config.schema import Level, Role
from hub.calls.service import CALLS
from hub.core.audit import AUDIT
from hub.core.auth import PRINCIPAL, TOKENS, USERS, Principal, principal
from hub.core.centres import CENTRES, CODE, UPPER_CODE
from hub.core.cluster import link_of
from hub.core.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from hub.core.presence import PRESENCE
from hub.core.state import CONFIG
from hub.core.times import iso
from hub.http.errors import Handler
from hub.http.files import send_file
from hub.http.lists import mark
from hub.http.request import parse_body
from hub.http.routes import owned
from hub.http.ws import WS, Request, WsClient
from hub.petitions.model import WAITING, Case, Category, Outcome, Status
from hub.petitions.service import PETITIONS, Petitions
from hub.recordings.service import RECORDINGS

STAFF = frozenset({Role.ADMIN, Role.DISPATCHER, Role.RECEPTIONIST, Role.MEDIATOR})
FILERS = STAFF | {Role.TERMINAL}
STATUS_SETS = {"waiting": ("triaged", "transferred"), "hearing": ("in_hearing", "joint_hearing")}
LIST_LIMIT = 500  # as `CaseStore.find`


class NewCase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: Category
    urgent: bool = False
    text: str = Field("", max_length=500)
    centre: str | None = Field(None, pattern=r"^\d{9}(\d{3})?$", description="staff: on behalf")


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field("", max_length=2000)


class Transfer(Note):
    centre: str = Field(pattern=UPPER_CODE)


class Invite(Note):
    users: list[str] = Field(min_length=1, max_length=20)


class Resolve(Note):
    outcome: Outcome


class Followup(Note):
    call: bool = False  # true: ring the requester back (the case stays resolved)
    at: float | None = Field(None, gt=0, description="with call: ring back then (epoch s)")
    satisfaction: int | None = Field(None, ge=1, le=5)


class Text(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=2000)


# -- access --------------------------------------------------------------------------------
def may_read(p: Principal, case: Case) -> bool:
    if p.role is Role.PETITIONER:
        return p.user == case.petitioner
    if p.role is Role.TERMINAL:
        return p.user == case.origin_user
    if p.role not in STAFF:
        return False
    return p.can_see(case.queue) or p.can_see(case.origin) or p.user in case.people()


async def _case(request: web.Request) -> tuple[Petitions, Case, Principal]:
    p = principal(request)
    petitions = request.app[PETITIONS]
    case = await petitions.store.get(request.match_info["code"])
    if case is None or not may_read(p, case):
        raise NotFound(f"no case {request.match_info['code']!r} in your scope")
    return petitions, case, p


async def _acting(
    request: web.Request, *, invited_ok: bool = False
) -> tuple[Petitions, Case, Principal]:
    petitions, case, p = await _case(request)
    if p.role not in STAFF:
        raise Forbidden(f"a {p.role} may not act on cases")
    if not (
        p.can_see(case.queue) or p.user == case.host or (invited_ok and p.user in case.invited)
    ):
        raise Forbidden(f"case {case.code} is in the queue of {case.queue}, outside your scope")
    return petitions, case, p


# -- requests and reading ------------------------------------------------------------------
async def create(request: web.Request) -> web.Response:
    p = principal(request)
    if p.role not in FILERS:
        raise Forbidden(f"a {p.role} may not file requests")
    body = await parse_body(request, NewCase)
    origin = p.centre
    if p.role in STAFF and body.centre:
        if not p.can_see(body.centre) or body.centre not in request.app[CENTRES]:
            raise Forbidden(f"centre {body.centre} is outside your scope")
        origin = body.centre
    elif body.centre not in (None, p.centre):
        raise Forbidden("a terminal files requests for its own centre only")
    case = await request.app[PETITIONS].create(p, origin, body.category, body.urgent, body.text)
    return web.json_response(
        await _view(request, case), status=201, headers={"Location": f"/api/petitions/{case.code}"}
    )


async def _view(request: web.Request, case: Case) -> dict[str, Any]:
    petitions = request.app[PETITIONS]
    return petitions.view(case, await petitions.waiting(case.queue))


async def scoped_list(
    petitions: Petitions, p: Principal, status: str, centre: str | None
) -> list[dict[str, Any]]:
    """The cases `p` may list (HTTP `GET /api/petitions` and WS `petition.list`)."""
    if p.role not in FILERS:
        raise Forbidden(f"a {p.role} may not list cases")
    statuses = STATUS_SETS.get(status, (status,) if status else ())
    if any(s not in Status.__members__.values() for s in statuses):
        raise Invalid(f"status must be one of {', '.join(Status)}, waiting or hearing")
    centre = centre or p.centre
    if p.role is Role.TERMINAL:
        found = await petitions.store.find(statuses=statuses, origin_user=p.user)
    else:
        if not p.can_see(centre):
            raise Forbidden(f"centre {centre} is outside your scope")
        found = await petitions.store.find(scope=centre, statuses=statuses)
    queues = {queue: await petitions.waiting(queue) for queue in {c.queue for c in found}}
    return [petitions.view(c, queues[c.queue]) for c in found]


async def list_cases(request: web.Request) -> web.Response:
    p = principal(request)
    status, centre = request.query.get("status", ""), request.query.get("centre")
    petitions = request.app[PETITIONS]
    cases = await scoped_list(petitions, p, status, centre)
    link = link_of(request.app)
    if not link.fans_out(request):
        return web.json_response(cases)
    gathered = await link.gather(request)
    resp = web.json_response(merge_cases(petitions, cases, gathered.bodies))
    mark(gathered, resp)
    return resp


def merge_cases(petitions: Petitions, local: list[Any], answers: list[Any]) -> list[Any]:
    """One queue out of every node's list: the store's order (urgent first, then longest
    waiting), positions and estimates counted over the merged queue."""
    seen = {c["code"] for c in local}
    cases = list(local)
    for answer in answers:
        for case in answer if isinstance(answer, list) else []:
            if isinstance(case, dict) and case.get("code") not in seen:
                seen.add(case.get("code"))
                cases.append(case)
    cases.sort(key=lambda c: (not c.get("urgent"), c.get("queued_at") or 0.0, c.get("code")))
    cases = cases[:LIST_LIMIT]
    waiting = {str(s) for s in WAITING}
    positions: dict[str, int] = {}
    for case in cases:
        if case.get("status") in waiting and "position" in case:
            position = positions[case["queue"]] = positions.get(case["queue"], 0) + 1
            case["position"] = position
            case["estimate"] = position * petitions.config.minutes_per_case * 60
    return cases


async def get_case(request: web.Request) -> web.Response:
    petitions, case, p = await _case(request)
    data = await _view(request, case)
    if p.role in STAFF:
        timeline = await petitions.store.timeline(case.code)
        data["timeline"] = [e.to_json() for e in timeline]
        data["notes"] = [e.to_json() for e in timeline if e.action == "note"]
        rows = await request.app[RECORDINGS].index.by_tag(case.code)
        data["recordings"] = [r.to_json() for r in rows]
    return web.json_response(data)


# -- actions -------------------------------------------------------------------------------
async def accept(request: web.Request) -> web.Response:
    petitions, case, p = await _acting(request)
    case = await petitions.accept(case.code, p)
    request.app[AUDIT].record(
        p.user, "petition.accept", f"case:{case.code}", {"room": case.room}, case.queue
    )
    return web.json_response(await _view(request, case))


async def transfer(request: web.Request) -> web.Response:
    petitions, case, p = await _acting(request)
    body = await parse_body(request, Transfer)
    target = request.app[CENTRES].get(body.centre)
    if target is None or target.level is Level.VILLAGE:
        raise Invalid(f"{body.centre} is not a township or county centre")
    if body.centre == case.queue:
        raise Conflict(f"case {case.code} is already in the queue of {body.centre}")
    case = await petitions.transfer(case.code, p, body.centre, body.note)
    return web.json_response(await _view(request, case))


async def invite(request: web.Request) -> web.Response:
    petitions, case, p = await _acting(request)
    body = await parse_body(request, Invite)
    tree = request.app[CENTRES]
    chain = {c.code for c in tree.chain(p.centre)}
    for name in body.users:
        user = request.app[USERS].get(name)
        member = request.app[PRESENCE].get(name)
        centre = user.centre if user else member.centre if member else None
        if centre is None:
            raise NotFound(f"no user {name!r}")
        if not (p.can_see(centre) or centre in chain):
            raise Forbidden(f"{name} ({centre}) is outside your scope")
    case = await petitions.invite(case.code, p, list(dict.fromkeys(body.users)), body.note)
    return web.json_response(await _view(request, case))


async def resolve(request: web.Request) -> web.Response:
    petitions, case, p = await _acting(request)
    body = await parse_body(request, Resolve)
    case = await petitions.resolve(case.code, p, body.outcome, body.note)
    return web.json_response(await _view(request, case))


async def followup(request: web.Request) -> web.Response:
    petitions, case, p = await _acting(request)
    body = await parse_body(request, Followup)
    if body.call == (body.satisfaction is not None):
        raise Invalid("send either call: true (ring back) or satisfaction: 1..5")
    if body.satisfaction is not None:
        case = await petitions.followup(case.code, p, body.satisfaction, body.note)
        return web.json_response(await _view(request, case))
    if case.status is not Status.RESOLVED:
        raise Conflict(f"case {case.code} is {case.status}: call back after it is resolved")
    if body.at is not None and body.at > time.time():
        note = body.note or "call back scheduled"
        case = await petitions.record(
            case.code, p.user, "followup_scheduled", note, followup_at=body.at, followup_call=None
        )
        return web.json_response(await _view(request, case))
    call_id = await call_back(request.app, case, p)
    case = await petitions.record(
        case.code, p.user, "followup_call", body.note, followup_call=call_id
    )
    call = await request.app[CALLS].get(call_id, p)
    return web.json_response({**await _view(request, case), "call": call.to_json()})


async def archive(request: web.Request) -> web.Response:
    petitions, case, p = await _acting(request)
    body = await parse_body(request, Note)
    case = await petitions.archive(case.code, p, body.note)
    return web.json_response(await _view(request, case))


async def note(request: web.Request) -> web.Response:
    petitions, case, p = await _acting(request, invited_ok=True)
    body = await parse_body(request, Text)
    case = await petitions.record(case.code, p.user, "note", body.text)
    return web.json_response(await _view(request, case), status=201)


async def link(request: web.Request) -> web.Response:
    petitions, case, p = await _acting(request)
    if case.status is Status.ARCHIVED:
        raise Conflict(f"case {case.code} is archived")
    iat = int(time.time())
    # each link a serial above the last (not the second it was issued: two links in one
    # second must not both stay valid); only the newest opens the case
    serial = max(iat, case.link_iat + 1)
    await petitions.record(case.code, p.user, "link", "petitioner link issued", link_iat=serial)
    ttl = request.app[CONFIG].petitions.link_ttl
    token = request.app[TOKENS].issue(
        case.petitioner, Role.PETITIONER, case.origin, ttl, extra={"lnk": serial}
    )
    request.app[AUDIT].record(p.user, "petition.link", f"case:{case.code}", {}, case.queue)
    return web.json_response(
        {
            "user": case.petitioner,
            "token": token,
            "expires": iat + ttl,
            "url": f"/static/kiosk.html#case={case.code}&token={token}",
        },
        status=201,
    )


async def export(request: web.Request) -> web.StreamResponse:
    petitions, case, p = await _case(request)
    if p.role not in STAFF:
        raise Forbidden(f"a {p.role} may not export cases")
    timeline = [e.to_json() for e in await petitions.store.timeline(case.code)]
    docs = {
        "case": petitions.view(case),
        "notes": [e for e in timeline if e["action"] == "note"],
        "timeline": timeline,
    }
    header = {
        "tag": case.code,
        "case": case.code,
        "exported_by": p.user,
        "exported_at": iso(int(time.time() * 1000)),
    }
    out, manifest, segments = await request.app[RECORDINGS].export_zip(case.code, header, docs)
    request.app[AUDIT].record(
        p.user,
        "export.evidence",
        f"case:{case.code}",
        {"head": manifest["head"], "segments": segments},
        case.queue,
    )
    return await send_file(request, out, f"case_{case.code}.zip", "application/zip")


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/petitions", create)
    r.add_get("/api/petitions", list_cases)
    one = owned("petition", "code")
    r.add_get("/api/petitions/{code}", one(get_case))
    r.add_get("/api/petitions/{code}/export.zip", one(export))
    actions: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
        "accept": accept,
        "transfer": transfer,
        "invite": invite,
        "resolve": resolve,
        "followup": followup,
        "archive": archive,
        "notes": note,
        "link": link,
    }
    for name, handler in actions.items():
        r.add_post(f"/api/petitions/{{code}}/{name}", one(handler))
    register_ws(app)


class ListRequest(Request):
    status: str = Field("", max_length=20)
    centre: str | None = Field(None, pattern=CODE)


def register_ws(app: web.Application) -> None:
    """`petition.list` {status, centre}: the same list as `GET /api/petitions`."""

    async def listing(client: WsClient, req: ListRequest) -> list[Any]:
        p, petitions = client.principal, app[PETITIONS]
        cases = await scoped_list(petitions, p, req.status, req.centre)
        link = link_of(app)
        if not link.active:
            return cases
        query = {"status": req.status} if req.status else {}
        if req.centre:
            query["centre"] = req.centre
        answers = await link.ask_peers(p, "/api/petitions", query)
        return merge_cases(petitions, cases, [answer for _, answer in answers])

    app[WS].register("petition.list", ListRequest, listing)


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
    # verified already (authentication): only its link serial is read here
    serial = jwt.decode(token, options={"verify_signature": False}).get("lnk", 0) if token else 0
    if not isinstance(serial, int) or serial < case.link_iat:
        raise Unauthenticated("this petitioner link is no longer valid (a newer one was issued)")
    if request.path == "/api/me":  # its own identity and ICE servers: nothing of others
        return await handler(request)
    own = [f"/api/petitions/{code}"]
    if case.room:
        own.append(f"/api/rooms/{case.room}")
    if not any(request.path == o or request.path.startswith(o + "/") for o in own):
        raise Forbidden("a petitioner link opens its own case and hearing only")
    return await handler(request)


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
