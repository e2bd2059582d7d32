"""Walls: POST /api/walls → a composite stream over WHEP, tiles checked by their pixels,
encoded once for all viewers, one decode per camera shared with analysis; scope; cleanup."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from aiohttp import ClientSession, web
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from config import parse_config
from hub.app import build_app
from hub.cameras.service import PICTURES
from hub.walls.service import WALLS
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, topology
from tests.fixtures.webrtc import WhepViewer

Auth = Callable[..., dict[str, str]]
Image = npt.NDArray[np.uint8]
COLOURS = {"red": "ff0000", "green": "00ff00", "blue": "0000ff", "yellow": "ffff00"}
BGR = {"red": (0, 0, 255), "green": (0, 255, 0), "blue": (255, 0, 0), "yellow": (0, 255, 255)}


class PictureViewer(WhepViewer):
    """A WHEP viewer that keeps its last decoded picture (BGR)."""

    picture: Image | None = None

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame: Any = await track.recv()
                self.frames += 1
                self.sizes.add((frame.width, frame.height))
                self.picture = frame.to_ndarray(format="bgr24")
                self._frame_seen.set()


def wall_topology() -> dict[str, Any]:
    cams: list[dict[str, Any]] = [
        {
            "id": name,
            "name": name,
            "url": f"synthetic://{name}?size=320x240&fps=10&gop=10&scene=solid&colour={hexa}",
        }
        for name, hexa in COLOURS.items()
    ]
    cams[0]["analyse"] = True  # red is also analysed: the wall shares its decode
    return topology(
        {
            TOWN: cams,
            OTHER_TOWN: [{"id": "far", "name": "far", "url": "synthetic://far?size=320x240"}],
        }
    ) | {
        "walls": [
            {
                "id": "hall",
                "name": "Hall",
                "centre": COUNTY,
                "layout": 1,
                "cameras": ["green"],
                "width": 320,
                "height": 180,
                "fps": 5,
            }
        ]
    }


@pytest.fixture
async def hub() -> AsyncIterator[tuple[str, web.Application, ClientSession]]:
    app = build_app(parse_config(wall_topology()))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with ClientSession() as http:
        try:
            yield f"http://127.0.0.1:{port}", app, http
        finally:
            await runner.cleanup()


def tile_colour(picture: Image, layout: int, index: int) -> tuple[int, int, int]:
    n = int(layout**0.5)
    h, w = picture.shape[0] // n, picture.shape[1] // n
    y, x = (index // n) * h + h // 2, (index % n) * w + w // 2
    b, g, r = picture[y - 4 : y + 4, x - 4 : x + 4].reshape(-1, 3).mean(axis=0)
    return int(b), int(g), int(r)


def close_to(colour: tuple[int, int, int], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 40 for a, b in zip(colour, expected, strict=True))


async def wait_picture(viewer: PictureViewer, check: Callable[[Image], bool]) -> Image:
    async with asyncio.timeout(20):
        while viewer.picture is None or not check(viewer.picture):
            await viewer.wait_frames(1)
    assert viewer.picture is not None
    return viewer.picture


async def test_mosaic_shows_each_camera_in_its_tile_encoded_once(
    hub: tuple[str, web.Application, ClientSession], token: Callable[..., str]
) -> None:
    base, app, http = hub
    tok = token("operator", TOWN, "op")
    headers = {"Authorization": f"Bearer {tok}"}
    order = ["red", "green", "blue", "yellow"]
    body = {"layout": 9, "cameras": order, "width": 480, "height": 270, "fps": 10}
    async with http.post(f"{base}/api/walls", json=body, headers=headers) as resp:
        assert resp.status == 201, await resp.text()
        wall = await resp.json()
    assert wall["layout"] == 9 and wall["cameras"][:4] == order and wall["cameras"][4:] == [""] * 5
    url = f"{base}{wall['whep']}"
    viewers = [PictureViewer(http, url, tok) for _ in range(2)]
    try:
        for v in viewers:
            await v.start()

        def all_tiles(picture: Image) -> bool:
            return all(close_to(tile_colour(picture, 9, i), BGR[c]) for i, c in enumerate(order))

        for v in viewers:
            picture = await wait_picture(v, all_tiles)
            assert picture.shape == (270, 480, 3)
            for i in range(4, 9):  # empty tiles stay dark
                assert max(tile_colour(picture, 9, i)) < 60
        # one composite, one encoder, for both viewers
        w = app[WALLS].get(wall["id"])
        assert w is not None and w.source is not None
        assert len(w.stream.relay.consumers) == 2 and w.stream.viewers == 2
        frames = w.source.frames
        await asyncio.sleep(1.0)
        assert 5 <= w.source.frames - frames <= 15  # ~10 fps, not 20
        # one decode per camera: the analysed red camera's tap also feeds the wall
        taps = app[PICTURES].taps
        red = taps.get("red")
        assert red is not None and red.users == 2
        assert {k for k in taps.stats()} == set(order)
    finally:
        for v in viewers:
            await v.stop()
    async with http.get(f"{base}/api/walls/{wall['id']}", headers=headers) as resp:
        assert (await resp.json())["viewers"] == 0
    async with http.delete(f"{base}/api/walls/{wall['id']}", headers=headers) as resp:
        assert resp.status == 204
    async with asyncio.timeout(10):  # nobody watches: the taps of the wall-only cameras stop
        while app[PICTURES].taps.get("blue") is not None:
            await asyncio.sleep(0.1)
    assert app[PICTURES].taps.get("red") is not None  # still analysed


async def test_configured_wall_and_single_layout(
    hub: tuple[str, web.Application, ClientSession], token: Callable[..., str]
) -> None:
    base, _app, http = hub
    tok = token("admin", COUNTY, "boss")
    headers = {"Authorization": f"Bearer {tok}"}
    async with http.get(f"{base}/api/walls", headers=headers) as resp:
        walls = await resp.json()
    assert [w["id"] for w in walls] == ["hall"] and walls[0]["configured"] is True
    viewer = PictureViewer(http, f"{base}/api/walls/hall/whep", tok)
    try:
        await viewer.start()
        picture = await wait_picture(viewer, lambda p: close_to(tile_colour(p, 1, 0), BGR["green"]))
        assert picture.shape == (180, 320, 3)
    finally:
        await viewer.stop()
    async with http.delete(f"{base}/api/walls/hall", headers=headers) as resp:
        assert resp.status == 409


async def test_wall_requests_are_checked(
    hub: tuple[str, web.Application, ClientSession], auth: Auth
) -> None:
    base, _app, http = hub
    town = auth("operator", TOWN, "op")

    async def post(body: Any, headers: dict[str, str]) -> int:
        async with http.post(f"{base}/api/walls", json=body, headers=headers) as resp:
            await resp.read()
            return resp.status

    assert await post({"layout": 4, "cameras": ["far"]}, town) == 404  # other township
    assert await post({"layout": 5, "cameras": []}, town) == 400
    assert await post({"layout": 1, "cameras": ["red", "blue"]}, town) == 400
    assert await post({"layout": 4, "cameras": "red"}, town) == 400
    assert await post({"layout": 4, "cameras": [], "fps": 100}, town) == 400
    assert await post({"layout": 4, "cameras": ["red"]}, auth("terminal", TOWN)) == 403
    assert await post({"layout": 4, "cameras": ["red"]}, town) == 201
    async with http.get(f"{base}/api/walls", headers=auth("operator", OTHER_TOWN)) as resp:
        assert [w["id"] for w in await resp.json()] == []
    async with http.post(
        f"{base}/api/walls/hall/whep",
        data="v=0",
        headers={**auth("operator", OTHER_TOWN), "Content-Type": "application/sdp"},
    ) as resp:
        assert resp.status == 404  # scope before the body
    async with http.post(
        f"{base}/api/walls/hall/whep",
        data="nonsense",
        headers={**auth(), "Content-Type": "application/sdp"},
    ) as resp:
        assert resp.status == 400


async def test_substream_whep_for_tiles(
    hub: tuple[str, web.Application, ClientSession], token: Callable[..., str]
) -> None:
    base, _app, http = hub
    tok = token("operator", TOWN, "op")
    viewer = PictureViewer(http, f"{base}/api/cameras/blue/substream/whep", tok)
    try:
        await viewer.start()
        picture = await wait_picture(viewer, lambda p: close_to(tile_colour(p, 1, 0), BGR["blue"]))
        assert picture.shape == (240, 320, 3)  # no substream configured: the main stream
    finally:
        await viewer.stop()


async def _watch_and_shut_down(token: str) -> set[asyncio.Task[Any]]:
    runner = web.AppRunner(build_app(parse_config(wall_topology())))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    async with ClientSession() as http:
        viewer = PictureViewer(http, f"{base}/api/walls/hall/whep", token)
        await viewer.start()
        await viewer.wait_frames(3, timeout=20)
        viewer.location = None  # vanish without DELETE: shutdown closes the session
        await viewer.stop()
    await runner.cleanup()
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current}


def test_shutdown_with_walls_taps_and_analysis_leaves_nothing(token: Callable[..., str]) -> None:
    import threading

    before = {t.ident for t in threading.enumerate()}
    left = asyncio.run(_watch_and_shut_down(token()))
    assert left == set(), f"tasks left after shutdown: {left}"
    threads = [t.name for t in threading.enumerate() if t.ident not in before]
    assert threads == [], f"threads left after shutdown: {threads}"
