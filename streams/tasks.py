"""TaskSet: background tasks with one owner.

Every component that starts tasks owns them: it spawns through its TaskSet and awaits
`close()` on shutdown. Tasks marked `cancellable=False` (a database write, a peer connection
closing — aiortc's `close()` breaks if cancelled midway) are awaited, never cancelled; the
others are cancelled, then awaited. A task that fails is logged, not lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class TaskSet:
    def __init__(self, name: str, log: logging.Logger | None = None) -> None:
        self.name = name
        self._log = log or logging.getLogger(__name__)
        self._cancellable: set[asyncio.Task[Any]] = set()
        self._protected: set[asyncio.Task[Any]] = set()

    def spawn(
        self, coro: Coroutine[Any, Any, T], *, cancellable: bool = True, name: str | None = None
    ) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        bucket = self._cancellable if cancellable else self._protected
        bucket.add(task)
        task.add_done_callback(bucket.discard)
        task.add_done_callback(self._report)
        return task

    def _report(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            err = task.exception()
            self._log.error("%s: task %s failed: %r", self.name, task.get_name(), err, exc_info=err)

    def __len__(self) -> int:
        return len(self._cancellable) + len(self._protected)

    async def close(self) -> None:
        """Cancel and await the cancellable tasks, await the others, until none is left
        (a task may spawn another while closing)."""
        while True:
            # a finished task leaves its set in a done-callback, which runs only once the loop
            # gets control: drop finished ones here, or awaiting them (which never yields)
            # would spin this loop forever
            for bucket in (self._cancellable, self._protected):
                for task in [t for t in bucket if t.done()]:
                    bucket.discard(task)
            if not self._cancellable and not self._protected:
                return
            cancellable = list(self._cancellable)
            for task in cancellable:
                task.cancel()
            if cancellable:
                await asyncio.gather(*cancellable, return_exceptions=True)
            if self._protected:
                await asyncio.gather(*self._protected, return_exceptions=True)
            await asyncio.sleep(0)  # let the done-callbacks run
