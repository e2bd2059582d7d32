"""Browser fixtures: a real hub on 127.0.0.1 and Debian's Chromium driven by Playwright.

Chromium gets the loopback WebRTC flags from ../shared/MEDIA-NOTES.md: without them it
gathers no ICE candidates on 127.0.0.1 and the WHEP session never connects.
"""

from __future__ import annotations

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
    if os.path.exists(CHROMIUM):
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


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


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    """The hub app with the test topology, served on an ephemeral loopback port."""
    app = build_app(parse_config(topology()))
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
