"""Recorder: segmented fragmented MP4 from a relay, hashes and manifest, pre-event ring,
bounded writer queue, disk errors, crash recovery of a cut segment."""

from __future__ import annotations

import asyncio
import errno
import threading
import time
from pathlib import Path
from typing import Any

import av
import pytest

from hub.recordings.verify import verify_path
from streams import recorder_writer
from streams.bitstream import inband_parameter_sets
from streams.media import CLOCK_RATE, Codec, Packet, StreamInfo
from streams.recorder import PreEventRing, Recorder, RecorderMode
from streams.recorder_manifest import (
    MANIFEST,
    ManifestBook,
    read_jsonl,
    sha256_file,
    truncate_incomplete,
)
from streams.recorder_writer import Segment, SegmentWriter, WriterOptions
from streams.relay import Relay
from streams.synthetic import SyntheticParams, encoded_loop

FPS = 25
STEP = CLOCK_RATE // FPS


def loop_packets(gop: int = 25) -> tuple[StreamInfo, list[tuple[bytes, bool]]]:
    params = SyntheticParams("rec-test", 160, 120, FPS, gop, 200_000)
    packets = encoded_loop(params).packets(threading.Event())
    info = StreamInfo(Codec.H264, 160, 120, FPS, inband_parameter_sets(Codec.H264, packets[0][0]))
    return info, packets


class Events:
    def __init__(self) -> None:
        self.opened: list[Segment] = []
        self.closed: list[Segment] = []
        self.failures: list[OSError] = []

    def segment_opened(self, segment: Segment) -> None:
        self.opened.append(segment)

    def segment_closed(self, segment: Segment) -> None:
        self.closed.append(segment)

    def write_failed(self, source: str, error: OSError) -> None:
        self.failures.append(error)


class Feeder:
    """Publishes the synthetic loop into a relay; wall time runs with the packet clock."""

    def __init__(self, relay: Relay, gop: int = 25) -> None:
        self.relay = relay
        self.info, self.loop = loop_packets(gop)
        self.index = 0
        self.t0 = time.time() - 600  # recorded "ten minutes ago"
        relay.publish_info(self.info)

    async def feed(self, seconds: float, *, pace: float = 0.002) -> None:
        for _ in range(int(seconds * FPS)):
            data, key = self.loop[self.index % len(self.loop)]
            pkt = Packet(data, self.index * STEP, key, captured=self.t0 + self.index / FPS)
            self.relay.publish(pkt)
            self.index += 1
            await asyncio.sleep(pace)


def frames_in(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


async def wait_for(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def options(tmp_path: Path, **kw: Any) -> WriterOptions:
    return WriterOptions(tmp_path, "cameras/cam", **{"segment_seconds": 2.0, **kw})


async def test_continuous_recording_is_segmented_hashed_and_chained(tmp_path: Path) -> None:
    relay, events = Relay("cam"), Events()
    rec = Recorder("cam", relay, options(tmp_path), events, ManifestBook())
    rec.start()
    feeder = Feeder(relay)
    await feeder.feed(7.0)
    await rec.stop()
    assert len(events.closed) >= 3
    assert [s.name for s in events.opened] == [s.name for s in events.closed]
    total = 0
    for seg in events.closed:
        path = tmp_path / seg.name
        assert seg.sha256 == sha256_file(path) and seg.bytes == path.stat().st_size
        if seg is not events.closed[-1]:
            assert seg.end_ms is not None and 1900 <= seg.end_ms - seg.start_ms <= 2100
        total += frames_in(path)
    assert total == int(7.0 * FPS)  # nothing lost, nothing re-encoded away
    with av.open(str(tmp_path / events.closed[0].name)) as c:
        assert c.metadata.get("title") == "cam"
    # consecutive: each segment starts where the previous ended (same clock)
    for a, b in zip(events.closed, events.closed[1:], strict=False):
        assert a.end_ms is not None and abs(b.start_ms - a.end_ms) <= 2
    manifests = await asyncio.to_thread(lambda: list(tmp_path.rglob(MANIFEST)))
    assert len(manifests) == 1 and len(read_jsonl(manifests[0])) == len(events.closed)
    assert verify_path(tmp_path).ok
    assert rec.stats()["drops"] == 0


async def test_fragments_reach_the_file_while_recording(tmp_path: Path) -> None:
    relay, events = Relay("cam"), Events()
    rec = Recorder("cam", relay, options(tmp_path, segment_seconds=60), events, ManifestBook())
    rec.start()
    feeder = Feeder(relay)
    await feeder.feed(3.1)
    await asyncio.sleep(0.3)
    path = tmp_path / events.opened[0].name
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(path.read_bytes())  # what a kill -9 would leave now
    truncate_incomplete(copy)
    frames = frames_in(copy)
    assert frames >= 2 * FPS, f"only {frames} frames reached the file: loss > 1 fragment"
    await rec.stop()


def test_truncate_incomplete_keeps_whole_fragments(tmp_path: Path) -> None:
    async def record() -> Path:
        relay, events = Relay("cam"), Events()
        rec = Recorder("cam", relay, options(tmp_path, segment_seconds=60), events, ManifestBook())
        rec.start()
        await Feeder(relay).feed(4.0)
        await rec.stop()
        return tmp_path / events.closed[0].name

    path = asyncio.run(record())
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 3 // 4])
    size = truncate_incomplete(cut)
    assert 0 < size < len(data) * 3 // 4
    with av.open(str(cut)) as c:
        frames = sum(1 for _ in c.decode(video=0))  # no decode error at the end
    assert FPS <= frames < 4 * FPS


def test_pre_event_ring_keeps_seconds_and_bytes() -> None:
    _, loop = loop_packets(gop=25)
    ring = PreEventRing(seconds=3.0, max_bytes=10**9)
    for i in range(300):
        data, key = loop[i % len(loop)]
        ring.add(Packet(data, i * STEP, key))
    out = ring.drain()
    assert out[0].keyframe
    span = (out[-1].pts - out[0].pts) / CLOCK_RATE
    assert 3.0 <= span < 3.0 + 1.0 + 0.1  # whole GOPs reaching back at least 3 s
    small = PreEventRing(seconds=30.0, max_bytes=1)
    for i in range(100):
        data, key = loop[i % len(loop)]
        small.add(Packet(data, i * STEP, key))
    assert small.drain()[0].keyframe and small.seconds() == 0.0
    assert len(ring.drain()) == 0


async def test_on_alert_writes_the_pre_event_then_stops(tmp_path: Path) -> None:
    relay, events = Relay("cam"), Events()
    rec = Recorder(
        "cam",
        relay,
        options(tmp_path, segment_seconds=60),
        events,
        ManifestBook(),
        mode=RecorderMode.ON_ALERT,
        pre_event=4.0,
        post_event=0.6,
    )
    rec.start()
    feeder = Feeder(relay)
    await feeder.feed(8.0)
    assert events.opened == [] and not rec.recording
    event_ms = int((feeder.t0 + feeder.index / FPS) * 1000)
    rec.trigger("mark")
    assert rec.recording
    await feeder.feed(2.0, pace=0.02)  # ~1 s of real time: past post_event
    await wait_for(lambda: events.closed)
    seg = events.closed[0]
    assert 4000 <= event_ms - seg.start_ms <= 5100, "starts ~pre_event before the event"
    assert not rec.recording
    await rec.stop()
    assert len(events.closed) == 1
    assert frames_in(tmp_path / seg.name) >= 4 * FPS


async def test_full_writer_queue_drops_and_resumes_at_a_keyframe(tmp_path: Path) -> None:
    events = Events()
    writer = SegmentWriter(
        "cam",
        options(tmp_path, queue_packets=8),
        events,
        ManifestBook(),
        asyncio.get_running_loop(),
    )
    writer.start()
    info, loop = loop_packets()
    writer.put(info)
    t0 = time.time()
    for i in range(200):  # no yield: the thread cannot keep up with 8 slots
        data, key = loop[i % len(loop)]
        writer.put(Packet(data, i * STEP, key, captured=t0 + i / FPS))
    await writer.stop()
    await asyncio.sleep(0.05)
    assert writer.drops > 0
    path = tmp_path / events.closed[0].name
    with av.open(str(path)) as c:
        frames = sum(1 for _ in c.decode(video=0))  # decodes cleanly: resumed on keyframes
    assert frames == writer.packets


async def test_disk_error_is_reported_and_recording_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = av.open
    calls = {"n": 0}

    def failing_open(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(*args, **kwargs)

    monkeypatch.setattr(av, "open", failing_open)
    monkeypatch.setattr(recorder_writer, "RETRY_S", 0.2)
    relay, events = Relay("cam"), Events()
    rec = Recorder("cam", relay, options(tmp_path), events, ManifestBook())
    rec.start()
    await Feeder(relay).feed(4.0, pace=0.01)
    await rec.stop()
    assert [e.errno for e in events.failures] == [errno.ENOSPC]
    assert events.closed, "recording went on after the disk error"
    assert rec.stats()["errors"] == 1
