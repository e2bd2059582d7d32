"""Listeners of one kind of happening: `Hook`, the one listener type of the hub.

    on_end: Hook[[Room]] = Hook("room ended")
    handle = rooms.on_end.connect(calls.room_ended)   # at start
    rooms.on_end.emit(room)                           # in the owner
    handle.disconnect()                               # at close (idempotent)

Listeners run in the order they connected, synchronously, on the emitter's stack. One that
raises is logged and the others still run: a bug in one listener never breaks the emitter or
the listeners after it. `emit` returns what the listeners returned, so an owner that accepts
coroutines (`RoomMedia.on_published`) or awaits async listeners (`WsRouter.on_connect`) can
do so; every other owner ignores the results.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Generic, ParamSpec

log = logging.getLogger(__name__)

P = ParamSpec("P")


class Connection:
    """What `Hook.connect` hands back; `disconnect()` removes the listener."""

    __slots__ = ("_hook", "listener")

    def __init__(self, hook: Hook[Any], listener: Callable[..., Any]) -> None:
        self._hook: Hook[Any] | None = hook
        self.listener = listener

    def disconnect(self) -> None:
        hook, self._hook = self._hook, None
        if hook is not None:
            hook._remove(self)

    @property
    def connected(self) -> bool:
        return self._hook is not None


class Hook(Generic[P]):
    __slots__ = ("_listeners", "name")

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._listeners: list[Connection] = []  # in the order they connected

    def connect(self, listener: Callable[P, Any]) -> Connection:
        connection = Connection(self, listener)
        self._listeners.append(connection)
        return connection

    def _remove(self, connection: Connection) -> None:
        for i, known in enumerate(self._listeners):
            if known is connection:  # its own entry, even if the listener is connected twice
                del self._listeners[i]
                return

    def emit(self, *args: P.args, **kwargs: P.kwargs) -> list[Any]:
        results: list[Any] = []
        for connection in list(self._listeners):
            try:
                results.append(connection.listener(*args, **kwargs))
            except Exception:
                log.exception("a listener of %s failed", self.name or "a hook")
        return results

    def __len__(self) -> int:
        return len(self._listeners)

    def __bool__(self) -> bool:
        return True  # a hook with no listeners is still a hook (not falsy like a list)
