"""Alerts end to end: motion from an analysed camera, camera offline/online from a real RTSP
camera, foreign `alert.raised` events, scope, snapshots, acknowledgement."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config import parse_config
from hub.alerts.service import ALERTS
from hub.app import build_app
from hub.core.events import EVENTS, Event, Subscription
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, topology
from tests.fixtures.camera import RtspCamera, requires_rtsp_camera

Client = TestClient[Any, Any]
Auth = Callable[..., dict[str, str]]
INTRUDER = "synthetic://yard?size=320x240&fps=15&gop=15&scene=intruder&enter=1.5&loop=30"
RIGHT_ZONE = {"name": "gate", "polygon": [[0.5, 0.2], [0.95, 0.2], [0.95, 0.8], [0.5, 0.8]]}


def analysed_topology(**extra: Any) -> dict[str, Any]:
    yard = {
        "id": "yard",
        "name": "院子",
        "url": INTRUDER,
        "analyse": True,
        "motion": {"zones": [RIGHT_ZONE], "quiet": 1.0},
        **extra,
    }
    still = {"id": "still", "name": "静", "url": "synthetic://still?size=320x240&scene=static"}
    return topology({TOWN: [yard], OTHER_TOWN: [still]})


@pytest.fixture
async def hub() -> AsyncIterator[Client]:
    app = build_app(parse_config(analysed_topology()))
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


async def next_event(sub: Subscription, topic: str, timeout: float = 20) -> Event:
    async with asyncio.timeout(timeout):
        while True:
            event = await sub.get()
            if event.topic == topic:
                return event


async def test_motion_alert_is_stored_pushed_scoped_and_acknowledged(
    hub: Client, auth: Auth
) -> None:
    bus = hub.app[EVENTS]
    county, town, other = (
        bus.subscribe("c", COUNTY),
        bus.subscribe("t", TOWN),
        bus.subscribe("o", OTHER_TOWN),
    )
    event = await next_event(county, "alert.raised")
    data = event.data
    assert data["kind"] == "motion" and data["camera"] == "yard" and data["centre"] == TOWN
    assert data["details"]["zone"] == "gate" and data["status"] == "open"
    assert data["play_from"] and data["play_url"].startswith("/api/cameras/yard/whep?start=")
    assert (await next_event(town, "alert.raised")).data["id"] == data["id"]
    await asyncio.sleep(2.0)  # the box stays in the zone: still exactly one alert
    assert [e for e in other._queue if e.topic == "alert.raised"] == []
    resp = await hub.get("/api/alerts", headers=auth("operator", TOWN, "op"))
    alerts = await resp.json()
    assert [a["kind"] for a in alerts] == ["motion"]
    assert (await (await hub.get("/api/alerts", headers=auth("operator", OTHER_TOWN))).json()) == []
    resp = await hub.get(f"/api/alerts/{data['id']}", headers=auth("operator", OTHER_TOWN))
    assert resp.status == 404
    snap = await hub.get(data["snapshot"], headers=auth("operator", TOWN))
    assert snap.status == 200 and (await snap.read()).startswith(b"\xff\xd8")
    # acknowledgement: who and when, persisted; a second ack keeps the first
    resp = await hub.post(f"/api/alerts/{data['id']}/ack", headers=auth("terminal", TOWN, "kiosk"))
    assert resp.status == 403
    resp = await hub.post(f"/api/alerts/{data['id']}/ack", headers=auth("operator", TOWN, "op"))
    acked = await resp.json()
    assert resp.status == 200 and acked["acknowledged_now"] is True
    assert acked["status"] == "acked" and acked["acked_by"] == "op" and acked["acked_at"]
    assert (await next_event(county, "alert.acked")).data["acked_by"] == "op"
    again = await (
        await hub.post(f"/api/alerts/{data['id']}/ack", headers=auth("admin", COUNTY, "boss"))
    ).json()
    assert again["acknowledged_now"] is False and again["acked_by"] == "op"
    open_ = await (await hub.get("/api/alerts?status=open", headers=auth())).json()
    done = await (await hub.get("/api/alerts?status=acked&camera=yard", headers=auth())).json()
    assert open_ == [] and [a["id"] for a in done] == [data["id"]]
    resp = await hub.get(f"/api/alerts?centre={COUNTY}", headers=auth("operator", TOWN))
    assert resp.status == 403
    assert (await hub.get("/api/alerts?status=bogus", headers=auth())).status == 400


async def test_alerts_from_other_components(hub: Client, auth: Auth) -> None:
    alerts = hub.app[ALERTS]
    bus = hub.app[EVENTS]
    county = bus.subscribe("c", COUNTY)
    # the recorder publishes disk_full on the bus: stored, not published twice
    bus.publish("alert.raised", COUNTY, {"kind": "disk_full", "free_bytes": 1024})
    async with asyncio.timeout(5):
        while not await alerts.list(COUNTY, camera=None, status="open"):
            await asyncio.sleep(0.05)
    stored = (await alerts.list(COUNTY))[0]
    assert stored.kind == "disk_full" and stored.details == {"free_bytes": 1024}
    assert stored.to_json()["play_from"] is None
    raised = [e for e in county._queue if e.topic == "alert.raised"]
    assert len(raised) == 1
    # or they call raise_alert directly
    direct = await alerts.raise_alert("disk_full", None, TOWN, {"path": "/data"}, None)
    assert direct.id > stored.id
    # admins may raise one by hand; others may not
    resp = await hub.post(
        "/api/alerts", json={"kind": "fire_experimental", "camera": "yard"}, headers=auth()
    )
    body = await resp.json()
    assert resp.status == 201 and body["experimental"] is True and body["centre"] == TOWN
    resp = await hub.post("/api/alerts", json={"kind": "motion"}, headers=auth("operator"))
    assert resp.status == 403
    resp = await hub.post("/api/alerts", json={"kind": "nope"}, headers=auth())
    assert resp.status == 400


@requires_rtsp_camera
@pytest.mark.rtsp
async def test_camera_offline_and_back_online_alerts(auth: Auth) -> None:
    with RtspCamera(size="320x240", fps=15, gop=15) as camera:
        cfg = topology(
            {TOWN: [{"id": "gate", "name": "大门", "url": camera.url, "always_on": True}]}
        )
        app = build_app(parse_config(cfg))
        async with TestClient(TestServer(app, host="127.0.0.1")) as hub:
            sub = hub.app[EVENTS].subscribe("c", COUNTY)
            await asyncio.sleep(1.5)  # online
            await asyncio.to_thread(camera.kill)
            offline = await next_event(sub, "alert.raised")
            assert offline.data["kind"] == "camera_offline" and offline.data["camera"] == "gate"
            await asyncio.to_thread(camera.start)
            online = await next_event(sub, "alert.raised", timeout=30)
            assert online.data["kind"] == "camera_online" and online.data["camera"] == "gate"
            assert online.data["snapshot"], "a fresh picture of the camera back online"
            listed = await (await hub.get("/api/alerts?camera=gate", headers=auth())).json()
            assert [a["kind"] for a in listed] == ["camera_online", "camera_offline"]
