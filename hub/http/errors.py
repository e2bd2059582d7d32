"""JSON errors for the API: `{"error": {"code": "...", "message": "..."}}`, never a traceback.

The one place that knows which status each of the hub's refusals (`hub.core.errors`) has.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

from aiohttp import web

from hub.core.errors import (
    Conflict,
    Forbidden,
    HubError,
    Invalid,
    NotAllowed,
    NotFound,
    TooLarge,
    TooMany,
    Unauthenticated,
    Unavailable,
    Unsupported,
)

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATUS: dict[type[HubError], int] = {
    Invalid: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    NotAllowed: 405,
    Conflict: 409,
    TooLarge: 413,
    Unsupported: 415,
    TooMany: 429,
    Unavailable: 503,
}
_BY_STATUS = {status: kind for kind, status in STATUS.items()}
_CODES = {
    422: "unprocessable",
    **{status: kind.code for kind, status in STATUS.items()},
}


def status_of(err: HubError) -> int:
    for kind in type(err).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500


def error_for_status(status: int, message: str, code: str | None = None) -> HubError:
    """The refusal another node answered with (its status, code and message), to raise here."""
    kind = _BY_STATUS.get(status)
    if kind is None:
        kind = Unavailable if status >= 500 else Invalid
    return kind(message, code)


def error_response(status: int, message: str, code: str | None = None) -> web.Response:
    return web.json_response(
        {"error": {"code": code or _CODES.get(status, "error"), "message": message}},
        status=status,
    )


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api") or request.path in ("/metrics", "/ws")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HubError as err:
        resp = error_response(status_of(err), err.message, err.code)
        if isinstance(err, TooMany):
            resp.headers["Retry-After"] = str(max(1, math.ceil(err.retry_after)))
        return resp
    except web.HTTPException as exc:
        if exc.status < 400 or not _wants_json(request):
            raise
        message = exc.reason
        if exc.status == 413:
            message = f"request body too large (limit {request.app._client_max_size} bytes)"
        elif exc.status == 404:
            message = f"no such endpoint: {request.method} {request.path}"
        elif exc.status == 405:
            message = f"method {request.method} not allowed on {request.path}"
        resp = error_response(exc.status, message)
        if exc.status == 405 and "Allow" in exc.headers:
            resp.headers["Allow"] = exc.headers["Allow"]
        return resp
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal error", "internal")
