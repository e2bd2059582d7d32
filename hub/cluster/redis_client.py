"""The hub's Redis client: redis-py's asyncio client, with its writes made cancellation-safe.

redis-py (8.x) writes every command under `asyncio.wait_for(write, socket_timeout)`. On
Python 3.11, `wait_for` returns the result and *drops the caller's cancellation* when the
cancel lands after the write finished but before the caller resumed (CPython gh-86296, fixed
in 3.12 by basing `wait_for` on `asyncio.timeout`). A write finishes within one loop iteration,
so the window is wide: cancelling a task in the middle of `await r.hset(...)` lost the
cancellation in about two cases of three (measured: `tests/hub/cluster/test_redis_client.py`). The
command then completed normally, the task went on with its loop, and whoever cancelled it
waited forever: the two-node tests hung in shutdown about one run in five.

`connect` builds the usual client from a URL, but its connections notice a cancellation
swallowed that way and raise it again. The command was already sent, so its reply is never
read: the connection is dropped (as redis-py does for a cancelled read) rather than returned to
the pool with a reply pending, which would hand that reply to the next command.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)


class _CancelSafeWrites(AbstractConnection):
    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        task = asyncio.current_task()
        before = task.cancelling() if task is not None else 0
        await super().send_packed_command(command, check_health)
        if task is not None and task.cancelling() > before:
            # cancelled meanwhile and `wait_for` swallowed it: the reply will not be read
            await self.disconnect(nowait=True)
            raise asyncio.CancelledError


class CancelSafeConnection(_CancelSafeWrites, Connection):
    pass


class CancelSafeSSLConnection(_CancelSafeWrites, SSLConnection):
    pass


class CancelSafeUnixConnection(_CancelSafeWrites, UnixDomainSocketConnection):
    pass


SAFE: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: CancelSafeConnection,
    SSLConnection: CancelSafeSSLConnection,
    UnixDomainSocketConnection: CancelSafeUnixConnection,
}


def connect(url: str, **options: Any) -> aioredis.Redis:
    """`redis.asyncio.from_url(url, **options)` with cancellation-safe connections; the client
    owns its pool (closed by `aclose()`)."""
    pool = aioredis.ConnectionPool.from_url(url, **options)
    cls = pool.connection_class
    if cls not in SAFE:  # a scheme this module does not know: refuse rather than hang later
        raise ValueError(f"redis: no cancellation-safe connection for {cls.__name__}")
    pool.connection_class = SAFE[cls]
    return aioredis.Redis.from_pool(pool)
