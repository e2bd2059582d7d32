"""Blocking work (PyAV demux/encode/decode, OpenCV) must stay off the event loop.

asyncio's debug mode logs every callback that holds the loop longer than
`slow_callback_duration`; opening a camera with PyAV on the loop takes 1–2 s, a 720p x264
encode tens of ms per frame. We run cameras of every kind the demo has (H.264 synthetic, HEVC
transcoded, MJPEG transcoded), viewers and snapshots, and fail on any callback over 0.3 s.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config import parse_config
from hub.app import build_app
from tests.conftest import COUNTY, topology
from tests.fixtures.webrtc import WhepViewer


async def test_no_blocking_calls_on_the_loop(
    token: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    # what earlier tests left on the heap is frozen out of the collector: after a whole suite a
    # full collection alone can hold the loop past 0.3 s, and that pause is not ours to find
    gc.collect()
    gc.freeze()
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = 0.3
    caplog.set_level(logging.WARNING, logger="asyncio")
    q = "size=640x360&fps=15&gop=15"
    cfg = parse_config(
        topology(
            {
                COUNTY: [
                    {"id": "h264", "name": "a", "url": f"synthetic://h264?{q}"},
                    {"id": "hevc", "name": "b", "url": f"synthetic://hevc?{q}&codec=hevc"},
                    {"id": "mjpeg", "name": "c", "url": f"synthetic://mjpeg?{q}&codec=mjpeg"},
                ]
            }
        )
    )
    try:
        async with TestClient(TestServer(build_app(cfg), host="127.0.0.1")) as client:
            t = token()
            viewers = [
                WhepViewer(client.session, str(client.make_url(f"/api/cameras/{c}/whep")), t)
                for c in ("h264", "hevc", "mjpeg")
            ]
            for v in viewers:
                await v.start()
            for cam in ("h264", "hevc", "mjpeg"):
                resp = await client.get(
                    f"/api/cameras/{cam}/snapshot.jpg", headers={"Authorization": f"Bearer {t}"}
                )
                assert resp.status == 200
            await asyncio.gather(*(v.wait_frames(10, timeout=30) for v in viewers))
            for v in viewers:
                await v.stop()
    finally:
        loop.set_debug(False)
        gc.unfreeze()
    slow = [
        r.getMessage() for r in caplog.records if "took" in r.getMessage() and r.name == "asyncio"
    ]
    assert slow == [], "blocking work on the event loop:\n" + "\n".join(slow)
