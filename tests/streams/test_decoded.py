"""DecodedTap: one decode per camera, reduced rate and size per lease, stops when unused."""

from __future__ import annotations

import asyncio
import itertools
import threading

from streams.decoded import DecodedFrame, DecodedTaps
from streams.stream import Stream, StreamState

URL = "synthetic://tap?size=320x240&fps=25&gop=25"


async def wait_until(check: object, timeout: float = 10.0) -> None:
    assert callable(check)
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


async def test_one_decode_feeds_leases_at_their_own_rate_and_size() -> None:
    stream = Stream("tap", URL, linger=0.2)
    taps = DecodedTaps(linger=0.2)
    slow: list[DecodedFrame] = []
    fast: list[DecodedFrame] = []
    threads: set[str] = set()

    def on_slow(frame: DecodedFrame) -> None:
        threads.add(threading.current_thread().name)
        slow.append(frame)

    try:
        a = taps.lease("tap", stream, fps=5, height=100, listener=on_slow)
        b = taps.lease("tap", stream, fps=12.5, height=120, listener=fast.append)
        tap = taps.get("tap")
        assert tap is not None and tap.users == 2
        await wait_until(lambda: len(slow) >= 10, timeout=15)
        # one decoder: every camera picture decoded once, converted only when someone is due
        assert tap.decoded >= len(slow) * 4
        assert 1.7 <= len(fast) / len(slow) <= 3.0
        # the largest height asked for, aspect kept; every lease gets the same picture object
        assert slow[-1].image.shape == (120, 160, 3)
        assert slow[-1].source_size == (320, 240)
        gaps = [y.pts - x.pts for x, y in itertools.pairwise(slow[2:])]
        assert all(abs(g - 18000) <= 3600 for g in gaps), gaps  # 5 fps on the 90 kHz clock
        assert threads == {"zzhub-decode-tap"}, "listeners run in the decode thread"
        assert stream.state is StreamState.ONLINE
        a.release()
        b.release()
        await wait_until(lambda: taps.get("tap") is None and not tap.running)
        await wait_until(lambda: str(stream.state) == "idle")  # the tap's pull ended
    finally:
        await taps.close()
        await stream.close()


async def test_keyframes_only_decodes_keyframes_alone() -> None:
    stream = Stream("key", URL, linger=0.2)
    taps = DecodedTaps()
    frames: list[DecodedFrame] = []
    try:
        taps.lease("key", stream, fps=25, height=0, listener=frames.append, keyframes_only=True)
        await wait_until(lambda: len(frames) >= 3, timeout=15)
        tap = taps.get("key")
        assert tap is not None
        assert tap.decoded <= stream.relay.keyframes
        assert frames[-1].image.shape == (240, 320, 3)
        steps = {y.pts - x.pts for x, y in itertools.pairwise(frames)}
        assert steps == {90_000}, steps  # one keyframe a second (gop 25 at 25 fps)
    finally:
        await taps.close()
        await stream.close()


async def test_listener_callbacks_reach_the_event_loop_and_errors_are_counted() -> None:
    stream = Stream("cb", URL, linger=0.2)
    taps = DecodedTaps()
    loop_threads: list[str] = []
    calls = 0

    def listener(frame: DecodedFrame) -> object:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("analyser bug")
        return lambda: loop_threads.append(threading.current_thread().name)

    try:
        taps.lease("cb", stream, fps=10, listener=listener)  # type: ignore[arg-type]
        await wait_until(lambda: len(loop_threads) >= 3)
        assert set(loop_threads) == {threading.main_thread().name}
        tap = taps.get("cb")
        assert tap is not None and tap.errors == 1 and tap.running
    finally:
        await taps.close()
        await stream.close()


async def test_close_leaves_no_thread() -> None:
    before = {t.ident for t in threading.enumerate()}
    stream = Stream("close", URL, linger=0.2)
    taps = DecodedTaps()
    frames: list[DecodedFrame] = []
    taps.lease("close", stream, fps=5, listener=frames.append)
    await wait_until(lambda: len(frames) >= 2)
    await taps.close()
    await stream.close()
    left = [t.name for t in threading.enumerate() if t.ident not in before]
    assert left == []
