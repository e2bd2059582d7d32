"""Authentication of every API request: a bearer token, or `?token=` on the WebSocket (browsers
cannot set its headers). `/api/health` and `/api/login` are public."""

from __future__ import annotations

from aiohttp import web

from hub.core.auth import PRINCIPAL, TOKENS, AuthError
from hub.core.centres import CENTRES
from hub.core.errors import Unauthenticated
from hub.core.revocations import REVOCATIONS
from hub.http.errors import Handler

PUBLIC_PATHS = {"/api/health", "/api/login"}


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    needs_auth = (path.startswith("/api") and path not in PUBLIC_PATHS) or path in (
        "/metrics",
        "/ws",
    )
    if needs_auth:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        if not token and path == "/ws":
            token = request.query.get("token", "")  # browsers cannot set WS headers
        if not token:
            raise Unauthenticated("missing bearer token (Authorization: Bearer TOKEN)")
        try:
            p, issued_ms = request.app[TOKENS].verify_issued(token)
        except AuthError as err:
            raise Unauthenticated(str(err)) from None
        revocations = request.app.get(REVOCATIONS)
        if revocations is not None and revocations.revoked(p.user, issued_ms):
            raise Unauthenticated("this token was signed out: sign in again", "signed_out")
        centres = request.app.get(CENTRES)
        if centres is not None and p.centre not in centres:  # "4109" would see all below it
            raise Unauthenticated(f"the token's centre {p.centre} is not a centre of this hub")
        request[PRINCIPAL] = p
    return await handler(request)
