"""StreamDecoder: an H.265 camera that is analysed and watched in a browser is decoded once."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import av
import pytest

from streams.decoded import DecodedFrame, DecodedTaps
from streams.media import Codec, Packet
from streams.relay import Consumer
from streams.stream import Stream
from tests.fixtures.media_files import decode, worker_threads

URL = "synthetic://{name}?size=320x240&fps=25&gop=25&codec=hevc"


class CountingDecoder:
    """A PyAV decoder that counts the packets it is given (everything else passes through)."""

    def __init__(self, ctx: Any) -> None:
        object.__setattr__(self, "_ctx", ctx)
        object.__setattr__(self, "packets", 0)

    def decode(self, packet: Any = None) -> Any:
        object.__setattr__(self, "packets", self.packets + 1)
        return self._ctx.decode(packet)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._ctx, name, value)


class CountingCodecs:
    """Stands in for `av.CodecContext`: records every H.265 decoder the hub opens."""

    def __init__(self) -> None:
        self.hevc_decoders: list[CountingDecoder] = []
        self._real: Any = av.CodecContext

    def create(self, codec: Any, mode: str = "r", **kwargs: Any) -> Any:
        ctx = self._real.create(codec, mode, **kwargs)
        if mode != "r" or ctx.name != "hevc":
            return ctx
        counted = CountingDecoder(ctx)
        self.hevc_decoders.append(counted)
        return counted

    @property
    def packets(self) -> int:
        return sum(d.packets for d in self.hevc_decoders)


@pytest.fixture
def codecs(monkeypatch: pytest.MonkeyPatch) -> CountingCodecs:
    counting = CountingCodecs()
    monkeypatch.setattr(av, "CodecContext", counting)
    return counting


async def wait_until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


async def take(consumer: Consumer, count: int, within: float = 15.0) -> list[Packet]:
    async with asyncio.timeout(within):
        return [await consumer.get() for _ in range(count)]


@dataclass
class Decoding:
    decoded: int  # packets this decoder was given in the window
    published: int  # packets the camera's relay published in the window


async def decoding(
    codecs: CountingCodecs, stream: Stream, viewer: Consumer, seen: list[Packet] | None = None
) -> list[Decoding]:
    """The H.265 decoders that decoded packets while the viewer took 25 more packets (added
    to `seen`)."""
    before = {id(d): d.packets for d in codecs.hevc_decoders}
    published = stream.relay.packets
    (seen if seen is not None else []).extend(await take(viewer, 25))
    published = stream.relay.packets - published
    return [
        Decoding(d.packets - before.get(id(d), 0), published)
        for d in codecs.hevc_decoders
        if d.packets > before.get(id(d), 0)
    ]


def decode_threads() -> list[str]:
    return sorted(n for n in worker_threads() if "decode" in n or "transcode" in n)


async def test_analysed_and_watched_hevc_camera_is_decoded_once(codecs: CountingCodecs) -> None:
    stream = Stream("both", URL.format(name="both"), linger=0.2)
    taps = DecodedTaps(linger=0.2)
    pictures: list[DecodedFrame] = []
    try:
        taps.lease("both", stream, fps=5, height=120, listener=pictures.append)
        await wait_until(lambda: stream.relay.info is not None)
        viewer = stream.h264_relay().subscribe("viewer")
        packets = await take(viewer, 25)
        await wait_until(lambda: len(pictures) >= 5)
        # both consumers got their pictures
        frames = decode(Codec.H264, packets)
        assert len(frames) == 25 and {(f.width, f.height) for f in frames} == {(320, 240)}
        assert pictures[-1].image.shape == (120, 160, 3)
        assert pictures[-1].source_size == (320, 240)
        # ... from one H.265 decoder that sees each camera packet once (the decoder is
        # reopened with the loop filter on when the transcoder joins: one at a time)
        active = await decoding(codecs, stream, viewer)
        assert len(active) == 1, "the tap and the transcoder each run a decoder"
        assert active[0].decoded <= active[0].published + 2
        assert decode_threads() == ["zzhub-decode-both"]
        transcoder, tap = stream.transcoder, taps.get("both")
        assert transcoder is not None and tap is not None
        assert transcoder.stats()["frames_in"] > 0 and tap.decoded > 0
        assert transcoder.stats()["errors"] == 0 and tap.errors == 0
    finally:
        await taps.close()
        await stream.close()
    assert decode_threads() == []


async def test_tap_joining_and_leaving_a_watched_camera(codecs: CountingCodecs) -> None:
    """The viewer first, then the tap: the tap reads the transcoder's decoder; when it leaves,
    the viewer keeps its pictures; the decode thread ends with the stream."""
    stream = Stream("late", URL.format(name="late"), linger=0.2)
    taps = DecodedTaps(linger=0.1)
    pictures: list[DecodedFrame] = []
    try:
        lease = stream.acquire("viewer", viewer=True)
        await wait_until(lambda: stream.relay.info is not None)
        viewer = stream.h264_relay().subscribe("viewer", maxsize=500)
        seen = await take(viewer, 5)
        tap_lease = taps.lease("late", stream, fps=25, listener=pictures.append)
        await wait_until(lambda: len(pictures) >= 10)
        # the tap's pictures come from the transcoder's decoder
        assert len(await decoding(codecs, stream, viewer, seen)) == 1
        assert decode_threads() == ["zzhub-decode-late"]
        tap_lease.release()
        await wait_until(lambda: taps.get("late") is None)
        got = len(pictures)
        assert len(await decoding(codecs, stream, viewer, seen)) == 1
        assert len(pictures) == got
        seen.extend(iter(viewer.get_nowait, None))
        frames = decode(Codec.H264, seen)
        assert len(frames) == len(seen) >= 55, "the viewer's pictures all decode, gap-free"
        assert [p.pts for p in seen] == sorted({p.pts for p in seen})
        assert decode_threads() == ["zzhub-decode-late"]
        assert stream.decoder().sinks == 1  # the transcoder alone
        lease.release()
    finally:
        await taps.close()
        await stream.close()
    assert decode_threads() == []


async def test_keyframes_only_tap_then_a_viewer(codecs: CountingCodecs) -> None:
    """A keyframes-only tap has only keyframes decoded; a viewer joining makes the decoder
    decode every packet from the next keyframe on (no decode errors), and the tap still gets
    keyframes alone."""
    stream = Stream("keys", URL.format(name="keys"), linger=0.2)
    taps = DecodedTaps(linger=0.2)
    pictures: list[DecodedFrame] = []
    try:
        taps.lease("keys", stream, fps=25, listener=pictures.append, keyframes_only=True)
        await wait_until(lambda: len(pictures) >= 2)
        decoder = stream.decoder()
        assert decoder.decoded <= stream.relay.keyframes
        viewer = stream.h264_relay().subscribe("viewer", maxsize=500)
        seen = await take(viewer, 30)
        assert len(decode(Codec.H264, seen)) == 30
        await wait_until(lambda: len(pictures) >= 4)
        steps = {b.pts - a.pts for a, b in itertools.pairwise(pictures)}
        assert steps == {90_000}, steps  # one keyframe a second
        assert decoder.decoded > stream.relay.keyframes  # now every packet is decoded
        assert decoder.errors == 0 and decoder.sink_errors == 0
        assert decoder.stats()["sinks"] == 2
    finally:
        await taps.close()
        await stream.close()
    assert decode_threads() == []
