"""A hearing with real aiortc participants: the kiosk and the receptionist see each other, each
published track is recorded under the case code, and the case export verifies."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import av
from aiohttp.test_utils import TestClient, TestServer

from hub.app import build_app
from hub.core.audit import AUDIT
from hub.petitions.hearing import HEARINGS
from hub.recordings.service import RECORDINGS
from hub.recordings.verify import verify_path
from tests.conftest import TOWN, VILLAGE
from tests.hub.petitions.test_petitions_api import petition_config
from tests.hub.rooms.test_rooms_api import Person


async def test_hearing_is_recorded_per_track_and_exports(
    token: Callable[..., str], tmp_path: Path
) -> None:
    app = build_app(petition_config())
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        kiosk = Person(client, token("terminal", VILLAGE, "village-t"), "village-t")
        desk = Person(client, token("receptionist", TOWN, "town-r"), "town-r")
        case = await kiosk.call(
            "POST", "/api/petitions", json={"category": "land", "text": "宅基地"}
        )
        code = case["code"]
        try:
            accepted = await desk.call("POST", f"/api/petitions/{code}/accept")
            room = accepted["room"]
            for person in (desk, kiosk):
                await person.call("POST", f"/api/rooms/{room}/join")
                await person.publish(room)
            async with asyncio.timeout(10):
                while client.app[HEARINGS].started < 2:
                    await asyncio.sleep(0.05)
            await desk.watch(room, "village-t")
            await kiosk.watch(room, "town-r")
            await asyncio.gather(
                *(s.wait(video=10, audio=5) for p in (desk, kiosk) for s in p.subscribers.values())
            )
            await desk.call(
                "POST", f"/api/petitions/{code}/notes", json={"text": "双方同意重新丈量"}
            )
            await asyncio.sleep(1.0)  # a second or so of hearing on file
            await desk.call("POST", f"/api/petitions/{code}/resolve", json={"outcome": "mediated"})
            index = client.app[RECORDINGS].index
            async with asyncio.timeout(10):
                while True:
                    rows = await index.by_tag(code)
                    if len(rows) >= 2 and all(r.end_ms is not None for r in rows):
                        break
                    await asyncio.sleep(0.1)
            assert {r.source for r in rows} == {f"room/{code}/town-r", f"room/{code}/village-t"}

            audit = client.app[AUDIT]
            async with asyncio.timeout(5):  # joins and the export are audited
                while len(await audit.rows("", action="petition.hearing")) < 2:
                    await asyncio.sleep(0.05)
            full = await desk.call("GET", f"/api/petitions/{code}")
            assert len(full["recordings"]) == len(rows)
            resp = await client.get(f"/api/petitions/{code}/export.zip", headers=desk.headers)
            assert resp.status == 200, await resp.text()
            blob = await resp.read()
            resp = await client.get(f"/api/petitions/{code}/export.zip", headers=kiosk.headers)
            assert resp.status == 403
        finally:
            await desk.close()
            await kiosk.close()

    path = tmp_path / "case.zip"
    path.write_bytes(blob)
    report = verify_path(path)
    assert report.ok, report.problems
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        names = [e["file"] for e in manifest["entries"]]
        assert names[:3] == ["case/case.json", "case/notes.json", "case/timeline.json"]
        assert json.loads(zf.read("case/case.json"))["code"] == code
        assert json.loads(zf.read("case/notes.json"))[0]["note"] == "双方同意重新丈量"
        segments = [e for e in manifest["entries"] if e["file"].startswith("segments/")]
        assert len(segments) >= 2
        for entry in segments:
            data = zf.read(entry["file"])
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]
            with av.open(io.BytesIO(data), mode="r") as container:
                frames = len(list(container.decode(video=0)))
            assert frames > 5
    # tampering with a document is caught
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "case/notes.json":
                data = data.replace("丈量".encode(), "测量".encode())
            dst.writestr(item, data)
    assert any("ALTERED" in p for p in verify_path(tampered).problems)


async def test_shutdown_during_a_recorded_hearing_leaves_no_task(
    token: Callable[..., str],
) -> None:
    async with TestClient(TestServer(build_app(petition_config()), host="127.0.0.1")) as client:
        kiosk = Person(client, token("terminal", VILLAGE, "village-t"), "village-t")
        desk = Person(client, token("receptionist", TOWN, "town-r"), "town-r")
        code = (await kiosk.call("POST", "/api/petitions", json={"category": "other"}))["code"]
        room = (await desk.call("POST", f"/api/petitions/{code}/accept"))["room"]
        try:
            for person in (desk, kiosk):
                await person.call("POST", f"/api/rooms/{room}/join")
                await person.publish(room)
            index = client.app[RECORDINGS].index
            async with asyncio.timeout(10):  # both tracks are being written
                while len(await index.by_tag(code)) < 2:
                    await asyncio.sleep(0.05)
        finally:
            await desk.close()
            await kiosk.close()
    await asyncio.sleep(1.0)  # test-side peers finish closing
    current = asyncio.current_task()
    left = {t for t in asyncio.all_tasks() if t is not current and not t.done()}
    assert left == set(), f"tasks left after shutdown: {left}"
