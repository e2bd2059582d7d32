"""The broadcast pages in real Chromium (fake cameras): a county presenter and two village
terminals; both decode the presenter, one raises a hand, goes on stage, and the presenter and
the other viewer decode it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import People, wait_until
from tests.conftest import TOWN

pytestmark = pytest.mark.browser

FRAMES = "sel => { const v = document.querySelector(sel); return v && v.videoWidth > 0 ? v.getVideoPlaybackQuality().totalVideoFrames : 0; }"


async def decoding(page: Any, selector: str, what: str) -> None:
    first = 0

    async def started() -> bool:
        nonlocal first
        first = int(await page.evaluate(FRAMES, selector))
        return first > 5

    await wait_until(started, f"{what} decoding", 30)

    async def grows() -> bool:
        return int(await page.evaluate(FRAMES, selector)) > first

    await wait_until(grows, f"{what} frames growing", 10)


async def test_presenter_two_viewers_and_a_raised_hand(people: People) -> None:
    presenter = await people.open("county-d", "/static/broadcast.html")
    await presenter.wait_for_selector("#start-form:not([hidden])")
    await presenter.fill("#bc-title", "安全生产培训")
    await presenter.wait_for_selector(f"#bc-subtree option[value='{TOWN}']", state="attached")
    await presenter.select_option("#bc-subtree", TOWN)
    await presenter.select_option("#bc-level", "village")
    await presenter.click("#bc-start")
    await presenter.wait_for_selector("body[data-page=broadcast-live]")
    bid = await presenter.evaluate("document.body.dataset.broadcast")

    viewers = {
        user: await people.open(user, f"/static/broadcast.html?join={bid}")
        for user in ("dongguan-terminal", "xiguan-terminal")
    }
    for user, page in viewers.items():
        await page.wait_for_selector("body[data-page=broadcast-live]")
        await decoding(page, "#main-video", f"{user}: the presenter")

    speaker = viewers["dongguan-terminal"]
    await speaker.click("#raise-hand")
    await presenter.click("#hand-list button")
    await decoding(presenter, "#stage video", "presenter: the speaker on stage")
    await decoding(viewers["xiguan-terminal"], "#stage video", "xiguan: the speaker on stage")
