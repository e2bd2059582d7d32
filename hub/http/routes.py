"""What a route serves, declared with the route: `owned(kind, param)` marks a handler that
acts on one object of `kind` named by the path parameter `param`.

In a hub cluster each object lives on the node that created it; a request for an object
another node owns is forwarded to that node (the cluster add-on's middleware reads the mark).
On a single node the mark changes nothing.

    r.add_get("/api/calls/{call}", owned("call", "call")(get_call))

`known_here(app, item)` may say an object is served here although this node did not claim it
(a room that ended here).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web

H = TypeVar("H", bound=Callable[[web.Request], Awaitable[web.StreamResponse]])
ATTR = "zzhub_owned"


@dataclass(frozen=True, slots=True)
class Owned:
    kind: str
    param: str
    known_here: Callable[[web.Application, str], bool] | None = None


def owned(
    kind: str, param: str, known_here: Callable[[web.Application, str], bool] | None = None
) -> Callable[[H], H]:
    def mark(handler: H) -> H:
        setattr(handler, ATTR, Owned(kind, param, known_here))
        return handler

    return mark


def owner_of(request: web.Request) -> tuple[Owned, str] | None:
    """The mark of the route `request` matched and the object it names; None if unmarked."""
    mark = getattr(request.match_info.handler, ATTR, None)
    if not isinstance(mark, Owned):
        return None
    item = request.match_info.get(mark.param)
    return (mark, item) if item else None
