"""TaskSet: owned tasks, cancellable or protected, failures logged, nothing left on close."""

from __future__ import annotations

import asyncio
import logging

import pytest

from streams.tasks import TaskSet


async def test_close_cancels_waiters_and_awaits_protected_work(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = TaskSet("t")
    done: list[str] = []

    async def forever() -> None:
        await asyncio.sleep(3600)

    async def write() -> None:
        await asyncio.sleep(0.05)
        done.append("written")

    async def fail() -> None:
        raise RuntimeError("boom")

    waiter = tasks.spawn(forever())
    tasks.spawn(write(), cancellable=False)
    with caplog.at_level(logging.ERROR):
        tasks.spawn(fail())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    assert "boom" in caplog.text
    await tasks.close()
    assert waiter.cancelled()
    assert done == ["written"], "protected work finishes, it is not cancelled"
    assert len(tasks) == 0


async def test_close_waits_for_tasks_spawned_while_closing() -> None:
    tasks = TaskSet("t")
    done: list[int] = []

    async def chain(n: int) -> None:
        await asyncio.sleep(0.01)
        done.append(n)
        if n < 3:
            tasks.spawn(chain(n + 1), cancellable=False)

    tasks.spawn(chain(1), cancellable=False)
    await tasks.close()
    assert done == [1, 2, 3]


async def test_close_right_after_a_task_finished_returns() -> None:
    """A task that ended in this very loop iteration is still in its set (its done-callback
    has not run): close() must not spin on it (it used to, blocking the loop: seen as a hung
    shutdown after a wall and a substream session)."""
    tasks = TaskSet("t")

    async def nothing() -> None:
        return None

    task = tasks.spawn(nothing())
    await asyncio.sleep(0)
    assert task.done() and len(tasks) == 1  # finished, not yet discarded
    await tasks.close()
    assert len(tasks) == 0
