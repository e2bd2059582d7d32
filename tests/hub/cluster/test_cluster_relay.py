"""The hub-to-hub relay leg: node B's viewers of node A's camera cost node A one consumer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config import parse_config
from hub.app import build_app
from hub.cameras.service import CAMERAS
from streams.hubrelay import HubRelaySource
from streams.media import Codec, Packet, StreamInfo
from streams.registry import SourceOptions, redact_url, source_class
from tests.conftest import COUNTY, topology

Node = TestClient[Any, Any]


async def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


@pytest.fixture
async def nodes(token: Callable[..., str]) -> AsyncIterator[tuple[Node, Node, str]]:
    a = TestClient(TestServer(build_app(parse_config(topology())), host="127.0.0.1"))
    await a.start_server()
    assert a.port is not None
    url = f"hubrelay://hub-b:{token('admin', COUNTY, 'hub-b')}@127.0.0.1:{a.port}/county-cam"
    cams = {COUNTY: [{"id": "relay-cam", "name": "县大厅 (node A)", "url": url}]}
    b = TestClient(TestServer(build_app(parse_config(topology(cams))), host="127.0.0.1"))
    await b.start_server()
    try:
        yield a, b, url
    finally:
        await b.close()
        await a.close()


async def streams_of(node: Node, auth: dict[str, str]) -> dict[str, dict[str, Any]]:
    resp = await node.get("/api/streams", headers=auth)
    assert resp.status == 200
    return {s["camera"]: s for s in await resp.json()}


def test_scheme_is_registered_and_the_token_redacted() -> None:
    url = "hubrelay://hub-b:eyJ.secret.sig@10.20.30.41:8443/county-gate?tls=1"
    assert source_class(url) is HubRelaySource
    assert "secret" not in redact_url(url)


async def test_many_viewers_on_b_one_leg_on_a(
    nodes: tuple[Node, Node, str], auth: Callable[..., dict[str, str]]
) -> None:
    a, b, _ = nodes
    relay_cam = b.app[CAMERAS].get("relay-cam")
    assert relay_cam is not None
    stream_b = relay_cam.stream
    leases = [stream_b.acquire(f"viewer-{i}", viewer=True) for i in range(5)]
    consumer = stream_b.relay.subscribe("probe")
    try:
        first = await asyncio.wait_for(consumer.get(), 10)
        assert first.keyframe  # starts on the owning hub's cached GOP
        assert stream_b.relay.info is not None and stream_b.relay.info.codec is Codec.H264
        await wait_for(lambda: stream_b.stats()["packets"] >= 30)
        on_a = (await streams_of(a, auth()))["county-cam"]
        on_b = (await streams_of(b, auth()))["relay-cam"]
        assert on_a["viewers"] == 1  # the one relay leg, however many viewers node B has
        assert on_b["viewers"] == 5
        assert on_b["state"] == "online"
        # passthrough: the owning camera's H.264 packets, not decoded or re-encoded here
        assert stream_b.transcoder is None
        assert stream_b.h264_relay() is stream_b.relay
    finally:
        consumer.close()
        for lease in leases:
            lease.release()
    # the last viewer on B leaves: after B's linger the leg closes and A lets the camera go
    county = a.app[CAMERAS].get("county-cam")
    assert county is not None
    await wait_for(lambda: county.stream.viewers == 0)


async def test_leg_needs_an_admin_token(
    nodes: tuple[Node, Node, str], auth: Callable[..., dict[str, str]]
) -> None:
    a, _, _ = nodes
    assert (await a.get("/api/cameras/county-cam/relay")).status == 401
    resp = await a.get("/api/cameras/county-cam/relay", headers=auth("operator"))
    assert resp.status == 403


class Sink:
    def __init__(self) -> None:
        self.info: list[StreamInfo] = []
        self.packets: list[Packet] = []

    def on_info(self, info: StreamInfo) -> None:
        self.info.append(info)

    def on_packet(self, packet: Packet) -> None:
        self.packets.append(packet)


async def test_a_refused_leg_is_a_source_error(nodes: tuple[Node, Node, str]) -> None:
    from streams.media import SourceError

    a, _, url = nodes
    bad = url.replace("county-cam", "no-such-cam")
    with pytest.raises(SourceError, match="404"):
        await HubRelaySource(bad, SourceOptions(name="x", timeout=5)).run(Sink())
    wrong_token = f"hubrelay://hub-b:nope@127.0.0.1:{a.port}/county-cam"
    with pytest.raises(SourceError, match="401"):
        await HubRelaySource(wrong_token, SourceOptions(name="x", timeout=5)).run(Sink())
    assert "nope" not in HubRelaySource(wrong_token, SourceOptions()).label


async def test_source_reads_info_then_packets(nodes: tuple[Node, Node, str]) -> None:
    _, _, url = nodes
    sink = Sink()
    task = asyncio.create_task(HubRelaySource(url, SourceOptions(name="x", timeout=5)).run(sink))
    try:
        await wait_for(lambda: len(sink.packets) >= 10)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(sink.info) == 1 and sink.info[0].width == 320
    assert sink.packets[0].keyframe
    assert all(b.pts > a.pts for a, b in zip(sink.packets, sink.packets[1:], strict=False))
