"""The demo's simulated NVR registers to a hub built from config/demo.yaml's GB/T 28181 section
over loopback SIP, and its channels are cameras of the villages their CivilCodes name: a
snapshot of one goes through INVITE and PS over RTP. A device the hub forgot (a restart)
registers again when its keepalive is refused."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from aiohttp.test_utils import TestClient, TestServer

from config.loader import parse_config
from hub.app import build_app
from hub.gb28181.app import CHANNELS
from hub.gb28181.demo import DEMO_NVR, start_demo_device
from hub.gb28181.service import REGISTRAR
from tests.conftest import SECRET

ROOT = Path(__file__).resolve().parents[3]
DONGGUAN, XIGUAN = "410922100201", "410922100202"


def demo_config(tmp_path: Path, **gb: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text("utf-8"))
    for centre in data["centres"]:
        centre["cameras"] = []  # only the NVR's channels
    data["http"] = {"host": "127.0.0.1", "port": 0, "data_dir": str(tmp_path)}
    data["auth"] = {"secret": SECRET}
    data["gb28181"].update(gb)
    return data


async def until(check: Callable[[], Any], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


async def test_the_demo_nvr_shows_two_village_cameras_that_play(
    tmp_path: Path, auth: Callable[..., dict[str, str]]
) -> None:
    config = parse_config(demo_config(tmp_path))
    async with TestClient(TestServer(build_app(config), host="127.0.0.1")) as hub:
        device = await start_demo_device(hub.app, config)
        assert device is not None
        try:
            await until(lambda: len(hub.app[CHANNELS].of(DEMO_NVR)) == 2)
            resp = await hub.get("/api/cameras", headers=auth())
            cams = {c["id"]: c for c in await resp.json() if c["source"] == "gb28181"}
            assert sorted(c["centre"] for c in cams.values()) == [DONGGUAN, XIGUAN]
            village = next(c for c in cams.values() if c["centre"] == DONGGUAN)
            assert village["name"] == "东关村文化广场" and village["status"] == "online"
            snap = await hub.get(f"/api/cameras/{village['id']}/snapshot.jpg", headers=auth())
            assert snap.status == 200 and (await snap.read())[:2] == b"\xff\xd8"
        finally:
            await device.close()


async def test_the_demo_nvr_is_not_started_when_the_config_does_not_allow_it(
    tmp_path: Path,
) -> None:
    config = parse_config(demo_config(tmp_path, devices=[{"id": "41092210001180000009"}]))
    async with TestClient(TestServer(build_app(config), host="127.0.0.1")) as hub:
        assert await start_demo_device(hub.app, config) is None


async def test_a_device_the_hub_forgot_registers_again(tmp_path: Path) -> None:
    config = parse_config(demo_config(tmp_path, keepalive_interval=0.2))
    async with TestClient(TestServer(build_app(config), host="127.0.0.1")) as hub:
        device = await start_demo_device(hub.app, config)
        assert device is not None
        try:
            registrar = hub.app[REGISTRAR]
            first = registrar.devices[DEMO_NVR].registered_at
            registrar.devices.pop(DEMO_NVR)  # as after a hub restart: keepalives get 403
            await until(lambda: DEMO_NVR in registrar.devices)
            again = registrar.devices[DEMO_NVR]
            assert again.online and again.registered_at > first
        finally:
            await device.close()
