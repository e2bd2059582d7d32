"""The wall page in real Chromium: layouts, click/drag a camera in, substream tiles, focus on
the main stream, saved layout, hidden tab, alerts panel (snapshot, playback, acknowledge),
duty-check banner."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from hub.alerts.service import ALERTS
from hub.cameras.service import WHEP
from hub.duty.service import DUTY
from tests.browser.conftest import Hub, serve_hub
from tests.conftest import TOWN, topology

pytestmark = pytest.mark.browser
Page = Any
INTRUDER = "synthetic://yard?size=320x240&fps=15&gop=15&scene=intruder&enter=1&loop=30"


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    small = "size=320x240&fps=25&gop=25"
    cams: dict[str, list[dict[str, Any]]] = {
        TOWN: [
            {
                "id": "yard",
                "name": "院子",
                "url": INTRUDER,
                "analyse": True,
                "motion": {
                    "zones": [
                        {
                            "name": "gate",
                            "polygon": [[0.5, 0.2], [0.95, 0.2], [0.95, 0.8], [0.5, 0.8]],
                        }
                    ]
                },
            },
            {
                "id": "hall",
                "name": "大厅",
                "url": f"synthetic://hall?{small}",
                "substream_url": "synthetic://hall-sub?size=160x120&fps=25&gop=25",
            },
            {"id": "door", "name": "门口", "url": f"synthetic://door?{small}"},
        ]
    }
    async with serve_hub(topology(cams)) as served:
        yield served


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.2)


async def open_wall(page: Page, user: str = "town-op", password: str = "town-pass") -> None:
    await page.fill("#login-user", user)
    await page.fill("#login-password", password)
    await page.click("#login-submit")
    await page.wait_for_selector("body[data-page=console]")
    await page.click("#nav-wall")
    await page.wait_for_selector("body[data-page=wall]")


async def tile_frames(page: Page, index: int) -> int:
    value = await page.get_attribute(f".wall-tile[data-index='{index}']", "data-frames")
    return int(value or 0)


def sessions_of(hub: Hub) -> list[str]:
    return sorted(s.camera for s in hub.app[WHEP].sessions())


async def test_wall_tiles_focus_saved_layout_and_hidden_tab(page: Page, hub: Hub) -> None:
    await open_wall(page)
    await page.click("button[data-layout='9']")
    assert await page.locator(".wall-tile").count() == 9
    await page.click("button[data-layout='4']")
    assert await page.locator(".wall-tile").count() == 4
    # click puts a camera into the first free tile; drag puts one where it is dropped
    await page.click(".wall-camera[data-camera='hall']")
    await page.drag_and_drop(".wall-camera[data-camera='door']", ".wall-tile[data-index='3']")
    await eventually(lambda: _more(page, 0, 10), "tile 0 playing")
    await eventually(lambda: _more(page, 3, 10), "tile 3 playing")
    assert await page.get_attribute(".wall-tile[data-index='0']", "data-camera") == "hall"
    assert await page.get_attribute(".wall-tile[data-index='3']", "data-camera") == "door"
    # tiles play the substream (hall has one; door falls back to its main stream)
    assert sessions_of(hub) == ["door", "hall/sub"]
    await page.wait_for_function(
        "() => document.querySelector(\".wall-tile[data-index='0'] .tile-fps\")"
        ".textContent.endsWith('fps') && !/–/.test(document.querySelector("
        "\".wall-tile[data-index='0'] .tile-fps\").textContent)"
    )
    latency = await page.inner_text(".wall-tile[data-index='0'] .tile-latency")
    assert latency.endswith("ms")
    # double-click: focus on the main stream (the other tiles, out of view, stop); again:
    # back to the substream and the other tiles
    await page.dblclick(".wall-tile[data-index='0']")
    await eventually(lambda: _sessions_are(hub, ["hall"]), "hall alone, on its main stream")
    assert await page.get_attribute(".wall-tile[data-index='0']", "data-stream") == "main"
    assert not await page.is_visible(".wall-tile[data-index='3']")
    await page.dblclick(".wall-tile[data-index='0']")
    await eventually(lambda: _sessions_are(hub, ["door", "hall/sub"]), "back on the substream")
    # a hidden tab gives every session back, and takes them again when shown
    script = """state => {
        Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => state});
        document.dispatchEvent(new Event('visibilitychange'));
    }"""
    await page.evaluate(script, "hidden")
    await eventually(lambda: _sessions_are(hub, []), "the hidden tab to release its tiles")
    await page.evaluate(script, "visible")
    await eventually(lambda: _sessions_are(hub, ["door", "hall/sub"]), "tiles to resume")
    # the layout is saved for this user
    await page.reload()
    await page.wait_for_selector("body[data-page=wall]")
    assert await page.locator(".wall-tile").count() == 4
    assert await page.get_attribute(".wall-tile[data-index='3']", "data-camera") == "door"
    await eventually(lambda: _more(page, 3, 5), "tile 3 playing after reload")


async def _more(page: Page, index: int, frames: int) -> bool:
    return await tile_frames(page, index) > frames


async def _sessions_are(hub: Hub, cameras: list[str]) -> bool:
    return sessions_of(hub) == sorted(cameras)


async def test_alerts_panel_snapshot_playback_ack_and_duty(
    page: Page, hub: Hub, token: Callable[..., str]
) -> None:
    await open_wall(page)
    item = page.locator(".alerts li[data-kind='motion']")
    await item.wait_for(timeout=30_000)  # the intruder walks into the zone
    await page.wait_for_function(
        "() => document.querySelector(\".alerts li[data-kind='motion'] img\")?.naturalWidth > 0"
    )
    assert await item.get_attribute("data-status") == "open"
    await item.locator("button.play").click()
    url = await page.get_attribute("#playback", "data-url")
    assert url is not None and url.startswith("/api/cameras/yard/whep?start=")
    assert await page.is_visible("#playback")
    await page.click("#playback-close")
    await item.locator("button.ack").click()
    await page.wait_for_selector(".alerts li[data-kind='motion'][data-status='acked']")
    assert "town-op" in await item.locator(".who").inner_text()
    headers = {"Authorization": f"Bearer {token()}"}
    async with hub.http.get(f"{hub.url}/api/alerts?camera=yard", headers=headers) as resp:
        alerts = await resp.json()
    assert alerts[0]["acked_by"] == "town-op" and alerts[0]["status"] == "acked"
    # a duty check for this operator shows a banner; answering it clears it
    check = await hub.app[DUTY].ask("town-op", asked_by="test")
    await page.wait_for_selector("#duty-banner:not([hidden])", timeout=10_000)
    await page.click("#duty-answer")
    await page.wait_for_selector("#duty-banner[hidden]", state="attached")
    answered = await hub.app[DUTY].get(check.id)
    assert answered is not None and answered.status == "answered"
    # an alert raised now is pushed over the WebSocket: the panel shows it well before its
    # 30 s fallback poll would
    await hub.app[ALERTS].raise_alert("disk_full", None, "410922100", {"free_bytes": 0})
    await page.wait_for_selector(".alerts li[data-kind='disk_full']", timeout=10_000)
