"""Relay: GOP cache, bounded consumers, drops to the next keyframe, parameter-set injection."""

from __future__ import annotations

import asyncio

import pytest

from streams import bitstream
from streams.media import Codec, Packet, StreamInfo
from streams.relay import Relay, RelayClosed

SPS = bytes([0x67, 0x42, 0xC0, 0x1F, 0x8C, 0x8D, 0x40])
PPS = bytes([0x68, 0xCE, 0x3C, 0x80])
IDR = bytes([0x65, 0x88, 0x84, 0x00])
SLICE = bytes([0x41, 0x9A, 0x02])


def key(pts: int, with_sps: bool = True) -> Packet:
    nals = [SPS, PPS, IDR] if with_sps else [IDR]
    return Packet(bitstream.join_annexb(nals), pts, True)


def delta(pts: int) -> Packet:
    return Packet(bitstream.join_annexb([SLICE]), pts, False)


def test_new_consumer_starts_with_cached_gop() -> None:
    relay = Relay("cam")
    relay.publish(delta(0))  # before any keyframe: not cached
    relay.publish(key(3600))
    relay.publish(delta(7200))
    relay.publish(delta(10800))
    consumer = relay.subscribe("late")
    got = [consumer.get_nowait() for _ in range(3)]
    assert [p.pts for p in got if p] == [3600, 7200, 10800]
    assert got[0] is not None and got[0].keyframe
    assert consumer.get_nowait() is None


def test_consumer_before_first_keyframe_waits_for_one() -> None:
    relay = Relay("cam")
    consumer = relay.subscribe("early")
    relay.publish(delta(0))
    assert consumer.get_nowait() is None
    relay.publish(key(3600))
    first = consumer.get_nowait()
    assert first is not None and first.keyframe


def test_slow_consumer_drops_and_resumes_at_keyframe_without_hurting_others() -> None:
    relay = Relay("cam")
    relay.publish(key(0))
    slow = relay.subscribe("slow", maxsize=4)
    fast = relay.subscribe("fast", maxsize=1000)
    for i in range(1, 10):
        relay.publish(delta(i * 3600))
    assert slow.drops > 0
    assert relay.drops == slow.drops
    # fast got everything
    fast_got = []
    while (p := fast.get_nowait()) is not None:
        fast_got.append(p.pts)
    assert fast_got == [i * 3600 for i in range(10)]
    # slow skips deltas until the next keyframe, then resumes
    while slow.get_nowait() is not None:
        pass
    relay.publish(delta(100 * 3600))
    assert slow.get_nowait() is None
    relay.publish(key(101 * 3600))
    relay.publish(delta(102 * 3600))
    resumed = slow.get_nowait()
    assert resumed is not None and resumed.keyframe and resumed.pts == 101 * 3600
    nxt = slow.get_nowait()
    assert nxt is not None and nxt.pts == 102 * 3600


def test_parameter_sets_injected_before_idr_without_sps() -> None:
    relay = Relay("cam")
    relay.publish_info(
        StreamInfo(Codec.H264, 1280, 720, 25.0, parameter_sets=bitstream.join_annexb([SPS, PPS]))
    )
    relay.publish(key(0, with_sps=False))
    relay.publish(key(90000, with_sps=True))
    consumer = relay.subscribe("c")
    p = consumer.get_nowait()
    assert p is not None
    assert bitstream.nal_types(p.data) == [7, 8, 5]
    assert relay.injected_parameter_sets == 1  # the second keyframe had its own SPS


def test_gop_cache_is_bounded() -> None:
    relay = Relay("cam", gop_limit=5)
    relay.publish(key(0))
    for i in range(1, 20):
        relay.publish(delta(i))
    assert relay.gop() == []
    relay.publish(key(100))
    assert len(relay.gop()) == 1


async def test_get_wakes_on_publish_and_close_ends_consumers() -> None:
    relay = Relay("cam")
    consumer = relay.subscribe("c")
    waiter = asyncio.create_task(consumer.get())
    await asyncio.sleep(0)
    relay.publish(key(0))
    p = await asyncio.wait_for(waiter, 1)
    assert p.keyframe
    waiter = asyncio.create_task(consumer.get())
    await asyncio.sleep(0)
    relay.close()
    with pytest.raises(RelayClosed):
        await asyncio.wait_for(waiter, 1)
    with pytest.raises(RelayClosed):
        relay.subscribe("after-close")


async def test_async_iteration_stops_when_consumer_closed() -> None:
    relay = Relay("cam")
    consumer = relay.subscribe("c")
    relay.publish(key(0))
    relay.publish(delta(1))
    seen = []

    async def read() -> None:
        async for p in consumer:
            seen.append(p.pts)

    task = asyncio.create_task(read())
    await asyncio.sleep(0.01)
    consumer.close()
    await asyncio.wait_for(task, 1)
    assert seen == [0, 1]
    assert relay.consumers == []


def test_newest_inband_parameter_sets_are_injected() -> None:
    relay = Relay("cam")
    old_sps = bytes([0x67, 0x42, 0xC0, 0x1E, 0x01])
    relay.publish_info(
        StreamInfo(Codec.H264, 640, 360, 25.0, parameter_sets=bitstream.join_annexb([old_sps, PPS]))
    )
    relay.publish(key(0, with_sps=True))  # in-band SPS (the 1280x720 one)
    relay.publish(key(90000, with_sps=False))
    consumer = relay.subscribe("c")
    p = consumer.get_nowait()
    assert p is not None
    nals = bitstream.split_annexb(p.data)
    assert nals[0] == SPS, "the camera's newest SPS, not the SDP's"
