"""Stream supervision: one pull per camera, on-demand with linger, reconnect with backoff,
a continuous timeline and the same relay across reconnects. Uses a scripted fake source
(pure unit tests of our own logic; the real RTSP camera is exercised in test_rtsp*.py and
tests/hub)."""

from __future__ import annotations

import asyncio
import itertools

from streams import bitstream
from streams.media import Codec, Packet, PacketSink, SourceError, StreamInfo
from streams.registry import SourceOptions
from streams.stream import Stream, StreamState, backoff_delays

IDR = bitstream.join_annexb(
    [bytes([0x67, 0x42, 0, 0x1F]), bytes([0x68, 0xCE]), bytes([0x65, 0x88])]
)
SLICE = bitstream.join_annexb([bytes([0x41, 0x9A])])


class ScriptedCamera:
    """Each connection sends `per_session` packets (10 ms apart) then ends or fails."""

    def __init__(self, per_session: int = 5, fail_first: int = 0, forever: bool = False) -> None:
        self.per_session = per_session
        self.fail_first = fail_first
        self.forever = forever
        self.connections = 0
        self.running = 0
        self.cancelled = 0

    def factory(self, url: str, options: SourceOptions) -> ScriptedCamera.Conn:
        return ScriptedCamera.Conn(self)

    class Conn:
        def __init__(self, cam: ScriptedCamera) -> None:
            self.cam = cam

        async def run(self, sink: PacketSink) -> None:
            cam = self.cam
            cam.connections += 1
            if cam.connections <= cam.fail_first:
                raise SourceError("connection refused")
            cam.running += 1
            try:
                sink.on_info(StreamInfo(Codec.H264, 640, 360, 25.0))
                i = 0
                # every session restarts its clock at a random-looking origin
                origin = 5_000_000 * cam.connections
                while cam.forever or i < cam.per_session:
                    data = IDR if i % 5 == 0 else SLICE
                    sink.on_packet(Packet(data, origin + i * 3600, i % 5 == 0))
                    i += 1
                    await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                cam.cancelled += 1
                raise
            finally:
                cam.running -= 1


def make_stream(cam: ScriptedCamera, **kw: object) -> Stream:
    return Stream(
        "cam",
        "fake://cam",
        linger=kw.pop("linger", 0.2),  # type: ignore[arg-type]
        backoff=kw.pop("backoff", [(0.01, 100)]),  # type: ignore[arg-type]
        source_factory=cam.factory,
        **kw,  # type: ignore[arg-type]
    )


def test_backoff_schedule_matches_issue() -> None:
    delay = backoff_delays([(1, 5), (5, 5), (10, 10), (60, 1)])
    assert [delay(i) for i in range(5)] == [1] * 5
    assert [delay(i) for i in range(5, 10)] == [5] * 5
    assert [delay(i) for i in range(10, 20)] == [10] * 10
    assert delay(20) == 60 and delay(500) == 60


async def test_one_pull_for_many_consumers_and_linger_release() -> None:
    cam = ScriptedCamera(forever=True)
    stream = make_stream(cam)
    assert stream.state is StreamState.IDLE
    leases = [stream.acquire(f"viewer{i}", viewer=True) for i in range(5)]
    probe = stream.acquire("probe")
    await stream.wait_state(StreamState.ONLINE, timeout=2)
    assert cam.connections == 1 and cam.running == 1
    assert stream.viewers == 5, "a probe lease is not a viewer"
    probe.release()
    for lease in leases:
        lease.release()
    assert str(stream.state) == "online"  # lingering
    await stream.wait_state(StreamState.IDLE, timeout=2)
    assert cam.running == 0 and cam.cancelled == 1
    # comes back on demand
    lease = stream.acquire("again")
    await stream.wait_state(StreamState.ONLINE, timeout=2)
    assert cam.connections == 2
    lease.release()
    await stream.close()
    assert cam.running == 0


async def test_lease_during_linger_keeps_the_pull() -> None:
    cam = ScriptedCamera(forever=True)
    stream = make_stream(cam, linger=0.3)
    first = stream.acquire("a")
    await stream.wait_state(StreamState.ONLINE, timeout=2)
    first.release()
    await asyncio.sleep(0.1)
    second = stream.acquire("b")
    await asyncio.sleep(0.4)
    assert stream.state is StreamState.ONLINE and cam.connections == 1
    second.release()
    await stream.close()


async def test_reconnect_keeps_relay_consumers_and_timeline() -> None:
    cam = ScriptedCamera(per_session=6, fail_first=0)
    stream = make_stream(cam)
    lease = stream.acquire("viewer")
    consumer = stream.relay.subscribe("viewer", maxsize=1000)
    pts: list[int] = []
    async with asyncio.timeout(5):
        while cam.connections < 3 or len(pts) < 15:
            p = await consumer.get()
            pts.append(p.pts)
    assert stream.reconnects >= 2
    assert all(b > a for a, b in itertools.pairwise(pts)), "timeline must stay monotonic"
    steps = {b - a for a, b in itertools.pairwise(pts)}
    assert steps == {3600}, f"a reconnect continues one frame later, got steps {steps}"
    assert not consumer.closed
    lease.release()
    await stream.close()


async def test_unreachable_camera_goes_offline_and_retries_with_error() -> None:
    cam = ScriptedCamera(fail_first=1000)
    stream = make_stream(cam)
    lease = stream.acquire("viewer")
    await stream.wait_state(StreamState.OFFLINE, timeout=2)
    async with asyncio.timeout(2):
        while cam.connections < 4:
            await asyncio.sleep(0.01)
    assert stream.last_error == "connection refused"
    assert stream.reconnects >= 3
    lease.release()
    await stream.close()
    assert stream.state is StreamState.IDLE


async def test_always_on_pulls_without_viewers_and_close_stops_everything() -> None:
    cam = ScriptedCamera(forever=True)
    stream = make_stream(cam, always_on=True)
    stream.start()
    await stream.wait_state(StreamState.ONLINE, timeout=2)
    await asyncio.sleep(0.3)  # past the linger: still pulled
    assert stream.state is StreamState.ONLINE
    consumer = stream.relay.subscribe("x")
    await stream.close()
    assert cam.running == 0
    assert consumer.closed
    assert stream.relay.closed
