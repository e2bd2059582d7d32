"""Relay: fan one camera's encoded packets out to many consumers.

The relay keeps the current GOP (every packet since the last keyframe) so that a new consumer
starts on a keyframe at once, and gives each consumer a bounded queue. A consumer that falls
behind loses its queue (counted in `drops`) and resumes at the next keyframe; it never slows
the camera or the other consumers. Everything here runs on the event loop thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator

from streams import bitstream
from streams.media import Codec, Packet, StreamInfo

log = logging.getLogger(__name__)

DEFAULT_QUEUE = 120  # packets per consumer: ~5 s at 25 fps
GOP_CACHE_LIMIT = 600  # packets; a camera with a longer GOP gets its cache restarted


class RelayClosed(Exception):
    """The relay ended (camera removed or hub shutting down)."""


class Consumer:
    """One subscriber's bounded queue. Read with `await get()` or `async for`."""

    def __init__(self, relay: Relay, name: str, maxsize: int) -> None:
        self.relay = relay
        self.name = name
        self.maxsize = maxsize
        self.packets = 0
        self.drops = 0
        self._queue: deque[Packet] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._need_keyframe = False
        self._closed = False

    def _offer(self, packet: Packet) -> None:
        if self._need_keyframe:
            if not packet.keyframe:
                self.drops += 1
                self.relay.drops += 1
                return
            self._need_keyframe = False
        if len(self._queue) >= self.maxsize:
            # too slow: drop what is queued and wait for the next keyframe
            self.drops += len(self._queue) + 1
            self.relay.drops += len(self._queue) + 1
            self._queue.clear()
            if not packet.keyframe:
                self._need_keyframe = True
                return
        self._queue.append(packet)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def pending(self) -> int:
        return len(self._queue)

    async def get(self) -> Packet:
        while not self._queue:
            if self._closed:
                raise RelayClosed(self.relay.name)
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self.packets += 1
        return self._queue.popleft()

    def get_nowait(self) -> Packet | None:
        if not self._queue:
            if self._closed:
                raise RelayClosed(self.relay.name)
            return None
        self.packets += 1
        return self._queue.popleft()

    def __aiter__(self) -> AsyncIterator[Packet]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Packet]:
        while True:
            try:
                yield await self.get()
            except RelayClosed:
                return

    def close(self) -> None:
        """Unsubscribe. Pending `get()` calls raise `RelayClosed`."""
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        self.relay._remove(self)
        self._wake()

    @property
    def closed(self) -> bool:
        return self._closed


class Relay:
    """Packets of one video stream, with its GOP cache and its consumers."""

    def __init__(self, name: str, *, gop_limit: int = GOP_CACHE_LIMIT, replay: bool = True) -> None:
        self.name = name
        self.replay = replay  # default for subscribe(): start new consumers on the cached GOP
        self.info: StreamInfo | None = None
        self.gop_limit = gop_limit
        self._gop: list[Packet] = []
        self._consumers: list[Consumer] = []
        self._closed = False
        # counters
        self.packets = 0
        self.bytes = 0
        self.keyframes = 0
        self.drops = 0
        self.injected_parameter_sets = 0
        self._inband_parameter_sets = b""
        self.last_packet_at = 0.0  # time.time() of the last packet
        self._keyframe_waiters: list[asyncio.Future[None]] = []

    # -- producer side -------------------------------------------------------------------
    def publish_info(self, info: StreamInfo) -> None:
        self.info = info
        self._inband_parameter_sets = b""  # a new connection may bring new ones

    def publish(self, packet: Packet) -> None:
        if self._closed:
            return
        packet = self._with_parameter_sets(packet)
        self.packets += 1
        self.bytes += len(packet.data)
        self.last_packet_at = packet.captured
        if packet.keyframe:
            self.keyframes += 1
            self._gop = [packet]
            for waiter in self._keyframe_waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._keyframe_waiters.clear()
        elif self._gop:
            if len(self._gop) >= self.gop_limit:
                self._gop = []  # GOP too long to cache; wait for the next keyframe
            else:
                self._gop.append(packet)
        for consumer in self._consumers:
            consumer._offer(packet)

    def _with_parameter_sets(self, packet: Packet) -> Packet:
        """Prepend SPS/PPS to an H.264 keyframe that lacks them (SDP-only parameter sets).

        The newest in-band SPS/PPS win over the SDP's, so a camera that changes resolution
        mid-stream keeps being injected with the right ones."""
        info = self.info
        if not packet.keyframe or info is None or info.codec is not Codec.H264:
            return packet
        if bitstream.has_sps(packet.data):
            self._inband_parameter_sets = bitstream.inband_parameter_sets(Codec.H264, packet.data)
            return packet
        parameter_sets = self._inband_parameter_sets or info.parameter_sets
        if not parameter_sets:
            return packet
        self.injected_parameter_sets += 1
        return Packet(
            data=parameter_sets + packet.data,
            pts=packet.pts,
            keyframe=True,
            captured=packet.captured,
            meta=packet.meta,
        )

    def close(self) -> None:
        self._closed = True
        for consumer in list(self._consumers):
            consumer.close()
        for waiter in self._keyframe_waiters:
            if not waiter.done():
                waiter.cancel()
        self._keyframe_waiters.clear()

    # -- consumer side -------------------------------------------------------------------
    def subscribe(
        self, name: str = "", *, maxsize: int = DEFAULT_QUEUE, replay: bool | None = None
    ) -> Consumer:
        """A new consumer. With `replay`, it starts with the cached GOP (keyframe first)."""
        if self._closed:
            raise RelayClosed(self.name)
        consumer = Consumer(self, name, maxsize)
        if (self.replay if replay is None else replay) and self._gop:
            # the replayed GOP may be longer than the live bound; let it in whole
            consumer._queue.extend(self._gop)
            consumer.maxsize = max(maxsize, len(self._gop) + maxsize)
        else:
            consumer._need_keyframe = True
        self._consumers.append(consumer)
        return consumer

    def _remove(self, consumer: Consumer) -> None:
        if consumer in self._consumers:
            self._consumers.remove(consumer)

    def gop(self) -> list[Packet]:
        """The cached packets from the last keyframe on (empty before the first keyframe)."""
        return list(self._gop)

    def clear_gop(self) -> None:
        self._gop = []

    async def wait_keyframe(self, timeout: float) -> bool:
        """Wait until the GOP cache holds a keyframe; False on timeout."""
        if self._gop:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._keyframe_waiters.append(fut)
        try:
            async with asyncio.timeout(timeout):
                await fut
        except TimeoutError:
            return False
        finally:
            if fut in self._keyframe_waiters:
                self._keyframe_waiters.remove(fut)
        return bool(self._gop)

    @property
    def consumers(self) -> list[Consumer]:
        return list(self._consumers)

    @property
    def closed(self) -> bool:
        return self._closed

    def stats(self) -> dict[str, int | float]:
        return {
            "packets": self.packets,
            "bytes": self.bytes,
            "keyframes": self.keyframes,
            "drops": self.drops,
            "consumers": len(self._consumers),
            "gop_packets": len(self._gop),
            "injected_parameter_sets": self.injected_parameter_sets,
        }
