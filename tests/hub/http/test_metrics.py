"""/metrics: every family parses as Prometheus text; services that are absent are skipped."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from config.schema import Role
from hub.core.auth import Principal
from hub.petitions.service import PETITIONS
from hub.rooms.model import ROOMS, RoomKind
from tests.conftest import COUNTY, VILLAGE

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"^({NAME})(?:\{{((?:{LABEL})(?:,{LABEL})*)?\}})? (\S+)(?: -?\d+)?$")
KINDS = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse(text: str) -> dict[str, dict[str, Any]]:
    """A small Prometheus text-format (0.0.4) parser: families with their type, help and
    samples; raises AssertionError on anything a Prometheus server would reject."""
    assert text.endswith("\n"), "exposition must end with a newline"
    families: dict[str, dict[str, Any]] = {}
    current: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        where = f"line {number}: {line!r}"
        if not line.strip():
            continue
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert re.fullmatch(NAME, name), where
            assert name not in families, f"family {name} repeated ({where})"
            families[name] = {"help": line.split(" ", 3)[3], "type": None, "samples": []}
            current = name
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name == current and kind in KINDS, where
            assert not families[name]["samples"], f"TYPE after samples ({where})"
            families[name]["type"] = kind
        elif line.startswith("#"):
            continue
        else:
            m = SAMPLE.match(line)
            assert m, f"bad sample ({where})"
            name, labels, value = m.groups()
            assert name == current, f"sample outside its family ({where})"
            number_value = float(value)  # raises on garbage; NaN/Inf are legal
            assert not math.isnan(number_value) or value == "NaN", where
            if families[name]["type"] == "counter":
                assert number_value >= 0, f"negative counter ({where})"
            families[name]["samples"].append((labels or "", number_value))
    for name, fam in families.items():
        assert fam["type"] is not None, f"{name} has no TYPE"
    return families


def test_parser_rejects_bad_text() -> None:
    for bad in (
        "x 1",
        "# HELP a h\n# TYPE a gauge\na{b=c} 1\n",
        "# HELP a h\n# TYPE a gauge\nb 1\n",
    ):
        with pytest.raises((AssertionError, ValueError)):
            parse(bad if bad.endswith("\n") else bad + "\n")


async def test_every_family_parses(
    client: TestClient[Any, Any], auth: Callable[..., dict[str, str]]
) -> None:
    app = client.app
    rooms = app[ROOMS]
    host = Principal("host", Role.DISPATCHER, COUNTY)
    room = rooms.create(host, kind=RoomKind.MEETING, title="周例会")
    rooms.join(room, host)
    async with client.ws_connect(f"/ws?token={auth()['Authorization'][7:]}") as ws:
        assert (await ws.receive_json())["type"] == "hello"
        resp = await client.get("/metrics", headers=auth())
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        families = parse(await resp.text())
    for name in (
        "zzhub_camera_packets_total",
        "zzhub_camera_drops_total",
        "zzhub_camera_viewers",
        "zzhub_whep_sessions",
        "zzhub_rooms",
        "zzhub_room_seats",
        "zzhub_room_publications",
        "zzhub_room_subscribers",
        "zzhub_ws_clients",
        "zzhub_events_published_total",
        "zzhub_calls_live",
        "zzhub_rollcalls_live",
        "zzhub_alerts",
        "zzhub_recordings_bytes",
        "zzhub_recordings_disk_free_bytes",
        "zzhub_sla_items",
    ):
        assert name in families, f"missing family {name}"
    assert len(families["zzhub_camera_packets_total"]["samples"]) == 4
    assert families["zzhub_room_seats"]["samples"] == [("", 1.0)]
    assert sum(v for _, v in families["zzhub_rooms"]["samples"]) == 1
    assert families["zzhub_ws_clients"]["samples"] == [('role="admin"', 1.0)]
    assert families["zzhub_recordings_disk_free_bytes"]["samples"][0][1] >= 0
    assert "zzhub_cluster_up" not in families  # no redis.url: no cluster families


async def test_metrics_need_a_token(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/metrics")).status == 401


async def test_metrics_are_for_admins_only(
    client: TestClient[Any, Any], auth: Callable[..., dict[str, str]]
) -> None:
    """Found by the outside check: a village kiosk's token listed every camera of the county."""
    for role, centre in (("terminal", VILLAGE), ("operator", COUNTY), ("dispatcher", COUNTY)):
        resp = await client.get("/metrics", headers=auth(role, centre, "someone"))
        text = await resp.text()
        assert resp.status == 403 and "zzhub_camera" not in text, (role, text[:200])


async def test_sla_items_count_open_cases_by_deadline_colour(
    client: TestClient[Any, Any], auth: Callable[..., dict[str, str]]
) -> None:
    """zzhub_sla_items: the open petitions by deadline colour (the family was always empty
    before: no service answered it)."""
    petitions = client.app[PETITIONS]
    start = time.time()
    kiosk = auth("terminal", VILLAGE, "kiosk")

    async def file(category: str) -> None:
        body = {"category": category, "text": "工资拖欠"}
        resp = await client.post("/api/petitions", json=body, headers=kiosk)
        assert resp.status == 201, await resp.text()

    petitions.clock = lambda: start
    await file("wage_arrears")
    petitions.clock = lambda: start + 60 * 86400  # two months on: the first is long overdue
    await file("land")

    def sla(families: dict[str, dict[str, Any]]) -> dict[str, float]:
        return dict(families["zzhub_sla_items"]["samples"])

    samples = sla(parse(await (await client.get("/metrics", headers=auth())).text()))
    assert samples == {
        'service="petitions",status="blue"': 1.0,
        'service="petitions",status="red"': 1.0,
        'service="petitions",status="yellow"': 0.0,
    }
