"""GB/T 28181 devices over HTTP: `GET /api/gb28181/devices` (the devices registered or known
since the hub started, of the caller's scope; staff only)."""

from __future__ import annotations

from aiohttp import web

from config.schema import Role
from hub.core.auth import principal
from hub.core.errors import Forbidden
from hub.gb28181.service import REGISTRAR

READERS = frozenset({Role.ADMIN, Role.OPERATOR, Role.DISPATCHER})


async def list_devices(request: web.Request) -> web.Response:
    p = principal(request)
    if p.role not in READERS:
        raise Forbidden(f"a {p.role} does not see the GB/T 28181 devices")
    registrar = request.app.get(REGISTRAR)
    devices = registrar.devices.values() if registrar is not None else []
    return web.json_response(
        [d.to_json() for d in sorted(devices, key=lambda d: d.id) if p.can_see(d.centre)]
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/gb28181/devices", list_devices)
