"""Playback sessions: create → bind → ended, the unbound timeout, close; and the index
playlist that the playback thread reads through the event loop."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from hub.cameras.service import Camera
from hub.core.db import Database
from hub.recordings import playback as playback_module
from hub.recordings.playback import IndexPlaylist, PlaybackRegistry
from hub.recordings.store import RecordingIndex
from streams.playback import PlaylistItem
from streams.recorder_writer import Segment
from streams.stream import StreamState

TOWN = "410922100"
CAMERA = cast(Camera, SimpleNamespace(id="town-cam", centre=TOWN))


@pytest.fixture
async def index(tmp_path: Path) -> AsyncIterator[RecordingIndex]:
    db = Database(tmp_path / "zzhub.sqlite3")
    await db.open()
    idx = RecordingIndex(db)
    await idx.migrate()
    try:
        yield idx
    finally:
        await db.close()


@pytest.fixture
async def registry(index: RecordingIndex, tmp_path: Path) -> AsyncIterator[PlaybackRegistry]:
    reg = PlaybackRegistry(index, tmp_path / "rec")
    try:
        yield reg
    finally:
        await reg.close()


async def test_create_makes_an_unbound_idle_playback(registry: PlaybackRegistry) -> None:
    p = registry.create(CAMERA, 1_000, "wang")
    assert (p.camera, p.centre, p.user, p.start_ms, p.session) == (
        "town-cam",
        TOWN,
        "wang",
        1000,
        "",
    )
    assert p.stream.name == "town-cam" and p.stream.url == "playback://town-cam"
    assert registry.created == 1 and len(registry) == 0
    assert p.to_json() == {
        "session": "",
        "camera": "town-cam",
        "user": "wang",
        "start_ms": 1000,
        "state": "idle",
        "packets": 0,
        "position_ms": 1000,
        "paused": False,
        "speed": 1.0,
        "at_end": False,
    }


async def test_bind_get_and_ended(registry: PlaybackRegistry) -> None:
    p = registry.create(CAMERA, 0, "wang")
    registry.bind(p, "whep-1")
    assert p.session == "whep-1" and registry.get("whep-1") is p and len(registry) == 1
    assert registry._unbound == {}
    assert registry.ended("whep-1") is p
    assert registry.get("whep-1") is None and len(registry) == 0
    assert registry.ended("whep-1") is None  # twice: nothing
    assert registry.ended("a-camera-session") is None
    while registry._closing:
        await asyncio.sleep(0)
    assert p.stream.relay.closed and p.stream.state is StreamState.IDLE


async def test_a_playback_never_bound_is_dropped(
    registry: PlaybackRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(playback_module, "UNBOUND_TIMEOUT", 0.01)
    p = registry.create(CAMERA, 0, "wang")
    kept = registry.create(CAMERA, 0, "li")
    registry.bind(kept, "whep-2")
    async with asyncio.timeout(2):
        while not p.stream.relay.closed:
            await asyncio.sleep(0.01)
    assert registry._unbound == {}
    assert registry.get("whep-2") is kept and not kept.stream.relay.closed


async def test_close_closes_bound_and_unbound(index: RecordingIndex, tmp_path: Path) -> None:
    reg = PlaybackRegistry(index, tmp_path)
    bound, unbound = reg.create(CAMERA, 0, "a"), reg.create(CAMERA, 0, "b")
    reg.bind(bound, "s")
    await reg.close()
    assert bound.stream.relay.closed and unbound.stream.relay.closed
    assert len(reg) == 0 and reg._unbound == {}


async def test_index_playlist_is_read_from_another_thread(
    index: RecordingIndex, tmp_path: Path
) -> None:
    for name, start, end in [("a", 0, 1000), ("b", 1000, 2000), ("c", 2000, None)]:
        seg = Segment("town-cam", f"town-cam/20261201/{name}.mp4", start, end, 10)
        if end is None:
            await index.opened(seg, tag="", centre=TOWN)
        else:
            await index.closed(seg, tag="", centre=TOWN)
    await index.closed(Segment("other", "other/d/x.mp4", 0, 5000, 1), tag="", centre=TOWN)
    playlist = IndexPlaylist(index, tmp_path, "town-cam", asyncio.get_running_loop())
    items = await asyncio.to_thread(playlist.after, 1500)
    assert items == [
        PlaylistItem(tmp_path / "town-cam/20261201/b.mp4", 1000, 2000),
        PlaylistItem(tmp_path / "town-cam/20261201/c.mp4", 2000, None),
    ]
    assert (
        await asyncio.to_thread(
            IndexPlaylist(index, tmp_path, "nobody", asyncio.get_running_loop()).after, 0
        )
        == []
    )


async def test_index_playlist_of_a_closed_loop_is_empty(
    index: RecordingIndex, tmp_path: Path
) -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    playlist = IndexPlaylist(index, tmp_path, "town-cam", loop)

    def read() -> tuple[str, object]:
        try:
            return "returned", playlist.after(0)
        except RuntimeError as err:
            return "raised", str(err)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the coroutine left unawaited
        outcome = await asyncio.to_thread(read)
        gc.collect()
    assert outcome == ("returned", [])
