"""A real RTSP camera (GStreamer's RTSP server) through the hub to an aiortc WHEP viewer:
frames decode, and when the camera dies and comes back the SAME viewer resumes, no new offer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp.test_utils import TestClient, TestServer

from config import parse_config
from hub.app import build_app
from hub.cameras.service import CAMERAS
from streams.stream import StreamState
from tests.conftest import COUNTY, VILLAGE, topology
from tests.fixtures.camera import RtspCamera, requires_rtsp_camera
from tests.fixtures.webrtc import WhepViewer

pytestmark = requires_rtsp_camera


async def test_viewer_survives_camera_restart(token: Callable[..., str]) -> None:
    camera = RtspCamera(size="640x360", fps=25, gop=25, bitrate=800)
    await asyncio.to_thread(camera.start)
    try:
        cfg = parse_config(
            topology(
                {VILLAGE: [{"id": "gate", "name": "村口", "url": camera.url}]},
                streams={"backoff": [[0.5, 1000]], "connect_timeout": 3},
            )
        )
        async with TestClient(TestServer(build_app(cfg), host="127.0.0.1")) as client:
            viewer = WhepViewer(
                client.session,
                str(client.make_url("/api/cameras/gate/whep")),
                token("operator", COUNTY),
            )
            await viewer.start()
            await viewer.wait_frames(15, timeout=20)
            assert viewer.sizes == {(640, 360)}
            stream = client.app[CAMERAS].get("gate").stream  # type: ignore[union-attr]
            assert stream.relay.info is not None and stream.relay.info.codec == "h264"

            await asyncio.to_thread(camera.kill)
            await stream.wait_state(StreamState.OFFLINE, timeout=15)
            resp = await client.get(
                "/api/cameras/gate", headers={"Authorization": f"Bearer {token()}"}
            )
            assert (await resp.json())["status"] == "offline"
            frames_while_down = viewer.frames

            await asyncio.to_thread(camera.start)
            await stream.wait_state(StreamState.ONLINE, timeout=20)
            await viewer.wait_frames(15, timeout=20)
            assert viewer.frames > frames_while_down
            assert stream.reconnects >= 1
            assert viewer.pc is not None and viewer.pc.connectionState == "connected"
            await viewer.stop()
    finally:
        await asyncio.to_thread(camera.stop)
