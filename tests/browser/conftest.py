"""Browser fixtures: a real hub on 127.0.0.1 and Debian's Chromium driven by Playwright.

Chromium gets the loopback WebRTC flags from ../shared/MEDIA-NOTES.md: without them it
gathers no ICE candidates on 127.0.0.1 and the WHEP session never connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from config import parse_config
from hub.app import build_app
from tests.conftest import topology
from tests.fixtures.system import requires_system

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark = requires_system(
        os.path.exists(CHROMIUM), f"{CHROMIUM} is missing (apt-get install chromium)"
    )
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(mark)


@dataclass
class Hub:
    url: str
    app: web.Application
    http: aiohttp.ClientSession

    async def cameras(self, token: str) -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"}
        async with self.http.get(f"{self.url}/api/cameras", headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            body: list[dict[str, Any]] = await resp.json()
            return body


@contextlib.asynccontextmanager
async def serve_hub(data: dict[str, Any]) -> AsyncIterator[Hub]:
    """A hub built from a config dict, served on an ephemeral loopback port."""
    app = build_app(parse_config(data))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    async with aiohttp.ClientSession() as http:
        try:
            yield Hub(f"http://{host}:{port}", app, http)
        finally:
            await runner.cleanup()


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    """The hub app with the test topology."""
    async with serve_hub(topology()) as served:
        yield served


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def page(browser: Any, hub: Hub) -> AsyncIterator[Any]:
    """A fresh page (own sessionStorage) on the hub's console; page errors fail the test."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(30_000)  # a cold CI machine starts Chromium slowly
    await page.goto(f"{hub.url}/")
    try:
        yield page
    finally:
        await context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


# -- rooms, calls and roll calls: several people, each a browser context ----------
MEDIA_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
TOWN_VILLAGES = {
    "410922100201": ("东关村", "dongguan-terminal"),
    "410922100202": ("西关村", "xiguan-terminal"),
    "410922100203": ("北关村", "beiguan-terminal"),
    "410922100204": ("南关村", "nanguan-terminal"),
}
PEOPLE_PASSWORD = "people-pass"


def people_topology() -> dict[str, Any]:
    """tests.conftest.topology() plus a county and a township dispatcher and four villages of
    the township, each with a duty terminal (`duty: true`)."""
    data = topology()
    known = {c["code"] for c in data["centres"]}
    for code, (name, _) in TOWN_VILLAGES.items():
        if code not in known:
            data["centres"].append({"code": code, "name": name, "cameras": []})
    data["users"] += [
        {"name": "county-d", "role": "dispatcher", "centre": "410922", "password": PEOPLE_PASSWORD},
        {
            "name": "town-d",
            "role": "dispatcher",
            "centre": "410922100",
            "password": PEOPLE_PASSWORD,
        },
    ]
    data["users"] += [
        {
            "name": user,
            "role": "terminal",
            "centre": code,
            "password": PEOPLE_PASSWORD,
            "duty": True,
        }
        for code, (_, user) in TOWN_VILLAGES.items()
    ]
    return data


@pytest.fixture
async def people_hub() -> AsyncIterator[Hub]:
    """A hub with people_topology(), served on an ephemeral loopback port."""
    async with serve_hub(people_topology()) as served:
        yield served


@pytest.fixture
async def media_browser() -> AsyncIterator[Any]:
    """Chromium with a fake camera and microphone, and no permission prompt."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + MEDIA_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


class People:
    """Opens pages as several signed-in people, one browser context each (own sessionStorage,
    own fake camera). Uncaught page errors fail the test at teardown."""

    def __init__(self, browser: Any, hub: Hub) -> None:
        self.browser = browser
        self.hub = hub
        self.contexts: list[Any] = []
        self.errors: list[str] = []

    async def token(self, user: str, password: str = PEOPLE_PASSWORD) -> str:
        body = {"user": user, "password": password}
        async with self.hub.http.post(f"{self.hub.url}/api/login", json=body) as resp:
            assert resp.status == 200, await resp.text()
            token: str = (await resp.json())["token"]
            return token

    async def open(self, user: str, path: str, *, video: str = "320x240", init: str = "") -> Any:
        """`user` signed in (token in sessionStorage) on `path` (e.g. /static/terminal.html);
        `init`: a script run before the page's own (e.g. to replace getUserMedia)."""
        token = await self.token(user)
        context = await self.browser.new_context(
            viewport={"width": 1280, "height": 800}, locale="zh-CN"
        )
        self.contexts.append(context)
        await context.add_init_script(f"sessionStorage.setItem('zzhub.token', {token!r})")
        if init:
            await context.add_init_script(init)
        page = await context.new_page()
        page.set_default_timeout(30_000)
        page.on("pageerror", lambda exc: self.errors.append(f"{user}: {exc}"))
        sep = "&" if "?" in path else "?"
        await page.goto(f"{self.hub.url}{path}{sep}video={video}")
        return page

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()


@pytest.fixture
async def people(media_browser: Any, people_hub: Hub) -> AsyncIterator[People]:
    crowd = People(media_browser, people_hub)
    try:
        yield crowd
    finally:
        await crowd.close()
    assert not crowd.errors, f"uncaught errors in the pages: {crowd.errors}"


async def wait_until(check: Any, what: str, timeout: float = 20) -> None:
    """Poll the async `check()` until it is true; fail naming `what` after `timeout` s."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.25)


async def room_frames(page: Any, client: str) -> dict[str, int]:
    """framesDecoded per tile key ("seat:USER", "camera:ID") of the RoomClient `client` (a JS
    expression such as "window.zzroom.client"), from getStats()."""
    stats: dict[str, Any] = await page.evaluate(
        f"async () => {{ const c = {client}; return c ? (await c.stats()).tiles : {{}}; }}"
    )
    return {key: int(s.get("framesDecoded", 0)) for key, s in stats.items()}


async def wait_decoding(
    page: Any, client: str, keys: set[str], more_than: int = 5, timeout: float = 30
) -> dict[str, int]:
    """Wait until every tile in `keys` decoded more than `more_than` frames, then check that the
    count still grows (the video is live, not one frozen frame). Returns the last counts."""
    last: dict[str, int] = {}

    async def decoding() -> bool:
        nonlocal last
        last = await room_frames(page, client)
        return all(last.get(k, 0) > more_than for k in keys)

    await wait_until(decoding, f"{client} decoding {sorted(keys)} (last {last})", timeout)
    first = dict(last)
    await asyncio.sleep(1.0)
    await wait_until(
        lambda: _grew(page, client, keys, first), f"{client}: frames growing on {sorted(keys)}", 10
    )
    return await room_frames(page, client)


async def _grew(page: Any, client: str, keys: set[str], before: dict[str, int]) -> bool:
    now = await room_frames(page, client)
    return all(now.get(k, 0) > before[k] for k in keys)
