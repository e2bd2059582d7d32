"""The room page in real Chromium (fake camera and microphone): a three-centre meeting where
everyone decodes everyone, host controls, and a camera pushed into a room."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import People, wait_decoding
from tests.conftest import TOWN, VILLAGE

pytestmark = pytest.mark.browser

Page = Any  # playwright.async_api.Page

ROOM = "window.zzroom.client"


async def create_room(people: People, host: str, **body: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {await people.token(host)}"}
    url = f"{people.hub.url}/api/rooms"
    async with people.hub.http.post(url, json=body, headers=headers) as resp:
        assert resp.status == 201, await resp.text()
        room: dict[str, Any] = await resp.json()
        return room


async def test_a_three_centre_room_where_everyone_decodes_everyone(people: People) -> None:
    # the county dispatcher creates the meeting through the lobby form
    county = await people.open("county-d", "/static/room.html")
    await county.wait_for_selector("body[data-page=lobby]")
    await county.fill("#create-title", "三级会商 three-level meeting")
    await county.select_option("#create-centres", [TOWN, VILLAGE])
    await county.click("#create-submit")
    await county.wait_for_selector("body[data-page=room]")
    room_id = await county.evaluate("window.zzroom.client.roomId")

    town = await people.open("town-d", f"/static/room.html?id={room_id}")
    village = await people.open("dongguan-terminal", f"/static/room.html?id={room_id}")
    pages = {"county-d": county, "town-d": town, "dongguan-terminal": village}
    for user, page in pages.items():
        others = {f"seat:{u}" for u in pages if u != user}
        await wait_decoding(page, ROOM, others)
    for page in pages.values():
        assert await page.locator(".room-tile.local video").evaluate("v => v.videoWidth") > 0
    # the fake microphones beep: the hub names an active speaker, highlighted on every page
    for page in pages.values():
        await page.wait_for_selector(".room-tile.speaking")

    # host controls: mute the township (everyone sees it), lock, then remove the village
    await county.click(".room-tile[data-key='seat:town-d'] .seat-mute")
    await village.wait_for_selector(".room-tile[data-key='seat:town-d'].muted")
    await county.click(".room-lock")
    await town.wait_for_selector(".badge.locked")
    await county.click(".room-tile[data-key='seat:dongguan-terminal'] .seat-remove")
    await village.wait_for_selector("body[data-page=room-removed]")
    await town.wait_for_selector(".room-tile[data-key='seat:dongguan-terminal']", state="detached")
    # who is not the host has no host controls
    assert await town.locator(".seat-remove, .room-end, .room-lock").count() == 0


async def test_a_camera_pushed_into_the_room_is_decoded_by_everyone(people: People) -> None:
    # the village terminal cannot see the county camera itself; the room shares it
    room = await create_room(people, "county-d", title="看现场 look", centres=[VILLAGE])
    county = await people.open("county-d", f"/static/room.html?id={room['id']}")
    village = await people.open("dongguan-terminal", f"/static/room.html?id={room['id']}")
    await wait_decoding(county, ROOM, {"seat:dongguan-terminal"})

    await county.select_option(".room-camera-select", "county-cam")
    await county.click(".room-add-camera")
    for page in (county, village):
        await wait_decoding(page, ROOM, {"camera:county-cam"})
    assert await village.locator(".room-tile[data-key='camera:county-cam']").count() == 1

    await county.click(".room-end")  # 全部结束: end for all
    await village.wait_for_selector("body[data-page=room-ended]")
    await county.wait_for_selector("body[data-page=room-ended]")


DENY_CAMERA = """
navigator.mediaDevices.getUserMedia = () =>
  Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
"""


async def test_camera_permission_denied_and_a_room_refused_are_shown(people: People) -> None:
    room = await create_room(people, "county-d", title="无权限 no camera", centres=[TOWN])
    town = await people.open("town-d", f"/static/room.html?id={room['id']}", init=DENY_CAMERA)
    error = await town.wait_for_selector("#room .room-error:not([hidden])")
    assert "权限被拒绝" in await error.inner_text()
    assert "permission denied" in await error.inner_text()
    assert await town.get_attribute(".room-tile.local", "data-state") == "error"

    # a village that was not invited is refused with the hub's reason
    village = await people.open("dongguan-terminal", f"/static/room.html?id={room['id']}")
    await village.wait_for_selector("body[data-page=room-error]")
    assert "无法进入会议" in await village.inner_text("#page-error")
