"""The terminal (kiosk) page in real Chromium: idle screen, an incoming call declined by hand,
a call the caller cancels, and the dispatch page refusing a terminal."""

from __future__ import annotations

from typing import Any

import pytest

from hub.http.ws import WS
from tests.browser.conftest import People, wait_until
from tests.conftest import VILLAGE

pytestmark = pytest.mark.browser

Page = Any  # playwright.async_api.Page


async def place_call(people: People, caller: str, centres: list[str]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {await people.token(caller)}"}
    url = f"{people.hub.url}/api/calls"
    async with people.hub.http.post(url, json={"centres": centres}, headers=headers) as resp:
        assert resp.status == 201, await resp.text()
        call: dict[str, Any] = await resp.json()
        return call


async def get_call(people: People, caller: str, call_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {await people.token(caller)}"}
    url = f"{people.hub.url}/api/calls/{call_id}"
    async with people.hub.http.get(url, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        call: dict[str, Any] = await resp.json()
        return call


async def test_a_terminal_rings_and_declines_by_hand_then_a_cancelled_call_stops_ringing(
    people: People,
) -> None:
    # auto=0: a duty terminal that does not auto-answer, so the buttons are used
    term = await people.open("dongguan-terminal", "/static/terminal.html?auto=0")
    await term.wait_for_selector("body[data-screen=idle]")
    assert "东关村" in await term.inner_text("#idle-centre")
    await term.wait_for_selector("#ws-state[data-state=open]")

    call = await place_call(people, "county-d", [VILLAGE])
    await term.wait_for_selector("body[data-screen=ringing]")
    assert "county-d" in await term.inner_text("#ring-caller")
    assert "秒" in await term.inner_text("#ring-countdown")
    await term.click("#ring-decline")
    await term.wait_for_selector("body[data-screen=idle]")

    async def declined() -> bool:
        body = await get_call(people, "county-d", call["id"])
        return bool(body["targets"][0]["state"] == "declined" and body["state"] == "ended")

    await wait_until(declined, "the call to be declined and ended")

    # a second call, cancelled by the caller: the terminal goes back to idle by itself
    call = await place_call(people, "county-d", [VILLAGE])
    await term.wait_for_selector("body[data-screen=ringing]")
    headers = {"Authorization": f"Bearer {await people.token('county-d')}"}
    url = f"{people.hub.url}/api/calls/{call['id']}/cancel"
    async with people.hub.http.post(url, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
    await term.wait_for_selector("body[data-screen=idle]")
    assert "未接来电" in await term.inner_text("#idle-last")


async def test_a_terminal_that_connects_mid_ring_still_rings(people: People) -> None:
    call = await place_call(people, "county-d", [VILLAGE])
    term = await people.open("dongguan-terminal", "/static/terminal.html?auto=0")
    await term.wait_for_selector("body[data-screen=ringing]")  # from call.pending
    assert await term.evaluate("window.zzterminal.ring.call") == call["id"]


async def test_the_dispatch_page_refuses_a_terminal_and_needs_a_sign_in(people: People) -> None:
    term = await people.open("dongguan-terminal", "/static/dispatch.html")
    await term.wait_for_selector("body[data-page=dispatch-refused]")
    assert "This page is for" in await term.inner_text("#page-error")

    # no token: sent to the console's sign-in, then back to the page
    context = await people.browser.new_context()
    people.contexts.append(context)
    page = await context.new_page()
    await page.goto(f"{people.hub.url}/static/dispatch.html")
    await page.wait_for_selector("body[data-page=login]")
    await page.fill("#login-user", "county-d")
    await page.fill("#login-password", "people-pass")
    await page.click("#login-submit")
    await page.wait_for_selector("body[data-page=dispatch]")
    assert "county-d" in await page.inner_text("#me")


async def test_the_terminal_reconnects_its_socket_and_still_rings(people: People) -> None:
    term = await people.open("dongguan-terminal", "/static/terminal.html?auto=0")
    await term.wait_for_selector("#ws-state[data-state=open]")
    await people.hub.app[WS].close_all()  # the hub drops every WebSocket
    await term.wait_for_selector("#ws-state[data-state=closed]")
    await term.wait_for_selector("#ws-state[data-state=open]")  # back after the backoff
    await place_call(people, "county-d", [VILLAGE])
    await term.wait_for_selector("body[data-screen=ringing]")
