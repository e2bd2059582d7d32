"""WHEP live view end to end with real aiortc peers over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from config import parse_config
from hub.app import build_app
from hub.cameras.service import CAMERAS, WHEP
from tests.conftest import COUNTY, topology
from tests.fixtures.webrtc import WhepViewer

Client = TestClient[Any, Any]


async def camera_json(client: Client, token: str, cam: str) -> dict[str, Any]:
    resp = await client.get(f"/api/cameras/{cam}", headers={"Authorization": f"Bearer {token}"})
    body: dict[str, Any] = await resp.json()
    return body


async def test_viewer_decodes_h264_passthrough_and_delete_ends_it(
    client: Client, token: Callable[..., str]
) -> None:
    t = token("operator", COUNTY)
    viewer = WhepViewer(client.session, str(client.make_url("/api/cameras/county-cam/whep")), t)
    await viewer.start()
    await viewer.wait_frames(10)
    assert viewer.sizes == {(320, 240)}
    cam = await camera_json(client, t, "county-cam")
    assert cam["viewers"] == 1 and cam["status"] == "online" and cam["codec"] == "h264"
    stream = client.app[CAMERAS].get("county-cam").stream
    assert stream.transcoder is None, "H.264 must not be transcoded"
    await viewer.stop()
    assert len(client.app[WHEP]) == 0
    assert (await camera_json(client, t, "county-cam"))["viewers"] == 0


async def test_many_viewers_one_upstream_pull(client: Client, token: Callable[..., str]) -> None:
    t = token()
    url = str(client.make_url("/api/cameras/town-cam/whep"))
    viewers = [WhepViewer(client.session, url, t) for _ in range(3)]
    for v in viewers:
        await v.start()
    await asyncio.gather(*(v.wait_frames(5) for v in viewers))
    stream = client.app[CAMERAS].get("town-cam").stream
    assert stream.connects == 1
    assert len(stream.relay.consumers) == 3
    for v in viewers:
        await v.stop()
    assert stream.viewers == 0


async def test_non_h264_camera_is_transcoded_once_for_all_viewers(
    token: Callable[..., str],
) -> None:
    cfg = parse_config(
        topology(
            {
                COUNTY: [
                    {
                        "id": "hevc-cam",
                        "name": "H.265",
                        "url": "synthetic://hevc-cam?size=320x240&fps=15&gop=15&codec=hevc",
                    }
                ]
            }
        )
    )
    async with TestClient(TestServer(build_app(cfg), host="127.0.0.1")) as client:
        t = token()
        url = str(client.make_url("/api/cameras/hevc-cam/whep"))
        viewers = [WhepViewer(client.session, url, t) for _ in range(2)]
        for v in viewers:
            await v.start()
        await asyncio.gather(*(v.wait_frames(8, timeout=30) for v in viewers))
        assert all(v.sizes == {(320, 240)} for v in viewers)
        stream = client.app[CAMERAS].get("hevc-cam").stream  # type: ignore[union-attr]
        assert stream.relay.info is not None and stream.relay.info.codec == "hevc"
        transcoder = stream.transcoder
        assert transcoder is not None
        stats = transcoder.stats()
        # one encode shared: frames out track frames in, not twice them
        assert stats["frames_out"] <= stats["frames_in"] + 2
        for v in viewers:
            await v.stop()


async def test_peer_that_vanishes_is_cleaned_up(token: Callable[..., str]) -> None:
    cfg = parse_config(topology(webrtc={"session_timeout": 2}))
    async with TestClient(TestServer(build_app(cfg), host="127.0.0.1")) as client:
        t = token()
        url = str(client.make_url("/api/cameras/county-cam/whep"))
        # 1: connects, then closes its peer connection without DELETE
        viewer = WhepViewer(client.session, url, t)
        await viewer.start()
        await viewer.wait_frames(3)
        assert viewer.pc is not None
        await viewer.pc.close()
        # 2: posts an offer and never answers ICE (no remote description)
        from aiortc import RTCPeerConnection

        ghost = RTCPeerConnection()
        ghost.addTransceiver("video", direction="recvonly")
        await ghost.setLocalDescription(await ghost.createOffer())
        resp = await client.session.post(
            url,
            data=ghost.localDescription.sdp,
            headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {t}"},
        )
        assert resp.status == 201
        await ghost.close()
        sessions = client.app[WHEP]
        async with asyncio.timeout(15):
            while len(sessions):
                await asyncio.sleep(0.1)
        stream = client.app[CAMERAS].get("county-cam").stream  # type: ignore[union-attr]
        assert stream.viewers == 0
        await viewer.stop()
