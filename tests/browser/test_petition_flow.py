"""视频接访 in real Chromium (fake cameras): kiosk request → queue → accept at the desk → kiosk
and desk decode each other → invite a county mediator → notes → resolve → follow-up → export;
the exported recordings open with PyAV and match their hashes, and `zzhub verify` accepts it."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
from aiohttp import web

from config import parse_config
from hub.app import build_app
from hub.recordings.verify import verify_path
from tests.browser.conftest import (
    PEOPLE_PASSWORD,
    Hub,
    People,
    people_topology,
    wait_decoding,
    wait_until,
)
from tests.conftest import COUNTY, TOWN

pytestmark = pytest.mark.browser


@pytest.fixture
async def crowd(media_browser: Any) -> AsyncIterator[People]:
    data = people_topology()
    data["users"] += [
        {"name": "town-r", "role": "receptionist", "centre": TOWN, "password": PEOPLE_PASSWORD},
        {"name": "county-m", "role": "mediator", "centre": COUNTY, "password": PEOPLE_PASSWORD},
    ]
    app = build_app(parse_config(data))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    async with aiohttp.ClientSession() as http:
        people = People(media_browser, Hub(f"http://{host}:{port}", app, http))
        try:
            yield people
        finally:
            await people.close()
            await runner.cleanup()
    assert not people.errors, f"uncaught errors in the pages: {people.errors}"


async def test_kiosk_to_export(crowd: People, tmp_path: Path) -> None:
    kiosk = await crowd.open("dongguan-terminal", "/static/kiosk.html")
    await kiosk.wait_for_selector("body[data-page=kiosk-request]")
    await kiosk.select_option("#category", "wage_arrears")
    await kiosk.fill("#text", "工资拖欠三个月")
    await kiosk.click("#ask")
    await kiosk.wait_for_selector("body[data-page=kiosk-waiting]")
    code = await kiosk.evaluate("window.zzkiosk.code")
    assert await kiosk.locator("#case-code").text_content() == code
    assert await kiosk.locator("#position").text_content() == "0"  # nobody ahead

    desk = await crowd.open("town-r", "/static/desk.html")
    row = desk.locator(f"#queue tr[data-code='{code}']")
    await row.wait_for()
    assert await row.locator(".badge-blue").count() == 1
    await row.locator("button").click()
    await desk.wait_for_selector("body[data-page=desk-hearing]")
    await kiosk.wait_for_selector("body[data-page=kiosk-hearing]")
    await wait_decoding(desk, "window.zzdesk.client", {"seat:dongguan-terminal"})
    await wait_decoding(kiosk, "window.zzkiosk.client", {"seat:town-r"})

    # 三方会诊: a county mediator joins from the desk page's hearing list
    await desk.fill("#h-invite", "county-m")
    await desk.click("#h-invite-go")
    mediator = await crowd.open("county-m", "/static/desk.html")
    join = mediator.locator(f"#hearings tr[data-code='{code}'] button")
    await join.wait_for()
    await join.click()
    await wait_decoding(mediator, "window.zzdesk.client", {"seat:dongguan-terminal", "seat:town-r"})

    await desk.fill("#h-note", "当事人陈述：欠薪三个月")
    await desk.click("#h-note-go")
    await desk.wait_for_selector("#h-notes li")
    await desk.select_option("#h-outcome", "mediated")
    await desk.click("#h-resolve")
    await desk.wait_for_selector("body[data-page=case][data-status=resolved]")
    await kiosk.wait_for_selector("body[data-page=kiosk-done]")

    await desk.click("#call")  # 回访: a call back to the kiosk
    await desk.select_option("#score", "4")
    await desk.click("#followup")
    await desk.wait_for_selector("body[data-status=followed_up]")

    token = await crowd.token("town-r")
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{crowd.hub.url}/api/petitions/{code}"

    async def recordings_closed() -> bool:
        async with crowd.hub.http.get(url, headers=headers) as resp:
            rows = (await resp.json())["recordings"]
        return len(rows) >= 3 and all(r["end_ms"] for r in rows)

    await wait_until(recordings_closed, "three closed hearing recordings")
    await desk.reload()
    await desk.wait_for_selector("#recordings tr")
    await desk.click("#export")
    await desk.wait_for_function(
        "document.querySelector('#export-state').textContent.includes('MB')"
    )
    async with crowd.hub.http.get(f"{url}/export.zip", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        blob = await resp.read()
    path = tmp_path / "case.zip"
    path.write_bytes(blob)
    report = verify_path(path)
    assert report.ok, report.problems
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert json.loads(zf.read("case/notes.json"))[0]["note"] == "当事人陈述：欠薪三个月"
        sources = set()
        for entry in manifest["entries"]:
            data = zf.read(entry["file"])
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]
            if entry["file"].startswith("segments/"):
                sources.add(entry["source"])
                with av.open(io.BytesIO(data), mode="r") as container:
                    assert len(list(container.decode(video=0))) > 0
    assert sources == {f"room/{code}/{u}" for u in ("dongguan-terminal", "town-r", "county-m")}


async def test_a_petitioner_link_joins_the_hearing_from_home(crowd: People) -> None:
    token = await crowd.token("town-r")
    headers = {"Authorization": f"Bearer {token}"}
    base = f"{crowd.hub.url}/api/petitions"
    body = {"category": "family", "centre": "410922100201", "text": "电话预约"}
    async with crowd.hub.http.post(base, json=body, headers=headers) as resp:
        assert resp.status == 201, await resp.text()
        code = (await resp.json())["code"]
    async with crowd.hub.http.post(f"{base}/{code}/link", headers=headers) as resp:
        link = await resp.json()
    context = await crowd.browser.new_context(viewport={"width": 1280, "height": 800})
    crowd.contexts.append(context)
    home = await context.new_page()
    home.on("pageerror", lambda exc: crowd.errors.append(f"petitioner: {exc}"))
    await home.goto(f"{crowd.hub.url}{link['url']}")
    await home.wait_for_selector("body[data-page=kiosk-waiting]")
    assert await home.locator("#case-code").text_content() == code

    desk = await crowd.open("town-r", "/static/desk.html")
    await desk.locator(f"#queue tr[data-code='{code}'] button").click()
    await home.wait_for_selector("body[data-page=kiosk-hearing]")
    await wait_decoding(desk, "window.zzdesk.client", {f"seat:petitioner:{code}"})
    await wait_decoding(home, "window.zzkiosk.client", {"seat:town-r"})
    await desk.click("#h-resolve")
    await home.wait_for_selector("body[data-page=kiosk-done]")
