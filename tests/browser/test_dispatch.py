"""The dispatch page with terminals in real Chromium (fake camera and microphone): a county
dispatcher calls a village terminal, and a roll call over four villages, one not connected."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import TOWN_VILLAGES, People, wait_decoding, wait_until
from tests.conftest import TOWN, VILLAGE

pytestmark = pytest.mark.browser

Page = Any  # playwright.async_api.Page

DISPATCH = "window.zzdispatch.session?.client"
TERMINAL = "window.zzterminal.client"


async def wait_online(page: Page, code: str) -> None:
    await page.wait_for_selector(
        f".pcentre[data-centre='{code}'][data-presence]:not([data-presence=offline])"
    )


async def test_county_dispatcher_calls_a_village_terminal_and_each_decodes_the_other(
    people: People,
) -> None:
    term = await people.open("dongguan-terminal", "/static/terminal.html?auto=0")
    await term.wait_for_selector("#ws-state[data-state=open]")
    disp = await people.open("county-d", "/static/dispatch.html")
    await disp.wait_for_selector("body[data-page=dispatch]")
    await wait_online(disp, VILLAGE)  # the terminal's presence reached the tree

    await disp.check(f".pcentre[data-centre='{VILLAGE}'] > label input")
    await disp.click("#do-call")
    await term.wait_for_selector("body[data-screen=ringing]")
    await disp.wait_for_selector(f".target[data-centre='{VILLAGE}'][data-state=ringing]")
    await term.click("#ring-accept")
    await term.wait_for_selector("body[data-screen=room]")
    await disp.wait_for_selector(f".target[data-centre='{VILLAGE}'][data-state=accepted]")

    # each side decodes the other's camera (framesDecoded grows on both)
    await wait_decoding(disp, DISPATCH, {"seat:dongguan-terminal"})
    await wait_decoding(term, TERMINAL, {"seat:county-d"})
    await disp.wait_for_selector(
        ".room-tile[data-key='seat:dongguan-terminal'][data-state=playing]"
    )
    # the dispatcher's tree shows the village in a call
    await disp.wait_for_selector(f".pcentre[data-centre='{VILLAGE}'][data-presence=in_call]")

    await disp.click("#session-hangup")
    await term.wait_for_selector("body[data-screen=idle]")
    await disp.wait_for_selector("#session[data-state=ended]")
    row = await disp.wait_for_selector("#history tr[data-call] >> text=已结束")
    assert "是 yes" in await row.evaluate("el => el.closest('tr').innerText")


async def test_roll_call_over_four_villages_with_one_terminal_not_connected(
    people: People, tmp_path: Path
) -> None:
    villages = sorted(TOWN_VILLAGES)
    absent = villages[-1]
    terminals = {}
    for code in villages[:-1]:  # duty terminals, auto-answering
        user = TOWN_VILLAGES[code][1]
        terminals[user] = await people.open(user, "/static/terminal.html")
    for page in terminals.values():
        await page.wait_for_selector("#ws-state[data-state=open]")
    disp = await people.open("town-d", "/static/dispatch.html")
    await disp.wait_for_selector("body[data-page=dispatch]")
    for code in villages[:-1]:
        await wait_online(disp, code)

    await disp.select_option("#township", TOWN)
    await disp.click("#do-township")  # 全部村查岗: every village of the township
    for page in terminals.values():
        await page.wait_for_selector("body[data-screen=room]")

    # the ledger: three answered (automatically), the unconnected one not
    for code in villages[:-1]:
        await disp.wait_for_selector(f"#ledger tr[data-centre='{code}'][data-status=answered]")
    await disp.wait_for_selector(f"#ledger tr[data-centre='{absent}'][data-status=offline]")

    # the grid shows the three answering rooms' video
    seats = {f"seat:{user}" for user in terminals}
    await wait_decoding(disp, DISPATCH, seats)
    assert await disp.locator(".room-tile[data-state=playing]").count() == 3

    await disp.click("#session-close-rc")
    await disp.wait_for_selector("#session[data-state=closed]")
    await disp.wait_for_selector(f"#ledger tr[data-centre='{absent}'][data-status=offline]")
    assert "3/4" in await disp.inner_text(".ledger-summary")

    async with disp.expect_download() as info:
        await disp.click(".ledger-csv")
    download = await info.value
    target = tmp_path / "ledger.csv"
    await download.save_as(target)
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8-sig"))))
    assert len(rows) == 5, rows  # a header and one row per village
    answered = rows[0].index("在岗 answered")
    by_centre = {r[rows[0].index("中心编码 centre")]: r[answered] for r in rows[1:]}
    assert by_centre == {code: "否" if code == absent else "是" for code in villages}, rows

    # the snapshots the terminals uploaded are in the ledger
    async def snapshots() -> bool:
        await disp.evaluate("window.zzdispatch.showLedger(window.zzdispatch.ledger.rc.id)")
        return bool(await disp.locator("#ledger .ledger-snap").count() == 3)

    await wait_until(snapshots, "three roll-call snapshots")
