"""After shutdown no task and no thread is left (the hub ran cameras, a viewer and a snapshot)."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import ClientSession, web

from config import parse_config
from config.schema import Role
from hub.app import build_app
from hub.core.auth import TokenIssuer
from tests.conftest import SECRET, topology
from tests.fixtures.webrtc import WhepViewer


async def exercise_hub() -> set[asyncio.Task[object]]:
    cfg = parse_config(
        topology(
            {
                "410922": [
                    {"id": "a", "name": "A", "url": "synthetic://a?size=320x240&fps=25&gop=25"},
                    {
                        "id": "b",
                        "name": "B",
                        "url": "synthetic://b?size=320x240&fps=15&gop=15&codec=mjpeg",
                    },
                    {
                        "id": "rec",
                        "name": "R",
                        "url": "synthetic://rec?size=320x240&fps=15",
                        "always_on": True,
                    },
                ]
            }
        )
    )
    runner = web.AppRunner(build_app(cfg))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    token = TokenIssuer(SECRET, 60).issue("t", Role.ADMIN, "410922")
    async with ClientSession() as http:
        viewers = [WhepViewer(http, f"{base}/api/cameras/{cam}/whep", token) for cam in ("a", "b")]
        for v in viewers:
            await v.start()
        for v in viewers:
            await v.wait_frames(3, timeout=30)
        async with http.get(
            f"{base}/api/cameras/a/snapshot.jpg", headers={"Authorization": f"Bearer {token}"}
        ) as r:
            assert r.status == 200
        # viewers vanish without DELETE: shutdown must still close their sessions
        for v in viewers:
            v.location = None
            await v.stop()
    await runner.cleanup()
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current}


def test_shutdown_leaves_no_task_and_no_thread() -> None:
    before = {t.ident for t in threading.enumerate()}
    leftover = asyncio.run(exercise_hub())
    assert leftover == set(), f"tasks left after shutdown: {leftover}"
    after = [t for t in threading.enumerate() if t.ident not in before]
    assert after == [], f"threads left after shutdown: {[t.name for t in after]}"
