"""The console in real Chromium: sign-in, scope, live WHEP playback, close, errors, hidden tab."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hub.cameras.service import WHEP
from hub.core.events import EVENTS
from tests.browser.conftest import Hub
from tests.conftest import COUNTY, TOWN, VILLAGE

pytestmark = pytest.mark.browser

Page = Any  # playwright.async_api.Page (the package ships no type information mypy reads)
Route = Any


async def sign_in(page: Page, user: str, password: str) -> None:
    await page.fill("#login-user", user)
    await page.fill("#login-password", password)
    await page.click("#login-submit")
    await page.wait_for_selector("body[data-page=console]")


async def tree_cameras(page: Page) -> set[str]:
    ids: list[str] = await page.eval_on_selector_all(
        "#tree button.camera", "els => els.map(e => e.dataset.camera)"
    )
    return set(ids)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.2)


async def player_stats(page: Page, camera: str) -> dict[str, Any]:
    stats: dict[str, Any] = await page.evaluate(
        "id => window.zzhub.players.get(id)?.getStats() ?? null", camera
    )
    return stats or {}


async def wait_frames(page: Page, camera: str, more_than: int = 10) -> dict[str, Any]:
    last: dict[str, Any] = {}

    async def decoded() -> bool:
        nonlocal last
        last = await player_stats(page, camera)
        return int(last.get("framesDecoded", 0)) > more_than

    await eventually(decoded, f"{camera}: more than {more_than} frames decoded", timeout=15)
    return last


async def wait_fps(page: Page, camera: str) -> int:
    """The fps the tile shows (from getStats between polls), once it is near the camera's 25."""
    tile = f".tile[data-camera={camera}]"
    await page.wait_for_function(
        "sel => Math.abs(Number(document.querySelector(sel)?.dataset.fps) - 25) <= 8", arg=tile
    )
    shown = await page.inner_text(f"{tile} .tile-fps")
    return int(shown.split()[0])


async def viewers(hub: Hub, token: str, camera: str) -> int:
    cams = {c["id"]: c for c in await hub.cameras(token)}
    return int(cams[camera]["viewers"])


async def play(page: Page, camera: str) -> None:
    await page.click(f"#tree button.camera[data-camera={camera}]")
    await page.wait_for_selector(f"#grid .tile[data-camera={camera}]")


async def test_sign_in_shows_the_callers_scope_and_refuses_a_wrong_password(page: Page) -> None:
    await sign_in(page, "admin", "admin-pass")
    assert await tree_cameras(page) == {"county-cam", "town-cam", "other-cam", "village-cam"}
    assert "管理员" in await page.inner_text("#me-role")
    assert COUNTY in await page.inner_text("#me-centre")
    # the village sits under its township, which sits under the county
    nested = f".centre[data-centre='{COUNTY}'] .centre[data-centre='{TOWN}'] "
    nested += f".centre[data-centre='{VILLAGE}'] button.camera[data-camera=village-cam]"
    assert await page.query_selector(nested) is not None
    await page.click("#logout")
    await page.wait_for_selector("body[data-page=login]")
    assert await page.evaluate("sessionStorage.getItem('zzhub.token')") is None

    await sign_in(page, "town-op", "town-pass")
    assert await tree_cameras(page) == {"town-cam", "village-cam"}
    assert "监控员" in await page.inner_text("#me-role")
    assert "城关镇" in await page.inner_text("#me-centre")
    await page.click("#logout")

    await page.fill("#login-user", "admin")
    await page.fill("#login-password", "not-the-password")
    await page.click("#login-submit")
    error = await page.wait_for_selector("#login-error:not([hidden])")
    assert "用户名或密码错误" in await error.inner_text()
    assert await page.get_attribute("body", "data-page") == "login"


async def test_play_a_camera_then_close_it_ends_the_hub_session(
    page: Page, hub: Hub, token: Callable[..., str]
) -> None:
    admin = token()
    deletes: list[str] = []

    def on_request(request: Any) -> None:
        if request.method == "DELETE":
            deletes.append(request.url)

    page.on("request", on_request)
    await sign_in(page, "admin", "admin-pass")
    await play(page, "town-cam")
    stats = await wait_frames(page, "town-cam")
    assert (stats["width"], stats["height"]) == (320, 240)
    size = await page.eval_on_selector(
        ".tile[data-camera=town-cam] video", "v => [v.videoWidth, v.videoHeight]"
    )
    assert size == [320, 240]
    assert await page.get_attribute(".tile[data-camera=town-cam]", "data-state") == "playing"

    async def watched() -> bool:  # a thumbnail's snapshot also holds the stream for a moment
        return await viewers(hub, admin, "town-cam") == 1

    await eventually(watched, "one viewer of town-cam")
    assert 17 <= await wait_fps(page, "town-cam") <= 33  # the camera sends 25 fps

    await page.click(".tile[data-camera=town-cam] .tile-close")
    assert await page.query_selector(".tile[data-camera=town-cam]") is None

    async def released() -> bool:
        return await viewers(hub, admin, "town-cam") == 0

    await eventually(released, "viewers of town-cam back to 0")
    assert len(hub.app[WHEP]) == 0
    assert [u for u in deletes if "/api/cameras/town-cam/whep/" in u], deletes


async def test_token_sign_in_and_reload_keeps_the_session(
    page: Page, token: Callable[..., str]
) -> None:
    await page.fill("#login-token", "not.a.token")
    await page.click("#token-submit")
    error = await page.wait_for_selector("#login-error:not([hidden])")
    assert "令牌无效" in await error.inner_text()

    await page.fill("#login-token", token("operator", TOWN, "kiosk-1"))
    await page.click("#token-submit")
    await page.wait_for_selector("body[data-page=console]")
    assert await tree_cameras(page) == {"town-cam", "village-cam"}
    assert "kiosk-1" in await page.inner_text("#me-name")
    await page.reload()
    await page.wait_for_selector("body[data-page=console]")
    assert "kiosk-1" in await page.inner_text("#me-name")


async def test_whep_refusal_is_shown_on_the_tile(page: Page) -> None:
    refusal = {"error": {"code": "forbidden", "message": "viewer limit reached for this camera"}}

    async def refuse(route: Route) -> None:
        await route.fulfill(status=403, content_type="application/json", body=json.dumps(refusal))

    await page.route("**/api/cameras/village-cam/whep", refuse)
    await sign_in(page, "admin", "admin-pass")
    await play(page, "village-cam")
    tile = ".tile[data-camera=village-cam]"
    await page.wait_for_selector(f"{tile}[data-state=error]")
    message = await page.inner_text(f"{tile} .tile-msg")
    assert "无法播放" in message and "viewer limit reached" in message
    await page.click("#tree button.camera[data-camera=village-cam]")  # open already: no 2nd tile
    assert len(await page.query_selector_all("#grid .tile")) == 1


async def test_hidden_tab_releases_sessions_and_resumes_when_visible(
    page: Page, hub: Hub, token: Callable[..., str]
) -> None:
    admin = token()
    await sign_in(page, "admin", "admin-pass")
    await play(page, "county-cam")
    await wait_frames(page, "county-cam")
    set_visibility = """state => {
        window.zzhub.hiddenGraceMs = 0;
        Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => state});
        document.dispatchEvent(new Event('visibilitychange'));
    }"""
    await page.evaluate(set_visibility, "hidden")

    async def count_is(n: int) -> bool:
        return await viewers(hub, admin, "county-cam") == n

    await eventually(lambda: count_is(0), "the hidden tab to release county-cam")
    assert await page.get_attribute(".tile[data-camera=county-cam]", "data-state") == "paused"
    await page.evaluate(set_visibility, "visible")
    await wait_frames(page, "county-cam")  # a new peer connection counts from zero
    await eventually(lambda: count_is(1), "county-cam watched again")


async def test_screenshot_of_playing_cameras(page: Page, tmp_path: Path) -> None:
    await sign_in(page, "town-op", "town-pass")
    for camera in ("town-cam", "village-cam"):
        await play(page, camera)
    for camera in ("town-cam", "village-cam"):
        await wait_frames(page, camera)
    for camera in ("town-cam", "village-cam"):
        await wait_fps(page, camera)
    await page.wait_for_selector(".tile .dot.status-online")  # the list refreshed after play
    out = Path(os.environ.get("ZZHUB_SCREENSHOT_DIR", tmp_path)) / "console-playing.png"
    await page.screenshot(path=str(out))
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


async def test_cluster_banner_shows_while_redis_is_unreachable(
    browser: Any, token: Callable[..., str]
) -> None:
    """A node whose Redis does not answer serves its own features and says, on the page, that
    cross-node ones are away (hub/web/lib/cluster.js, from the hello and `cluster.state`)."""
    from tests.browser.conftest import serve_hub
    from tests.conftest import topology

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    config = topology()
    config["redis"] = {"url": f"redis://127.0.0.1:{dead}/0", "node_id": "county-a"}
    async with serve_hub(config) as served:
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            page = await context.new_page()
            await page.goto(f"{served.url}/")
            await page.fill("#login-token", token("operator", COUNTY, "op-1"))
            await page.click("#token-submit")
            await page.wait_for_selector("body[data-page=console]")
            banner = await page.wait_for_selector(
                "#cluster-banner:not([hidden]) .cluster-degraded", timeout=15_000
            )
            assert "跨节点功能暂不可用" in await banner.inner_text()
            assert await tree_cameras(page)  # local viewing goes on
            # a duplicate id this node reports (cluster.conflict, county scope) gets its line
            twin = {"kind": "petition", "item": "410922100201-20261123-0001",
                    "node": "county-b", "here": "county-a", "at": 0}  # fmt: skip
            served.app[EVENTS].publish("cluster.conflict", COUNTY, twin)
            line = await page.wait_for_selector(
                "#cluster-banner:not([hidden]) .cluster-conflict", timeout=15_000
            )
            assert "410922100201-20261123-0001" in await line.inner_text()
        finally:
            await context.close()
