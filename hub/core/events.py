"""The event bus: domain events fanned out to WebSocket clients and other listeners.

An event concerns one centre; a subscriber sees the events of its own centre and of every
centre below it (so a county operator gets a village's alerts), plus the events addressed to
it by user name; an event of no centre (`""`) concerns everyone. Each subscription has a
bounded queue: a subscriber that falls behind loses the oldest events and is told so
(`lagged`), so it can reload its state; it never slows the publisher.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from streams.hooks import Hook


@dataclass(frozen=True, slots=True)
class Event:
    topic: str  # e.g. "presence", "camera.status", "alert.raised", "call.ringing"
    centre: str  # the centre the event concerns ("" = everyone, e.g. hub shutdown)
    data: dict[str, Any]
    to_users: frozenset[str] = frozenset()  # non-empty: only these users receive it
    seq: int = 0
    at: float = field(default_factory=time.time)
    origin: str = ""  # "": published on this node; else the hub node it came from (cluster)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "event",
            "topic": self.topic,
            "centre": self.centre,
            "seq": self.seq,
            "at": self.at,
            "data": self.data,
        }


class Subscription:
    def __init__(self, bus: EventBus, user: str, scope: str, maxsize: int) -> None:
        self.bus = bus
        self.user = user
        self.scope = scope
        self.maxsize = maxsize
        self.lagged = 0  # events dropped because this subscriber was slow
        self._queue: deque[Event] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        # optional synchronous delivery: called while nothing is queued; True = delivered (or
        # deliberately skipped), False = queue it for the subscriber's own task. Fan-out to
        # thousands of WebSockets costs one write each instead of one task wake-up each.
        self.direct: Callable[[Event], bool] | None = None

    def wants(self, event: Event) -> bool:
        if event.to_users:
            return self.user in event.to_users
        return not event.centre or event.centre.startswith(self.scope)

    def _offer(self, event: Event) -> None:
        if not self._queue and self.direct is not None and self.direct(event):
            return
        if len(self._queue) >= self.maxsize:
            self._queue.popleft()
            self.lagged += 1
        self._queue.append(event)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> Event:
        while not self._queue:
            if self._closed:
                raise asyncio.CancelledError("subscription closed")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    def close(self) -> None:
        self._closed = True
        self.bus._subscriptions.discard(self)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class EventBus:
    def __init__(self, maxsize: int = 256) -> None:
        self.maxsize = maxsize
        self._subscriptions: set[Subscription] = set()
        self._seq = itertools.count(1)
        self.published = 0
        # called with every published event (the cluster forwards local ones to other nodes)
        self.taps: Hook[[Event]] = Hook("event published")

    def subscribe(self, user: str, scope: str, maxsize: int | None = None) -> Subscription:
        sub = Subscription(self, user, scope, maxsize or self.maxsize)
        self._subscriptions.add(sub)
        return sub

    def publish(
        self,
        topic: str,
        centre: str,
        data: dict[str, Any],
        *,
        to_users: frozenset[str] | set[str] = frozenset(),
        origin: str = "",
        at: float | None = None,
    ) -> Event:
        seq = next(self._seq)
        event = Event(topic, centre, data, frozenset(to_users), seq, at or time.time(), origin)
        self.published += 1
        for sub in self._subscriptions:
            if sub.wants(event):
                sub._offer(event)
        self.taps.emit(event)
        return event

    def __len__(self) -> int:
        return len(self._subscriptions)

    def close(self) -> None:
        for sub in list(self._subscriptions):
            sub.close()


EVENTS = web.AppKey("events", EventBus)
