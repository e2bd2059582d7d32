"""Recordings through the hub: coverage and gaps, clip export, scope and traversal refusals,
quota (oldest deleted, alert, recording goes on), on_alert marks, room recording, recovery."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import av
import pytest
from aiohttp.test_utils import TestClient, TestServer

from config import parse_config
from hub.app import build_app
from hub.core.events import EVENTS
from hub.core.state import CONFIG
from hub.recordings.service import RECORDINGS
from hub.recordings.store import SegmentRow, coverage
from hub.recordings.verify import verify_path
from streams.recorder_writer import Segment
from streams.relay import Relay
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, topology
from tests.streams.test_recorder import Feeder

SMALL = "size=160x120&fps=25&gop=25"
Client = TestClient[Any, Any]


def recording_topology(**recording: Any) -> dict[str, Any]:
    cams: dict[str, list[dict[str, Any]]] = {
        COUNTY: [
            {
                "id": "rec-cam",
                "name": "录像",
                "url": f"synthetic://rec-cam?{SMALL}",
                "record": "continuous",
            }
        ],
        TOWN: [
            {
                "id": "alert-cam",
                "name": "事件",
                "url": f"synthetic://alert-cam?{SMALL}",
                "record": "on_alert",
                "pre_event": 2,
            }
        ],
        OTHER_TOWN: [
            {
                "id": "other-cam",
                "name": "邻镇",
                "url": f"synthetic://other-cam?{SMALL}",
                "record": "continuous",
            }
        ],
    }
    rec = {"segment_seconds": 2, "min_free_bytes": 0, "post_event_seconds": 1, **recording}
    return topology(cams, recording=rec)


@pytest.fixture
async def rec_client() -> AsyncIterator[Client]:
    app = build_app(parse_config(recording_topology()))
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


async def wait_segments(client: Client, camera: str, count: int, timeout: float = 20) -> None:
    index = client.app[RECORDINGS].index
    deadline = time.monotonic() + timeout
    while True:
        now = int(time.time() * 1000)
        rows = [r for r in await index.between(camera, 0, now + 1) if r.end_ms is not None]
        if len(rows) >= count:
            return
        assert time.monotonic() < deadline, f"{camera}: {len(rows)}/{count} segments"
        await asyncio.sleep(0.2)


def row(start: int, end: int | None) -> SegmentRow:
    return SegmentRow(0, "c", "", "", f"{start}.mp4", start, end, 0, "", "closed")


def test_coverage_merges_close_segments_and_names_gaps() -> None:
    rows = [row(1000, 3000), row(3500, 5000), row(9000, 12000)]
    spans, gaps = coverage(rows, 0, 10_000)
    assert spans == [(1000, 5000), (9000, 10_000)]
    assert gaps == [(0, 1000), (5000, 9000)]


async def test_list_clip_and_export(
    rec_client: Client, auth: Callable[..., dict[str, str]]
) -> None:
    await wait_segments(rec_client, "rec-cam", 2)
    r = await rec_client.get("/api/recordings?camera=rec-cam", headers=auth())
    assert r.status == 200
    body = await r.json()
    assert body["mode"] == "continuous" and body["recording"] is True
    assert len(body["segments"]) >= 2 and all(
        len(s["sha256"] or "") in (0, 64) for s in body["segments"]
    )
    assert len(body["coverage"]) == 1 and body["gaps"][0]["from_ms"] == body["from_ms"]
    span = body["coverage"][0]
    url = f"/api/cameras/rec-cam/clip.mp4?from={span['from']}&to={span['to_ms'] - 500}"
    r = await rec_client.get(url, headers=auth(user="exporter"))
    assert r.status == 200, await r.text()
    assert "rec-cam_" in r.headers["Content-Disposition"]
    clip = Path(rec_client.app[CONFIG].http.data_dir) / "clip.mp4"
    clip.write_bytes(await r.read())
    with av.open(str(clip)) as c:
        assert c.metadata["zzhub_camera"] == "rec-cam"
        assert c.metadata["zzhub_exported_by"] == "exporter"
        assert c.metadata["zzhub_from"].startswith(span["from"][:19])
        frames = sum(1 for _ in c.decode(video=0))
    assert frames >= 2 * 25
    exports = rec_client.app[RECORDINGS].root / ".exports"
    for _ in range(50):  # the handler removes its temporary file after the last byte
        if not list(exports.iterdir()):
            break
        await asyncio.sleep(0.02)
    assert not list(exports.iterdir())
    r = await rec_client.get(
        f"/api/cameras/rec-cam/export.zip?from={span['from_ms']}&to={span['to_ms']}", headers=auth()
    )
    assert r.status == 200
    zipped = clip.with_suffix(".zip")
    zipped.write_bytes(await r.read())
    assert verify_path(zipped).ok
    audit = await (await rec_client.get("/api/audit", headers=auth())).json()
    assert {"export.clip", "export.evidence"} <= {a["action"] for a in audit}


@pytest.mark.parametrize(
    "path",
    [
        "/api/recordings?camera=other-cam",
        "/api/recordings?camera=../../etc/passwd",
        "/api/recordings?camera=%2e%2e%2fzzhub.sqlite3",
        "/api/cameras/other-cam/clip.mp4?from=0&to=1000",
        "/api/cameras/other-cam/export.zip?from=0&to=1000",
        "/api/cameras/..%2F..%2Fzzhub.sqlite3/clip.mp4?from=0&to=1000",
        "/api/cameras/%2e%2e/export.zip?from=0&to=1000",
    ],
)
async def test_foreign_cameras_and_traversal_are_refused(
    rec_client: Client, auth: Callable[..., dict[str, str]], path: str
) -> None:
    r = await rec_client.get(path, headers=auth("operator", TOWN))
    assert r.status == 404, await r.text()
    assert (await r.json())["error"]["code"] == "not_found"


async def test_refusals_on_posts_and_tags(
    rec_client: Client, auth: Callable[..., dict[str, str]]
) -> None:
    town = auth("operator", TOWN)
    r = await rec_client.post("/api/cameras/other-cam/mark", headers=town)
    assert r.status == 404
    r = await rec_client.post(
        "/api/cameras/rec-cam/whep?start=2026-01-01T00:00:00Z",
        data="v=0",
        headers={**town, "Content-Type": "application/sdp"},
    )
    assert r.status == 404  # county camera, town caller: before the body is looked at
    for tag in ("../x", "a/b", ".."):
        r = await rec_client.get(f"/api/recordings?tag={tag}", headers=town)
        assert r.status == 400
    r = await rec_client.get("/api/recordings/export.zip?tag=..%2F..", headers=town)
    assert r.status == 400
    r = await rec_client.get("/api/audit", headers=town)
    assert r.status == 403
    r = await rec_client.post("/api/playback/nope/control", json={"action": "pause"}, headers=town)
    assert r.status == 404


async def test_mark_records_the_pre_event(
    rec_client: Client, auth: Callable[..., dict[str, str]]
) -> None:
    service = rec_client.app[RECORDINGS]
    recorder = service.recorders["alert-cam"]
    deadline = time.monotonic() + 15
    while recorder.ring.seconds() < 2.0:
        assert time.monotonic() < deadline, "the pre-event ring never filled"
        await asyncio.sleep(0.2)
    before = int(time.time() * 1000)
    r = await rec_client.post(
        "/api/cameras/alert-cam/mark", headers=auth("operator", TOWN), json={"note": "争吵"}
    )
    assert r.status == 200 and (await r.json())["recording"] is True
    await wait_segments(rec_client, "alert-cam", 1)
    rows = await service.index.between("alert-cam", 0, before + 60_000)
    assert before - rows[0].start_ms >= 1800, "the segment reaches back pre_event seconds"
    r = await rec_client.post("/api/cameras/town-cam/mark", headers=auth())
    assert r.status == 404  # not in this topology


async def test_quota_deletes_oldest_raises_alert_and_recording_goes_on(
    auth: Callable[..., dict[str, str]],
) -> None:
    cfg = parse_config(recording_topology(quota_bytes=60_000, cleanup_interval=0.3))
    app = build_app(cfg)
    async with TestClient(TestServer(app, host="127.0.0.1")):
        sub = app[EVENTS].subscribe("watcher", COUNTY)
        service = app[RECORDINGS]
        alert = None
        deadline = time.monotonic() + 30
        while alert is None:
            assert time.monotonic() < deadline, "no disk_full alert"
            with_timeout = asyncio.wait_for(sub.get(), 1.0)
            try:
                event = await with_timeout
            except TimeoutError:
                continue
            if event.topic == "alert.raised" and event.data.get("kind") == "disk_full":
                alert = event
        assert alert.data["reason"] == "quota" and alert.data["deleted_segments"] >= 1
        assert service.retention.deleted >= 1
        closed_before = service.segments_closed
        await asyncio.sleep(2.5)
        assert service.segments_closed > closed_before, "recording stopped after the quota"
        assert await service.index.total_bytes() <= 60_000 + 80_000  # quota + one new segment
        assert verify_path(service.root).ok, verify_path(service.root).problems
        sub.close()


async def test_room_recording_by_tag(
    rec_client: Client, auth: Callable[..., dict[str, str]]
) -> None:
    service = rec_client.app[RECORDINGS]
    relay = Relay("participant-1")
    room = await service.record_room(relay, tag="2026民调0042", track="petitioner", centre=TOWN)
    await Feeder(relay).feed(5.0, pace=0.004)
    await room.stop()
    for _ in range(20):
        await asyncio.sleep(0.05)
        rows = await service.index.by_tag("2026民调0042")
        if rows and all(r.end_ms for r in rows):
            break
    assert len(rows) >= 2 and {r.source for r in rows} == {"room/2026民调0042/petitioner"}
    since = f"from={int(time.time() * 1000) - 3600_000}"
    r = await rec_client.get(f"/api/recordings?tag=2026民调0042&{since}", headers=auth())
    assert r.status == 200 and len((await r.json())["segments"]) == len(rows)
    r = await rec_client.get(
        f"/api/recordings?tag=2026民调0042&{since}", headers=auth("operator", OTHER_TOWN)
    )
    assert (await r.json())["segments"] == []  # another township's case
    r = await rec_client.get("/api/recordings/export.zip?tag=2026民调0042", headers=auth())
    assert r.status == 200
    out = service.root.parent / "case.zip"
    out.write_bytes(await r.read())
    assert verify_path(out).ok
    with pytest.raises(ValueError):
        await service.record_room(relay, tag="../../x", track="a", centre=TOWN)


async def test_recover_indexes_a_segment_left_open(rec_client: Client) -> None:
    service = rec_client.app[RECORDINGS]
    await wait_segments(rec_client, "rec-cam", 1)
    done = next(r for r in await service.index.between("rec-cam", 0, 2**62) if r.end_ms)
    data = (service.root / done.name).read_bytes()
    name = "cameras/rec-cam/20200101/000000000Z.mp4"
    path = service.root / name
    path.parent.mkdir(parents=True)
    path.write_bytes(data[: len(data) * 2 // 3])  # a crash mid-fragment
    await service.index.opened(Segment("rec-cam", name, 1577836800000), tag="", centre=COUNTY)
    assert await service.recover() == 1
    rows = await service.index.between("rec-cam", 1577836800000, 1577836800000 + 10_000)
    assert rows[0].status == "recovered" and rows[0].end_ms and rows[0].sha256
    with av.open(str(path)) as c:
        assert sum(1 for _ in c.decode(video=0)) > 0
    report = verify_path(path.parent)
    assert report.ok, report.problems


async def _exercise_recording_hub() -> set[asyncio.Task[object]]:
    import aiohttp
    from aiohttp import web

    from tests.fixtures.webrtc import WhepViewer

    app = build_app(parse_config(recording_topology()))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    service = app[RECORDINGS]
    room = await service.record_room(Relay("p"), tag="case-1", track="p", centre=COUNTY)
    del room  # left running: shutdown must stop it
    deadline = time.monotonic() + 20
    while service.segments_closed < 2:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    rows = await service.index.between("rec-cam", 0, 2**62)
    from config.schema import Role
    from hub.core.auth import TokenIssuer
    from tests.conftest import SECRET

    token = TokenIssuer(SECRET, 60).issue("t", Role.ADMIN, COUNTY)
    async with aiohttp.ClientSession() as http:
        viewer = WhepViewer(
            http, f"{base}/api/cameras/rec-cam/whep?start={rows[0].start_ms}", token
        )
        await viewer.start()
        await viewer.wait_frames(3, timeout=20)
        viewer.location = None  # vanishes without DELETE
        await viewer.stop()
    service.trigger("alert-cam", "test")
    await runner.cleanup()
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current}


def test_shutdown_with_recorders_and_playback_leaves_nothing() -> None:
    import threading

    before = {t.ident for t in threading.enumerate()}
    leftover = asyncio.run(_exercise_recording_hub())
    assert leftover == set(), f"tasks left after shutdown: {leftover}"
    after = [t.name for t in threading.enumerate() if t.ident not in before]
    assert after == [], f"threads left after shutdown: {after}"
