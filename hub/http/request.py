"""Request helpers every slice's routes share: JSON bodies (checked by a pydantic model),
paging, SDP offers."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from hub.core.errors import (
    Invalid,
    Unsupported,
)
from hub.http.lists import (
    max_per_page,
)

# a whole number as the API takes it: ASCII digits only (str.isdigit() also takes "²", which
# int() refuses), at most 18 of them (SQLite integers are 64-bit)
_INT = re.compile(r"-?[0-9]{1,18}")


def id_of(raw: str) -> int | None:
    """A numeric id from a path segment; None when it is not one (the caller answers 404)."""
    return int(raw) if _INT.fullmatch(raw) and not raw.startswith("-") else None


def int_of(raw: str, name: str, lo: int, hi: int) -> int:
    """`raw` as a whole number within [lo, hi]; `Invalid` naming `name` otherwise."""
    if not _INT.fullmatch(raw):
        raise Invalid(f"{name} must be a whole number")
    value = int(raw)
    if not lo <= value <= hi:
        raise Invalid(f"{name} must be between {lo} and {hi}")
    return value


def query_int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    return default if raw is None or raw == "" else int_of(raw, name, lo, hi)


MAX_DEPTH = 32  # nesting of a JSON body or WebSocket frame


def decode_json(raw: bytes | str, what: str = "body") -> Any:
    """JSON as the API takes it: valid, nested at most MAX_DEPTH deep, its strings valid
    Unicode (no lone surrogates, which could never be stored or sent back); `Invalid` saying
    which rule failed otherwise."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise Invalid(f"{what} is nested too deeply (at most {MAX_DEPTH} levels)") from None
    except ValueError:
        raise Invalid(f"{what} is not valid JSON") from None
    check_json(value, what)
    return value


def check_json(value: Any, what: str = "body") -> None:
    """`Invalid` unless decoded JSON is nested at most MAX_DEPTH deep and all its text is
    valid Unicode."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _text(item, what)
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise Invalid(f"{what} is nested too deeply (at most {MAX_DEPTH} levels)")
            if isinstance(item, dict):
                for key, v in item.items():
                    _text(key, what)
                    stack.append((v, depth + 1))
            else:
                stack.extend((v, depth + 1) for v in item)


def _text(s: str, what: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(f"{what} holds text that is not valid Unicode (a lone surrogate)") from None


async def read_json(request: web.Request) -> dict[str, object]:
    if request.content_type != "application/json":
        raise Unsupported("expected Content-Type: application/json")
    body = decode_json(await request.read())
    if not isinstance(body, dict):
        raise Invalid("body must be a JSON object")
    return body


M = TypeVar("M", bound=BaseModel)


MAX_PER_PAGE = 100
MAX_PAGE = 1_000_000  # (page - 1) * per_page stays a 64-bit SQLite integer


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
    raw_page, raw_per_page = request.query.get("page", "1"), request.query.get("per_page", "20")
    if not (_INT.fullmatch(raw_page) and _INT.fullmatch(raw_per_page)):
        raise Invalid("page and per_page must be whole numbers")
    page, per_page = int(raw_page), int(raw_per_page)
    most = max_per_page(request, MAX_PER_PAGE)  # more for a peer merging its list (cluster)
    if page < 1 or not 1 <= per_page <= most:
        raise Invalid(f"page must be >= 1 and per_page between 1 and {most}")
    if page > MAX_PAGE:
        raise Invalid(f"page must be at most {MAX_PAGE}")
    return page, per_page


MAX_OFFER_BYTES = 64 * 1024
MAX_MEDIA_SECTIONS = 16  # a browser offers audio, video, data: a few sections


def check_offer(offer: str) -> str:
    """`Invalid` for an SDP offer no browser sends: larger than MAX_OFFER_BYTES or with more
    than MAX_MEDIA_SECTIONS `m=` sections (each would cost a transceiver and a loop stall)."""
    if len(offer) > MAX_OFFER_BYTES:
        raise Invalid(f"the SDP offer is larger than {MAX_OFFER_BYTES} bytes")
    sections = offer.count("\nm=") + offer.startswith("m=")
    if sections > MAX_MEDIA_SECTIONS:
        raise Invalid(f"the SDP offer has {sections} media sections (at most {MAX_MEDIA_SECTIONS})")
    return offer


async def read_sdp(request: web.Request) -> str:
    if request.content_type != "application/sdp":
        raise Unsupported("send the offer as Content-Type: application/sdp")
    try:
        return check_offer((await request.read()).decode("utf-8"))
    except UnicodeDecodeError:
        raise Invalid("the SDP offer is not UTF-8 text") from None
