"""Camera registry: every status listener hears every change."""

from __future__ import annotations

import asyncio

from config import HubConfig
from hub.cameras.service import Camera, CameraRegistry


async def test_each_status_listener_hears_every_change(hub_config: HubConfig) -> None:
    registry = CameraRegistry(hub_config)
    heard: dict[str, list[tuple[str, str, str]]] = {"a": [], "b": []}
    for name in heard:

        def listener(cam: Camera, old: str, new: str, name: str = name) -> None:
            heard[name].append((cam.id, old, new))

        registry.on_status.connect(listener)
    cam = registry.get("county-cam")
    assert cam is not None
    lease = cam.stream.acquire("t")
    async with asyncio.timeout(10):
        while cam.status() != "online":
            await asyncio.sleep(0.05)
    lease.release()
    await registry.close()
    for name in heard:
        assert ("county-cam", "idle", "online") in heard[name], name
