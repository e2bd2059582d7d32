"""Lists over every node of a hub cluster: paged lists, plain lists, WebSocket lists.

Each function answers from this node alone when the cluster link does not fan out (a single
node, or a request that is itself one node's part of a merged list: `X-Zzhub-Local`).
Nodes that did not answer are named in the `X-Zzhub-Nodes-Missing` header (and
`nodes_missing` in paged bodies); `X-Zzhub-Partial: 1` / `partial: true` say the list is
incomplete.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from hub.core.auth import Principal
from hub.core.cluster import LOCAL_ONLY, MISSING, PARTIAL, Gathered, link_of
from hub.core.errors import Invalid

MAX_DEPTH = 1000  # a merged paged list serves its first 1000 items (page * per_page)


def mark(gathered: Gathered, resp: web.StreamResponse) -> None:
    if gathered.partial:
        resp.headers[PARTIAL] = "1"
        resp.headers[MISSING] = ",".join(gathered.missing)


def max_per_page(request: web.Request, default: int) -> int:
    """A node asked for a merged list's first `page * per_page` items may serve more."""
    return MAX_DEPTH if request.headers.get(LOCAL_ONLY) else default


async def merged_page(
    request: web.Request,
    page: int,
    per_page: int,
    local: Callable[[int, int], Awaitable[tuple[list[dict[str, Any]], int]]],
    sort_key: Callable[[dict[str, Any]], Any],
) -> web.Response:
    """A paged list (`items`, `page`, `per_page`, `total`) over every live node: each answers
    its first `page * per_page` items, merged, re-sorted, then the page is cut."""
    link = link_of(request.app)
    if not link.fans_out(request):
        items, total = await local(page, per_page)
        body: dict[str, Any] = {"items": items, "page": page, "per_page": per_page}
        return web.json_response({**body, "total": total, "partial": False, "nodes_missing": []})
    depth = page * per_page
    if depth > MAX_DEPTH:
        raise Invalid(f"a hub cluster lists the first {MAX_DEPTH} items (page * per_page)")
    items, total = await local(1, depth)
    gathered = await link.gather(request, {"page": "1", "per_page": str(depth)})
    seen = {item.get("id") for item in items}
    for answer in gathered.bodies:
        if not isinstance(answer, dict):
            continue
        total += int(answer.get("total") or 0)
        for item in answer.get("items") or []:
            if isinstance(item, dict) and item.get("id") not in seen:
                seen.add(item.get("id"))
                items.append(item)
    items.sort(key=sort_key)
    resp = web.json_response(
        {
            "items": items[(page - 1) * per_page : depth],
            "page": page,
            "per_page": per_page,
            "total": total,
            "partial": gathered.partial,
            "nodes_missing": gathered.missing,
        }
    )
    mark(gathered, resp)
    return resp


async def merged_list(
    request: web.Request, local: list[dict[str, Any]], key: str | None = "id"
) -> web.Response:
    """A plain JSON list (live rooms, live broadcasts, pending rings) over every live node:
    this node's items, then each other node's (in node order) that no earlier list had (by
    `key`; None: every item, for lists whose items each come from one node only)."""
    link = link_of(request.app)
    if not link.fans_out(request):
        return web.json_response(local)
    gathered = await link.gather(request)
    resp = web.json_response(union(local, gathered.bodies, key))
    mark(gathered, resp)
    return resp


async def with_peers(
    app: web.Application, who: Principal, path: str, local: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """`local` and what every other live node answers to `GET path` as `who` from its own
    objects (`merged_list` without a request: the WebSocket `call.pending`, `rollcall.pending`)."""
    link = link_of(app)
    if not link.active:
        return local
    answers = await link.ask_peers(who, path, {})
    return union(local, [answer for _, answer in answers], None)


def union(local: list[dict[str, Any]], answers: list[Any], key: str | None) -> list[Any]:
    items = list(local)
    seen = {item.get(key) for item in items} if key else set()
    for answer in answers:
        for item in answer if isinstance(answer, list) else []:
            if not isinstance(item, dict):
                continue
            if key:
                if item.get(key) in seen:
                    continue
                seen.add(item.get(key))
            items.append(item)
    return items
