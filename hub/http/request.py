"""Request helpers every slice's routes share: JSON bodies (checked by a pydantic model),
paging, SDP offers."""

from __future__ import annotations

import json
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from hub.core.errors import (
    Invalid,
    Unsupported,
)
from hub.http.lists import (
    max_per_page,
)
from hub.http.ws import Request


async def read_json(request: web.Request) -> dict[str, object]:
    if request.content_type != "application/json":
        raise Unsupported("expected Content-Type: application/json")
    raw = await request.read()
    try:
        body = json.loads(raw)
    except ValueError:
        raise Invalid("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise Invalid("body must be a JSON object")
    return body


M = TypeVar("M", bound=BaseModel)


MAX_PER_PAGE = 100


class NoData(Request):
    pass


# -- shared helpers ------------------------------------------------------------------------
async def parse_body(request: web.Request, model: type[M]) -> M:
    body = await read_json(request)
    try:
        return model.model_validate(body)
    except ValidationError as err:
        parts = []
        for e in err.errors()[:5]:
            loc = ".".join(str(p) for p in e["loc"]) or "(body)"
            parts.append(
                f"{loc}: {'unknown field' if e['type'] == 'extra_forbidden' else e['msg']}"
            )
        raise Invalid("; ".join(parts)) from None


def paging(request: web.Request) -> tuple[int, int]:
    try:
        page = int(request.query.get("page", "1"))
        per_page = int(request.query.get("per_page", "20"))
    except ValueError:
        raise Invalid("page and per_page must be whole numbers") from None
    most = max_per_page(request, MAX_PER_PAGE)  # more for a peer merging its list (cluster)
    if page < 1 or not 1 <= per_page <= most:
        raise Invalid(f"page must be >= 1 and per_page between 1 and {most}")
    return page, per_page


async def read_sdp(request: web.Request) -> str:
    if request.content_type != "application/sdp":
        raise Unsupported("send the offer as Content-Type: application/sdp")
    try:
        return (await request.read()).decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("the SDP offer is not UTF-8 text") from None
