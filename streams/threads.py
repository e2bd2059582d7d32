"""Blocking media work (PyAV demux, decode, encode; OpenCV) in dedicated threads.

`run_in_thread` runs one blocking `work(emit, stop)` in its own thread and bridges results to
the event loop in order; `feed_thread` adds the common shape around it: packets read from a
relay consumer on the loop are offered to the worker (through the worker's own bounded queue)
until the relay ends or the worker stops. Neither ever leaves a thread behind: cancelling them
sets `stop` and joins the thread before the cancellation completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable

from streams.media import Packet
from streams.relay import Consumer

Emit = Callable[[Callable[[], None]], None]

log = logging.getLogger(__name__)


class Stopped(Exception):
    """Raised inside a worker thread when its owner asked it to stop."""


async def run_in_thread(name: str, work: Callable[[Emit, threading.Event], None]) -> None:
    """Run blocking `work(emit, stop)` in one dedicated thread until it returns.

    `emit(callback)` schedules `callback()` on the event loop, in order. Exceptions raised by
    `work` are re-raised here. On cancellation `stop` is set and the thread is joined before
    the cancellation completes, so no thread outlives the call.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    stop = threading.Event()

    def emit(callback: Callable[[], None]) -> None:
        loop.call_soon_threadsafe(callback)

    def finish(error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    def main() -> None:
        error: BaseException | None = None
        try:
            work(emit, stop)
        except Stopped:
            pass
        except BaseException as exc:  # handed to the awaiting task
            error = exc
        try:
            loop.call_soon_threadsafe(finish, error)
        except RuntimeError:  # loop already closed: nobody is waiting
            pass

    thread = threading.Thread(target=main, name=f"zzhub-{name}", daemon=True)
    thread.start()
    try:
        await asyncio.shield(done)
    except asyncio.CancelledError:
        stop.set()
        while not done.done():
            try:
                await asyncio.shield(done)
            except asyncio.CancelledError:
                continue  # keep waiting: the thread must end before we do
            except Exception:
                break
        thread.join()
        raise
    finally:
        thread.join()


async def feed_thread(
    consumer: Consumer,
    offer: Callable[[Packet], None],
    name: str,
    work: Callable[[Emit, threading.Event], None],
) -> None:
    """Offer every packet of `consumer` to a worker thread running `work` until the relay
    ends or the worker stops; a worker failure is logged. Closes the consumer."""
    worker = asyncio.create_task(run_in_thread(name, work))
    try:
        async for packet in consumer:
            if worker.done():
                break
            offer(packet)
        if worker.done() and not worker.cancelled() and worker.exception() is not None:
            log.error("%s failed: %s", name, worker.exception())
    finally:
        consumer.close()
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
