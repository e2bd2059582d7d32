"""The recordings page in real Chromium: coverage on the timeline, playback from a chosen
moment decodes frames within a second, pause, clip export download."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from config import parse_config
from config.schema import Role
from hub.app import build_app
from hub.core.auth import TokenIssuer
from hub.recordings.playback import PLAYBACKS
from hub.recordings.service import RECORDINGS
from tests.conftest import COUNTY, SECRET, topology

pytestmark = pytest.mark.browser
Page = Any


@pytest.fixture
async def rec_url() -> AsyncIterator[tuple[str, web.Application]]:
    cams = {
        COUNTY: [
            {
                "id": "rec-cam",
                "name": "录像机位",
                "url": "synthetic://rec-cam?size=320x240&fps=25&gop=25",
                "record": "continuous",
            }
        ]
    }
    app = build_app(
        parse_config(topology(cams, recording={"segment_seconds": 2, "min_free_bytes": 0}))
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", app
    finally:
        await runner.cleanup()


async def frames_decoded(page: Page) -> int:
    n: int = await page.evaluate("""async () => {
        const p = window.zzhubRecordings.player;
        return p ? (await p.getStats()).framesDecoded : 0; }""")
    return n


async def test_recordings_page_plays_from_a_moment(
    browser: Any, rec_url: tuple[str, web.Application]
) -> None:
    url, app = rec_url
    deadline = time.monotonic() + 30
    while app[RECORDINGS].segments_closed < 3:
        assert time.monotonic() < deadline, "nothing recorded"
        await asyncio.sleep(0.3)
    context = await browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="zh-CN", accept_downloads=True
    )
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(30_000)
    token = TokenIssuer(SECRET, 600).issue("browser", Role.OPERATOR, COUNTY)
    await page.goto(f"{url}/")
    await page.evaluate("t => sessionStorage.setItem('zzhub.token', t)", token)
    await page.goto(f"{url}/static/recordings.html")
    await page.wait_for_selector("body[data-page=recordings]")
    await page.wait_for_selector("#rec-timeline .rec-span")
    summary = await page.inner_text("#rec-summary")
    assert "segments" in summary
    rng: dict[str, Any] = await page.evaluate("window.zzhubRecordings.range")
    start_ms = rng["coverage"][0]["from_ms"] + 2500
    await page.evaluate(
        "ms => { const d = new Date(ms); const p = n => String(n).padStart(2, '0');"
        " document.getElementById('rec-start').value = `${d.getFullYear()}-${p(d.getMonth()+1)}"
        "-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`; }",
        start_ms,
    )
    clicked = time.monotonic()
    await page.click("#rec-play")
    first = None
    while first is None:
        if await frames_decoded(page) > 0:
            first = time.monotonic() - clicked
        assert time.monotonic() - clicked < 10, "no frame decoded"
        await asyncio.sleep(0.05)
    print(f"playback: first frame decoded {first * 1000:.0f} ms after the click")
    assert first < 1.0, f"first frame after {first:.2f} s"
    session = await page.evaluate("window.zzhubRecordings.session")
    playback = app[PLAYBACKS].get(session)
    assert playback is not None
    assert abs(playback.start_ms - start_ms) < 1000  # whole seconds from the input
    await page.wait_for_function("document.getElementById('rec-position').textContent !== ''")
    await page.click("#rec-pause")
    await page.wait_for_function(
        "() => document.getElementById('rec-position').textContent.includes('⏸')"
    )
    async with page.expect_download() as info:
        await page.click("#rec-clip")
    download = await info.value
    assert download.suggested_filename.startswith("rec-cam_")
    assert download.suggested_filename.endswith(".mp4")
    await page.click("#rec-stop")
    await asyncio.sleep(0.5)
    assert app[PLAYBACKS].get(session) is None
    await context.close()
    assert not errors, errors
