"""`Alerts` without sockets: rows in a real SQLite store, events on a real bus, ack rules,
list filters and scope, status counts, the bounded queue and alerts published by others."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterable

import pytest

import hub.alerts.service as service
from hub.alerts.service import Alert, AlertKind, Alerts, AlertStatus, iso
from hub.core.db import Database
from hub.core.events import Event, EventBus, Subscription
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, VILLAGE

JPEG = b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9"


def drain(sub: Subscription, topic: str | None = None) -> list[Event]:
    """The events queued on `sub` (of `topic`), without waiting."""
    events = list(sub._queue)
    sub._queue.clear()
    return [e for e in events if topic is None or e.topic == topic]


async def wait_rows(alerts: Alerts, n: int, scope: str = "", timeout: float = 2.0) -> list[Alert]:
    async with asyncio.timeout(timeout):
        while len(found := await alerts.list(scope)) < n:
            await asyncio.sleep(0.01)
    return found


async def settle() -> None:
    """Let the foreign-alert listener and the tasks it starts run."""
    for _ in range(20):
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)


# -- raising ---------------------------------------------------------------------------------
async def test_raise_stores_a_row_with_an_id_and_publishes_it(
    alerts: Alerts, db: Database, bus: EventBus
) -> None:
    sub = bus.subscribe("watcher", COUNTY)
    alert = await alerts.raise_alert(
        AlertKind.MOTION, "town-cam", TOWN, {"zone": "gate"}, JPEG, at=1_700_000_000.0
    )
    assert alert.id >= 1 and alert.status is AlertStatus.OPEN and alert.has_snapshot
    row = await db.fetchone("SELECT * FROM alerts WHERE id = ?", (alert.id,))
    assert row is not None
    assert (row["kind"], row["camera"], row["centre"], row["at"]) == (
        "motion",
        "town-cam",
        TOWN,
        1_700_000_000.0,
    )
    assert row["details"] == '{"zone": "gate"}' and bytes(row["snapshot"]) == JPEG
    assert row["status"] == "open" and row["acked_by"] is None
    [event] = drain(sub, "alert.raised")
    assert event.centre == TOWN and event.data == alert.to_json()
    assert event.data["id"] == alert.id and alert.to_json()["kind"] == "motion"
    assert alerts.raised == 1
    assert await alerts.snapshot(alert.id) == JPEG


async def test_ids_increase_and_get_returns_the_stored_alert(alerts: Alerts) -> None:
    first = await alerts.raise_alert("disk_full", None, COUNTY, {"path": "/data"})
    second = await alerts.raise_alert("disk_full", None, COUNTY)
    assert second.id > first.id
    got = await alerts.get(first.id)
    assert got is not None and got == first
    assert got.details == {"path": "/data"} and not got.has_snapshot
    got_second = await alerts.get(second.id)
    assert got_second is not None and got_second.details == {}
    assert await alerts.get(second.id + 100) is None
    assert await alerts.snapshot(first.id) is None
    assert await alerts.snapshot(second.id + 100) is None


async def test_publish_false_stores_without_an_event(alerts: Alerts, bus: EventBus) -> None:
    sub = bus.subscribe("watcher", "")
    alert = await alerts.raise_alert("disk_full", None, COUNTY, publish=False)
    assert drain(sub) == []
    assert await alerts.get(alert.id) is not None and alerts.raised == 1


async def test_an_event_reaches_the_centre_and_those_above_only(
    alerts: Alerts, bus: EventBus
) -> None:
    county, town = bus.subscribe("c", COUNTY), bus.subscribe("t", TOWN)
    village, other = bus.subscribe("v", VILLAGE), bus.subscribe("o", OTHER_TOWN)
    await alerts.raise_alert(AlertKind.CAMERA_OFFLINE, "town-cam", TOWN)
    assert len(drain(county, "alert.raised")) == 1
    assert len(drain(town, "alert.raised")) == 1
    assert drain(village) == [] and drain(other) == []


async def test_to_json_plays_from_pre_event_seconds_before(db: Database, bus: EventBus) -> None:
    alerts = Alerts(db, bus, pre_event=7.5)
    await alerts.start()
    try:
        at = 1_700_000_000.0
        cam = await alerts.raise_alert(AlertKind.MOTION, "yard", TOWN, at=at, snapshot_jpeg=JPEG)
        data = cam.to_json()
        assert data["at"] == iso(at) and data["ts"] == at
        assert data["play_from"] == iso(at - 7.5)
        assert data["play_from"] == "2023-11-14T22:13:12.500+00:00"
        assert data["play_url"] == f"/api/cameras/yard/whep?start={iso(at - 7.5)}"
        assert data["snapshot"] == f"/api/alerts/{cam.id}/snapshot.jpg"
        assert data["experimental"] is False and data["acked_at"] is None
        disk = (await alerts.raise_alert(AlertKind.DISK_FULL, None, COUNTY)).to_json()
        assert disk["play_from"] is None and disk["play_url"] is None and disk["snapshot"] is None
        fire = await alerts.raise_alert(AlertKind.FIRE_EXPERIMENTAL, "yard", TOWN)
        assert fire.to_json()["experimental"] is True
    finally:
        await alerts.close()


async def test_details_keep_chinese_and_unusual_values(alerts: Alerts) -> None:
    when = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    alert = await alerts.raise_alert("motion", "yard", TOWN, {"note": "院子有人", "when": when})
    got = await alerts.get(alert.id)
    assert got is not None and got.details == {"note": "院子有人", "when": str(when)}
    assert alert.details == got.details


# -- acknowledgement -------------------------------------------------------------------------
async def test_ack_records_who_and_when_once(alerts: Alerts, bus: EventBus) -> None:
    alert = await alerts.raise_alert(AlertKind.MOTION, "town-cam", TOWN)
    sub = bus.subscribe("watcher", COUNTY)
    acked, changed = await alerts.ack(alert.id, "op")
    assert changed is True
    assert acked.status is AlertStatus.ACKED and acked.acked_by == "op"
    assert acked.acked_at is not None and acked.acked_at >= alert.at
    [event] = drain(sub, "alert.acked")
    assert event.centre == TOWN and event.data["acked_by"] == "op" and event.data["id"] == alert.id
    again, changed = await alerts.ack(alert.id, "boss")
    assert changed is False
    assert again.acked_by == "op" and again.acked_at == acked.acked_at
    assert drain(sub) == [], "a second ack publishes nothing"
    stored = await alerts.get(alert.id)
    assert stored is not None and stored.acked_by == "op"


async def test_concurrent_acks_acknowledge_once(alerts: Alerts, bus: EventBus) -> None:
    alert = await alerts.raise_alert(AlertKind.MOTION, "town-cam", TOWN)
    sub = bus.subscribe("watcher", TOWN)
    results = await asyncio.gather(*(alerts.ack(alert.id, f"op{i}") for i in range(5)))
    assert sum(changed for _, changed in results) == 1
    winner = next(a.acked_by for a, changed in results if changed)
    assert {a.acked_by for a, _ in results} == {winner}
    assert len(drain(sub, "alert.acked")) == 1


async def test_ack_of_an_unknown_alert_raises_key_error(alerts: Alerts, bus: EventBus) -> None:
    sub = bus.subscribe("watcher", "")
    with pytest.raises(KeyError):
        await alerts.ack(4242, "op")
    assert drain(sub) == []


async def test_ack_touches_only_its_own_alert(alerts: Alerts) -> None:
    one = await alerts.raise_alert("motion", "a", TOWN)
    two = await alerts.raise_alert("motion", "b", TOWN)
    await alerts.ack(one.id, "op")
    other = await alerts.get(two.id)
    assert other is not None and other.status is AlertStatus.OPEN and other.acked_by is None


# -- listing -------------------------------------------------------------------------------------
async def _fill(alerts: Alerts) -> dict[str, Alert]:
    base = 1_700_000_000.0
    spec = [
        ("county", "disk_full", None, COUNTY, 1),
        ("town", "motion", "town-cam", TOWN, 2),
        ("village", "motion", "village-cam", VILLAGE, 3),
        ("other", "camera_offline", "other-cam", OTHER_TOWN, 4),
        ("town2", "camera_offline", "town-cam", TOWN, 5),
    ]
    made = {}
    for name, kind, cam, centre, offset in spec:
        made[name] = await alerts.raise_alert(kind, cam, centre, at=base + offset, publish=False)
    return made


def ids(alerts: Iterable[Alert]) -> list[int]:
    return [a.id for a in alerts]


async def test_list_is_scoped_to_the_centre_and_below_newest_first(alerts: Alerts) -> None:
    made = await _fill(alerts)
    everything = ids(await alerts.list(COUNTY))
    assert everything == [made[n].id for n in ("town2", "other", "village", "town", "county")]
    assert ids(await alerts.list(TOWN)) == [made[n].id for n in ("town2", "village", "town")]
    assert ids(await alerts.list(VILLAGE)) == [made["village"].id]
    assert ids(await alerts.list(OTHER_TOWN)) == [made["other"].id]
    assert await alerts.list("410922199") == []


async def test_a_village_operator_never_sees_its_township(alerts: Alerts) -> None:
    await _fill(alerts)
    seen = await alerts.list(VILLAGE)
    assert {a.centre for a in seen} == {VILLAGE}
    # `centre` narrows the scope, it never widens it
    assert ids(await alerts.list(VILLAGE, centre=TOWN)) == ids(seen)
    assert ids(await alerts.list(VILLAGE, centre=COUNTY)) == ids(seen)
    assert await alerts.list(VILLAGE, centre=OTHER_TOWN) == []
    assert await alerts.list(TOWN, centre=OTHER_TOWN) == []


async def test_list_filters_by_status_camera_centre_and_limit(alerts: Alerts) -> None:
    made = await _fill(alerts)
    await alerts.ack(made["town"].id, "op")
    assert ids(await alerts.list(COUNTY, status="acked")) == [made["town"].id]
    assert made["town"].id not in ids(await alerts.list(COUNTY, status="open"))
    assert len(await alerts.list(COUNTY, status="open")) == 4
    assert ids(await alerts.list(COUNTY, camera="town-cam")) == [
        made["town2"].id,
        made["town"].id,
    ]
    assert ids(await alerts.list(COUNTY, camera="town-cam", status="open")) == [made["town2"].id]
    assert ids(await alerts.list(COUNTY, centre=OTHER_TOWN)) == [made["other"].id]
    assert ids(await alerts.list(COUNTY, centre=TOWN, camera="village-cam")) == [made["village"].id]
    assert ids(await alerts.list(COUNTY, limit=2)) == [made["town2"].id, made["other"].id]
    assert await alerts.list(COUNTY, camera="nope") == []
    assert await alerts.list(COUNTY, status="bogus") == []


async def test_equal_times_list_by_id_descending(alerts: Alerts) -> None:
    a = await alerts.raise_alert("motion", "x", TOWN, at=100.0, publish=False)
    b = await alerts.raise_alert("motion", "x", TOWN, at=100.0, publish=False)
    assert ids(await alerts.list(TOWN)) == [b.id, a.id]


async def test_status_counts(alerts: Alerts) -> None:
    assert await alerts.status_counts() == {}
    made = await _fill(alerts)
    assert await alerts.status_counts() == {"open": 5}
    await alerts.ack(made["town"].id, "op")
    await alerts.ack(made["other"].id, "op")
    await alerts.ack(made["other"].id, "op2")
    assert await alerts.status_counts() == {"open": 3, "acked": 2}


# -- the bounded queue ---------------------------------------------------------------------------
async def test_submit_drops_and_counts_past_the_bound(
    alerts: Alerts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "MAX_PENDING", 2)
    gate = asyncio.Event()
    stored: list[int] = []

    async def slow(n: int) -> None:
        await gate.wait()
        stored.append((await alerts.raise_alert("motion", f"cam{n}", TOWN, publish=False)).id)

    alerts.submit(slow(1))
    alerts.submit(slow(2))
    alerts.submit(slow(3))  # the queue is full: dropped, the coroutine closed (never awaited)
    alerts.submit(slow(4))
    assert alerts.dropped == 2
    gate.set()
    async with asyncio.timeout(2):
        while len(stored) < 2:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.02)
    cameras = sorted(a.camera or "" for a in await alerts.list(TOWN))
    assert cameras == ["cam1", "cam2"]
    alerts.submit(slow(5))  # room again
    async with asyncio.timeout(2):
        while len(stored) < 3:
            await asyncio.sleep(0.01)
    assert alerts.dropped == 2 and alerts.raised == 3


async def test_a_failing_submitted_alert_is_logged_not_raised(
    alerts: Alerts, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken() -> None:
        raise RuntimeError("disk on fire")

    with caplog.at_level(logging.ERROR, logger="hub.alerts.service"):
        alerts.submit(broken())
        await settle()
    assert any("disk on fire" in r.getMessage() for r in caplog.records)
    assert alerts.dropped == 0
    alerts.submit(alerts.raise_alert("disk_full", None, COUNTY, publish=False))
    assert len(await wait_rows(alerts, 1)) == 1


async def test_close_waits_for_alerts_being_stored(db: Database, bus: EventBus) -> None:
    alerts = Alerts(db, bus)
    await alerts.start()
    alerts.submit(alerts.raise_alert("disk_full", None, COUNTY, publish=False))
    await alerts.close()
    rows = await db.fetchall("SELECT kind FROM alerts")
    assert [r["kind"] for r in rows] == ["disk_full"]


# -- alerts published by other components and other nodes ---------------------------------------
async def test_a_foreign_event_is_stored_once_and_not_republished(
    alerts: Alerts, bus: EventBus
) -> None:
    sub = bus.subscribe("watcher", "")
    at = 1_700_000_123.0
    bus.publish("alert.raised", COUNTY, {"kind": "disk_full", "free_bytes": 1024}, at=at)
    [stored] = await wait_rows(alerts, 1)
    await settle()
    assert len(await alerts.list("")) == 1
    assert stored.kind == "disk_full" and stored.camera is None and stored.centre == COUNTY
    assert stored.details == {"free_bytes": 1024} and stored.at == at
    assert len(drain(sub, "alert.raised")) == 1, "only the original event"
    assert bus.published == 1


async def test_a_foreign_event_from_another_node_keeps_its_camera(
    alerts: Alerts, bus: EventBus
) -> None:
    bus.publish(
        "alert.raised", TOWN, {"kind": "motion", "camera": "far-cam", "zone": "x"}, origin="node-b"
    )
    [stored] = await wait_rows(alerts, 1)
    assert stored.camera == "far-cam" and stored.centre == TOWN
    assert stored.details == {"zone": "x"}
    no_kind = bus.publish("alert.raised", TOWN, {"note": "?"}, origin="node-b")
    assert no_kind.topic == "alert.raised"
    found = await wait_rows(alerts, 2)
    assert found[0].kind == "other" and found[0].details == {"note": "?"}


async def test_events_with_an_id_or_of_other_topics_are_not_stored(
    alerts: Alerts, bus: EventBus
) -> None:
    own = await alerts.raise_alert("motion", "town-cam", TOWN)  # its own event carries the id
    bus.publish("alert.raised", TOWN, {"id": 999, "kind": "motion"}, origin="node-b")
    bus.publish("alert.acked", TOWN, {"kind": "motion"})
    bus.publish("camera.status", TOWN, {"camera": "town-cam", "status": "offline"})
    await settle()
    assert ids(await alerts.list("")) == [own.id]


async def test_foreign_events_are_dropped_when_the_queue_is_full(
    alerts: Alerts, bus: EventBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "MAX_PENDING", 0)
    bus.publish("alert.raised", COUNTY, {"kind": "disk_full"})
    async with asyncio.timeout(2):
        while alerts.dropped == 0:
            await asyncio.sleep(0.01)
    assert alerts.dropped == 1 and await alerts.list("") == []


async def test_a_foreign_alert_in_a_burst_is_stored_or_counted(
    alerts: Alerts, bus: EventBus
) -> None:
    bus.publish("alert.raised", COUNTY, {"kind": "disk_full", "free_bytes": 1})
    for i in range(300):  # e.g. presence of a village network coming back, in one go
        bus.publish("presence", TOWN, {"user": f"t{i}", "status": "online"})
    await settle()
    stored = await alerts.list("")
    assert len(stored) == 1 or alerts.dropped == 1


async def test_close_stops_listening_for_foreign_events(db: Database, bus: EventBus) -> None:
    alerts = Alerts(db, bus)
    await alerts.start()
    assert len(bus.taps) == 1  # it sees every event as it is published (no lagging queue)
    await settle()
    await alerts.close()
    assert len(bus.taps) == 0 and len(bus) == 0
    bus.publish("alert.raised", COUNTY, {"kind": "disk_full"})
    await settle()
    assert await db.fetchall("SELECT id FROM alerts") == []


async def test_close_right_after_start_leaves_no_subscription(db: Database, bus: EventBus) -> None:
    alerts = Alerts(db, bus)
    await alerts.start()
    await alerts.close()
    assert len(bus) == 0
    bus.publish("alert.raised", COUNTY, {"kind": "disk_full"})
    await settle()
    assert await db.fetchall("SELECT id FROM alerts") == []


# -- a hub cluster: ownership and shared ids --------------------------------------------------
class FakeOwner:
    def __init__(self) -> None:
        self.claims: list[tuple[str, str]] = []

    def claim(self, kind: str, item: str, meta: dict[str, object] | None = None) -> None:
        self.claims.append((kind, item))

    def claim_many(self, kind: str, items: Iterable[str]) -> None:
        self.claims.extend((kind, i) for i in items)


async def test_cluster_ids_and_claims(db: Database, bus: EventBus) -> None:
    owner = FakeOwner()
    tops: list[int] = []
    answers: list[int | None] = [1000, None]

    async def next_id(top: int) -> int | None:
        tops.append(top)
        return answers.pop(0)

    first = Alerts(db, bus)
    await first.start()
    local = await first.raise_alert("disk_full", None, COUNTY, publish=False)
    await first.close()
    alerts = Alerts(db, bus, owner=owner, ids=next_id)
    await alerts.start()
    try:
        assert owner.claims == [("alert", str(local.id))], "kept alerts are re-claimed"
        shared = await alerts.raise_alert("motion", "yard", TOWN, publish=False)
        assert shared.id == 1000 and tops == [local.id]
        fallback = await alerts.raise_alert("motion", "yard", TOWN, publish=False)
        assert fallback.id == 1001, "Redis away: the local sequence numbers it"
        assert tops == [local.id, 1000]
        assert owner.claims[1:] == [("alert", "1000"), ("alert", "1001")]
        assert await alerts.get(1000) is not None
    finally:
        await alerts.close()
