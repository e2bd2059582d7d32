"""Broadcast attendance (JSON, per-township summary, CSV with BOM), the presenter's recording,
and the clear 4xx answers to bad broadcast requests."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.app import build_app
from hub.broadcasts.service import BROADCASTS
from hub.rooms.model import ROOMS
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, VILLAGE
from tests.hub.broadcasts.test_broadcast import Member, config, wait_for

Client = TestClient[Any, Any]


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_app(config()), host="127.0.0.1")) as c:
        yield c


async def test_attendance_lists_who_joined_and_who_never_did(
    client: Client, token: Callable[..., str]
) -> None:
    presenter = Member(client, token("dispatcher", COUNTY, "county-d"), "county-d")
    town = Member(client, token("terminal", TOWN, "town-t"), "town-t")
    village = Member(client, token("terminal", VILLAGE, "village-t"), "village-t")
    body = {"title": "防汛培训", "centres": [TOWN, VILLAGE, OTHER_TOWN]}
    b = await presenter.req("POST", "/api/broadcasts", 201, json=body)
    bid = b["id"]
    try:
        await presenter.req("POST", f"/api/broadcasts/{bid}/join")
        await presenter.publish(bid)
        service = client.app[BROADCASTS]
        await wait_for(lambda: bool(service.recordings_of(bid)), 10)
        recording = service.recordings_of(bid)["county-d"]
        assert recording.source.startswith(f"room/{bid}/presenter")

        await town.req("POST", f"/api/broadcasts/{bid}/join")
        await village.req("POST", f"/api/broadcasts/{bid}/join")
        await asyncio.sleep(0.3)
        await town.req("POST", f"/api/broadcasts/{bid}/leave")
        await town.req("POST", f"/api/broadcasts/{bid}/join")  # back: a second session
        # a guest on stage is recorded as its own track, until taken off stage
        await town.req("POST", f"/api/broadcasts/{bid}/hand", json={"up": True})
        await presenter.req("POST", f"/api/broadcasts/{bid}/stage", json={"user": "town-t"})
        await town.publish(bid)
        await wait_for(lambda: "town-t" in service.recordings_of(bid), 10)
        guest = service.recordings_of(bid)["town-t"]
        assert guest.source.startswith(f"room/{bid}/stage-1-")
        assert service.recordings_of(bid)["county-d"] is recording  # still recording
        await presenter.req(
            "POST", f"/api/broadcasts/{bid}/stage", json={"user": "town-t", "on": False}
        )
        assert "town-t" not in service.recordings_of(bid)
        await asyncio.sleep(0.2)
        report = await presenter.req("GET", f"/api/broadcasts/{bid}/attendance")
        assert report["never_joined"] == [OTHER_TOWN]
        by_centre = {c["centre"]: c for c in report["centres"]}
        assert [u["user"] for u in by_centre[TOWN]["users"]] == ["town-t"]
        assert by_centre[TOWN]["users"][0]["sessions"] == 2
        assert by_centre[VILLAGE]["users"][0]["seconds"] >= 0.4
        assert not by_centre[OTHER_TOWN]["joined"]
        townships = {t["township"]: t for t in report["townships"]}
        assert townships[TOWN]["centres"] == 2 and townships[TOWN]["joined"] == 2
        assert townships[OTHER_TOWN]["never_joined"] == [OTHER_TOWN]
        assert townships[OTHER_TOWN]["rate"] == 0

        await presenter.req("POST", f"/api/broadcasts/{bid}/end")
        await wait_for(lambda: not service.recordings_of(bid))
        # an ended broadcast is still answered once it is no longer in memory (a restart)
        service._by_id.pop(bid)
        ended = await village.req("GET", f"/api/broadcasts/{bid}")
        assert ended["ended"] is True and ended["ended_at"] and ended["presenter"] == "county-d"
        resp = await client.get(f"/api/broadcasts/{bid}/attendance.csv", headers=presenter.headers)
        assert resp.status == 200 and resp.content_type == "text/csv"
        raw = await resp.read()
        assert raw.startswith(b"\xef\xbb\xbf")
        rows = list(csv.DictReader(io.StringIO(raw[3:].decode("utf-8"))))
        assert {(r["centre"], r["user"]) for r in rows} == {
            (TOWN, "town-t"),
            (VILLAGE, "village-t"),
            (OTHER_TOWN, ""),
        }
        assert all(r["last_left"] for r in rows if r["user"])  # ended: every interval closed
        # a viewer does not read the attendance
        await village.req("GET", f"/api/broadcasts/{bid}/attendance", 403)
    finally:
        for m in (presenter, town, village):
            await m.close()


async def test_bad_broadcast_requests(client: Client, token: Callable[..., str]) -> None:
    county = Member(client, token("dispatcher", COUNTY, "county-d"), "county-d")
    town_d = Member(client, token("dispatcher", TOWN, "town-d"), "town-d")
    terminal = Member(client, token("terminal", TOWN, "town-t"), "town-t")
    village_d = Member(client, token("dispatcher", VILLAGE, "village-d"), "village-d")
    other = Member(client, token("terminal", OTHER_TOWN, "other-t"), "other-t")
    ok = {"title": "培训", "subtree": TOWN}
    await terminal.req("POST", "/api/broadcasts", 403, json=ok)
    await village_d.req("POST", "/api/broadcasts", 403, json={"title": "x", "subtree": VILLAGE})
    await town_d.req("POST", "/api/broadcasts", 403, json={"title": "x", "subtree": OTHER_TOWN})
    await county.req("POST", "/api/broadcasts", 404, json={"title": "x", "centres": ["999"]})
    both = {"title": "x", "subtree": TOWN, "centres": [TOWN]}
    await county.req("POST", "/api/broadcasts", 400, json=both)
    await county.req("POST", "/api/broadcasts", 400, json={"subtree": TOWN})
    await county.req("POST", "/api/broadcasts", 400, json={**ok, "level": "planet"})
    await county.req(
        "POST", "/api/broadcasts", 400, json={**ok, "centres": "410922100"} | {"subtree": None}
    )
    resp = await client.post("/api/broadcasts", data="{", headers=county.headers)
    assert resp.status == 415
    villages = await town_d.req(
        "POST",
        "/api/broadcasts",
        201,
        json={"title": "村培训", "subtree": TOWN, "level": "village"},
    )
    assert villages["targets"] == [VILLAGE]

    b = await county.req("POST", "/api/broadcasts", 201, json=ok)
    bid = b["id"]
    await other.req("POST", f"/api/broadcasts/{bid}/join", 404)  # outside the subtree
    await terminal.sdp(f"/api/broadcasts/{bid}/whep", "v=0", status=409)  # join first
    await terminal.req("POST", f"/api/broadcasts/{bid}/join")
    await terminal.sdp(f"/api/broadcasts/{bid}/whep", "v=0", status=404)  # nobody publishes
    await terminal.req("POST", f"/api/broadcasts/{bid}/hand", 400, json={"up": "yes"})
    await county.req("POST", f"/api/broadcasts/{bid}/stage", 404, json={"user": "nobody"})
    await county.req("POST", f"/api/broadcasts/{bid}/stage", 400, json={"on": True})
    await terminal.req("POST", f"/api/broadcasts/{bid}/end", 403)
    await county.req("GET", "/api/broadcasts/nope", 404)
    listed = await terminal.req("GET", "/api/broadcasts")
    assert bid in {x["id"] for x in listed}
    assert await other.req("GET", "/api/broadcasts") == []  # another township sees none
    await county.req("POST", f"/api/broadcasts/{bid}/end")
    await county.req("POST", f"/api/broadcasts/{bid}/end", 409)
    await terminal.req("POST", f"/api/broadcasts/{bid}/join", 409)
    room = client.app[ROOMS].get(b["room"])
    assert room is not None and room.ended
