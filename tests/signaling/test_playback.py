"""WHEP playback of recordings (`?start=`) with an aiortc viewer: first frames fast, from the
chosen moment; pause, resume, speed and seek over /api/playback/{session}/control; audited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from config import parse_config
from config.schema import Role
from hub.app import build_app
from hub.core.audit import AUDIT
from hub.core.auth import TokenIssuer
from hub.recordings.playback import PLAYBACKS
from streams.stream import StreamState
from tests.conftest import COUNTY, SECRET, TOWN, topology
from tests.fixtures.webrtc import WhepViewer


@dataclass
class RecordingHub:
    base: str
    app: web.Application
    http: aiohttp.ClientSession
    token: str

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def coverage(self, camera: str) -> list[dict[str, Any]]:
        async with self.http.get(
            f"{self.base}/api/recordings?camera={camera}", headers=self.headers()
        ) as r:
            spans: list[dict[str, Any]] = (await r.json())["coverage"]
            return spans


@pytest.fixture
async def rec_hub() -> AsyncIterator[RecordingHub]:
    cams = {
        COUNTY: [
            {
                "id": "rec-cam",
                "name": "录像",
                "url": "synthetic://rec-cam?size=320x240&fps=25&gop=25",
                "record": "continuous",
            }
        ]
    }
    cfg = parse_config(topology(cams, recording={"segment_seconds": 2, "min_free_bytes": 0}))
    app = build_app(cfg)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    token = TokenIssuer(SECRET, 600).issue("reviewer", Role.OPERATOR, COUNTY)
    async with aiohttp.ClientSession() as http:
        try:
            yield RecordingHub(f"http://127.0.0.1:{runner.addresses[0][1]}", app, http, token)
        finally:
            await runner.cleanup()


async def wait_recorded(hub: RecordingHub, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        spans = await hub.coverage("rec-cam")
        if spans and spans[0]["to_ms"] - spans[0]["from_ms"] >= seconds * 1000:
            return spans[0]
        assert time.monotonic() < deadline, "nothing recorded"
        await asyncio.sleep(0.3)


async def test_playback_from_a_moment_with_controls(rec_hub: RecordingHub) -> None:
    span = await wait_recorded(rec_hub, 6.0)
    start_ms = span["from_ms"] + 1500
    url = f"{rec_hub.base}/api/cameras/rec-cam/whep?start={start_ms}"
    viewer = WhepViewer(rec_hub.http, url, rec_hub.token)
    posted = time.monotonic()
    await viewer.start()
    await viewer.wait_frames(1, timeout=10)
    first_frame = time.monotonic() - posted
    assert first_frame < 3.0, f"first played-back frame after {first_frame:.2f} s"
    playbacks = rec_hub.app[PLAYBACKS]
    assert viewer.location is not None
    session = viewer.location.rsplit("/", 1)[-1]
    playback = playbacks.get(session)
    assert playback is not None and playback.stream is not None
    # it plays the recording: starts within one GOP (1 s) before the chosen moment
    assert start_ms - 1100 <= playback.start_ms <= start_ms
    await viewer.wait_frames(10, timeout=10)
    assert 0 <= start_ms - playback.control.position_ms <= 1100 or (
        playback.control.position_ms > start_ms
    )
    control = f"{rec_hub.base}/api/playback/{session}/control"

    async def command(body: dict[str, Any]) -> dict[str, Any]:
        async with rec_hub.http.post(control, json=body, headers=rec_hub.headers()) as r:
            assert r.status == 200, await r.text()
            state: dict[str, Any] = await r.json()
            return state

    state = await command({"action": "pause"})
    assert state["paused"] is True
    await asyncio.sleep(0.5)
    frozen = playback.source.packets
    await asyncio.sleep(0.6)
    assert playback.source.packets == frozen, "packets flowed while paused"
    await command({"action": "resume"})
    await viewer.wait_frames(5, timeout=10)
    state = await command({"action": "speed", "speed": 4})
    assert state["speed"] == 4.0
    before, t0 = playback.control.position_ms, time.monotonic()
    await asyncio.sleep(1.0)
    advanced = (playback.control.position_ms - before) / 1000 / (time.monotonic() - t0)
    assert advanced > 2.0, f"4x played at {advanced:.1f}x"
    await command({"action": "seek", "at": span["from"]})
    await asyncio.sleep(0.5)
    assert playback.control.position_ms < span["from_ms"] + 3000
    async with rec_hub.http.post(
        control, json={"action": "speed", "speed": 3}, headers=rec_hub.headers()
    ) as r:
        assert r.status == 400
    # the same controls over the WebSocket
    ws = await rec_hub.http.ws_connect(f"{rec_hub.base}/ws?token={rec_hub.token}")
    assert (await ws.receive_json())["type"] == "hello"
    for i, body in enumerate(({"action": "pause"}, {"action": "resume"}, {"action": "fly"})):
        await ws.send_json(
            {
                "v": 1,
                "id": f"w{i}",
                "type": "playback.control",
                "data": {"session": session, **body},
            }
        )
        reply = await ws.receive_json()
        while reply.get("re") != f"w{i}":
            reply = await ws.receive_json()
        if body["action"] == "fly":
            assert reply["type"] == "error" and reply["error"]["code"] == "bad_data"
        else:
            assert reply["type"] == "reply" and reply["data"]["paused"] is (
                body["action"] == "pause"
            )
    await ws.close()
    frames = viewer.frames
    await viewer.wait_frames(5, timeout=10)
    assert viewer.frames > frames
    await viewer.stop()
    await asyncio.sleep(0.5)
    assert playbacks.get(session) is None
    assert playback.stream.state is StreamState.IDLE
    rows = await rec_hub.app[AUDIT].rows(COUNTY, actor="reviewer")
    assert [r["action"] for r in rows] == ["playback.stop", "playback.start"]


async def test_playback_refusals(rec_hub: RecordingHub) -> None:
    await wait_recorded(rec_hub, 1.0)
    offer = "v=0\r\n"
    town = TokenIssuer(SECRET, 600).issue("t", Role.OPERATOR, TOWN)
    base = f"{rec_hub.base}/api/cameras/rec-cam/whep"
    cases = [
        (f"{base}?start=1999-01-01T00:00:00", rec_hub.token, 404),  # nothing recorded after?
        (f"{base}?start=not-a-time", rec_hub.token, 400),
        (f"{base}?start={int(time.time() * 1000)}", town, 404),  # foreign camera
    ]
    for url, token, status in cases[1:]:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/sdp"}
        async with rec_hub.http.post(url, data=offer, headers=headers) as r:
            assert r.status == status, (url, await r.text())
    future = f"{base}?start={int(time.time() * 1000) + 3_600_000}"
    headers = {**rec_hub.headers(), "Content-Type": "application/sdp"}
    async with rec_hub.http.post(future, data=offer, headers=headers) as r:
        assert r.status == 404  # nothing recorded at or after an hour from now
