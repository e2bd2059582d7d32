"""`Walls` without sockets or encoding: creation rules (layouts, camera lists, empty tiles,
the wall limit), walls from the config, scope of the list, get, delete, close, and the tiles
a wall's mosaic would open (with picture sources that decode nothing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from config import HubConfig, parse_config
from config.loader import ConfigError
from config.schema import CameraConfig
from hub.cameras.service import Camera, CameraRegistry, PictureSources
from hub.walls.service import MAX_WALLS, TapFeed, Wall, WallError, Walls
from streams.decoded import FrameListener, TapLease
from streams.mosaic import LAYOUTS, MosaicSource, MosaicSpec
from streams.registry import SourceOptions
from streams.stream import Stream, StreamState
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, VILLAGE, topology

SMALL = "size=320x240&fps=10&gop=10"


def wall_config(walls: list[dict[str, Any]] | None = None, **sections: Any) -> HubConfig:
    cams = {
        COUNTY: [{"id": "hall", "name": "Hall", "url": f"synthetic://hall?{SMALL}"}],
        TOWN: [
            {"id": "gate", "name": "大门", "url": f"synthetic://gate?{SMALL}"},
            {"id": "yard", "name": "Yard", "url": f"synthetic://yard?{SMALL}"},
        ],
        VILLAGE: [{"id": "duty", "name": "值班室", "url": f"synthetic://duty?{SMALL}"}],
        OTHER_TOWN: [{"id": "far", "name": "far", "url": f"synthetic://far?{SMALL}"}],
    }
    data = topology(cams, **sections)
    if walls is not None:
        data["walls"] = walls
    return parse_config(data)


class FakeTap:
    latest = None


class FakeLease:
    def __init__(self, camera: str, kwargs: dict[str, Any]) -> None:
        self.camera = camera
        self.kwargs = kwargs
        self.tap = FakeTap()
        self.released = False

    def release(self) -> None:
        self.released = True


class RecordingPictures(PictureSources):
    def __init__(self, config: HubConfig) -> None:
        super().__init__(config)
        self.leases: list[FakeLease] = []

    def lease(
        self,
        camera: Camera,
        *,
        fps: float,
        height: int = 0,
        listener: FrameListener | None = None,
        keyframes_only: bool = False,
        main: bool = False,
    ) -> TapLease:
        fake = FakeLease(camera.id, {"fps": fps, "height": height, "main": main})
        self.leases.append(fake)
        return cast(TapLease, fake)


class Rig:
    def __init__(self, config: HubConfig, **kwargs: Any) -> None:
        self.registry = CameraRegistry(config)
        self.pictures = RecordingPictures(config)
        self.walls = Walls(config, self.registry, self.pictures, **kwargs)

    async def close(self) -> None:
        await self.walls.close()
        await self.pictures.close()
        await self.registry.close()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r = Rig(wall_config())
    try:
        yield r
    finally:
        await r.close()


def spec(layout: int = 4, **kw: Any) -> MosaicSpec:
    return MosaicSpec(layout, kw.pop("width", 320), kw.pop("height", 180), kw.pop("fps", 5), **kw)


def make(rig: Rig, cameras: list[str], layout: int = 4, centre: str = TOWN, **kw: Any) -> Wall:
    return rig.walls.create(spec(layout), cameras, centre=centre, owner=kw.pop("owner", "op"), **kw)


# -- creation rules -------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_pads_its_tiles(rig: Rig, layout: int) -> None:
    wall = make(rig, ["gate"], layout)
    assert wall.cameras == ["gate"] + [""] * (layout - 1)
    assert wall.spec.layout == layout and rig.walls.get(wall.id) is wall


@pytest.mark.parametrize("layout", [0, 2, 3, 8, 25, -4])
def test_other_layouts_are_refused(rig: Rig, layout: int) -> None:
    with pytest.raises(WallError, match="layout must be one of 1, 4, 9, 16"):
        make(rig, [], layout)
    assert len(rig.walls) == 0


def test_more_cameras_than_tiles_are_refused(rig: Rig) -> None:
    with pytest.raises(WallError, match="5 cameras do not fit 4 tiles"):
        make(rig, ["gate", "yard", "hall", "duty", "far"], 4)
    with pytest.raises(WallError, match="2 cameras do not fit 1 tiles"):
        make(rig, ["gate", ""], 1)
    assert len(rig.walls) == 0
    assert make(rig, ["gate", "yard", "hall", "duty"], 4).cameras == [
        "gate",
        "yard",
        "hall",
        "duty",
    ]


def test_an_unknown_camera_is_refused(rig: Rig) -> None:
    with pytest.raises(WallError, match="unknown camera 'ghost'"):
        make(rig, ["gate", "ghost"])
    assert len(rig.walls) == 0 and rig.walls.visible_to("") == []


def test_empty_tiles_keep_their_place(rig: Rig) -> None:
    wall = make(rig, ["", "gate", "", "yard"], 9)
    assert wall.cameras == ["", "gate", "", "yard", "", "", "", "", ""]
    assert make(rig, [], 1).cameras == [""]
    assert make(rig, ["", "", "", ""], 4).cameras == ["", "", "", ""]


def test_a_camera_may_fill_several_tiles(rig: Rig) -> None:
    assert make(rig, ["gate", "gate"]).cameras == ["gate", "gate", "", ""]


def test_a_remote_camera_may_be_shown(rig: Rig) -> None:
    class Directory:
        def __init__(self, cam: Camera) -> None:
            self.cam = cam

        def get(self, camera_id: str) -> Camera | None:
            return self.cam if camera_id == self.cam.id else None

        async def refresh(self) -> None:
            return None

        def visible_to(self, scope: str) -> list[dict[str, object]]:
            return []

    config = CameraConfig(id="node-b-cam", name="b", url="hubrelay://node-b/node-b-cam")
    rig.registry.remote = Directory(Camera(config, OTHER_TOWN, Stream("b", config.url)))
    wall = make(rig, ["node-b-cam", "gate"])
    assert wall.cameras[:2] == ["node-b-cam", "gate"]
    assert rig.walls.find("node-b-cam") is not None and rig.walls.find("nope") is None
    with pytest.raises(WallError):
        make(rig, ["node-c-cam"])


def test_a_new_wall_is_described(rig: Rig) -> None:
    wall = make(rig, ["gate"], 4, name="镇大屏", owner="town-op")
    assert wall.name == "镇大屏" and wall.owner == "town-op" and wall.centre == TOWN
    assert not wall.configured and wall.source is None
    data = wall.to_json()
    assert data == {
        "id": wall.id,
        "name": "镇大屏",
        "centre": TOWN,
        "owner": "town-op",
        "layout": 4,
        "cameras": ["gate", "", "", ""],
        "width": 320,
        "height": 180,
        "fps": 5,
        "configured": False,
        "viewers": 0,
        "state": "idle",
        "whep": f"/api/walls/{wall.id}/whep",
        "stats": {},
    }
    assert wall.stream.name == f"wall:{wall.id}" and wall.stream.url == f"wall://{wall.id}"
    assert wall.stream.state is StreamState.IDLE, "made, not pulled: nobody watches yet"


def test_a_nameless_wall_is_named_by_its_id(rig: Rig) -> None:
    wall = make(rig, [])
    assert wall.name == wall.id and wall.id


def test_ids_are_distinct(rig: Rig) -> None:
    made = {make(rig, []).id for _ in range(20)}
    assert len(made) == 20 and len(rig.walls) == 20


# -- the wall limit ---------------------------------------------------------------------------------
async def test_at_most_max_walls_until_one_is_deleted() -> None:
    r = Rig(wall_config(), max_walls=2)
    try:
        first = make(r, ["gate"])
        second = make(r, ["yard"])
        with pytest.raises(WallError, match="at most 2 walls; delete one first"):
            make(r, ["hall"])
        assert len(r.walls) == 2
        assert await r.walls.delete(first.id) is True
        third = make(r, ["hall"])
        assert {w.id for w in r.walls.visible_to("")} == {second.id, third.id}
        assert r.walls.get(third.id) is third and len(r.walls) == 2
    finally:
        await r.close()


async def test_the_default_limit_is_max_walls(rig: Rig) -> None:
    assert rig.walls.max_walls == MAX_WALLS == 64
    for _ in range(MAX_WALLS):
        make(rig, [])
    with pytest.raises(WallError, match=f"at most {MAX_WALLS} walls"):
        make(rig, [])
    assert len(rig.walls) == MAX_WALLS


async def test_config_walls_count_towards_the_limit() -> None:
    walls = [{"id": "big", "centre": COUNTY, "layout": 1, "cameras": ["hall"]}]
    r = Rig(wall_config(walls), max_walls=2)
    try:
        make(r, [])
        with pytest.raises(WallError, match="at most 2"):
            make(r, [])
    finally:
        await r.close()


async def test_too_many_config_walls_fail_at_start() -> None:
    walls = [{"id": f"w{i}", "centre": COUNTY} for i in range(3)]
    config = wall_config(walls)
    registry = CameraRegistry(config)
    pictures = PictureSources(config)
    try:
        with pytest.raises(WallError, match="at most 2"):
            Walls(config, registry, pictures, max_walls=2)
    finally:
        await pictures.close()
        await registry.close()


# -- walls from the config ------------------------------------------------------------------------
async def test_config_walls_are_made_at_start() -> None:
    walls = [
        {"id": "hall-wall", "name": "Hall", "centre": COUNTY, "layout": 1, "cameras": ["hall"]},
        {
            "id": "town-wall",
            "centre": TOWN,
            "layout": 9,
            "cameras": ["gate", "", "yard"],
            "width": 640,
            "height": 360,
            "fps": 10,
        },
    ]
    r = Rig(wall_config(walls))
    try:
        hall, town = r.walls.get("hall-wall"), r.walls.get("town-wall")
        assert hall is not None and town is not None
        assert hall.configured and hall.owner == "config" and hall.name == "Hall"
        assert hall.cameras == ["hall"] and hall.centre == COUNTY
        assert town.name == "town-wall", "no name: its id"
        assert town.cameras == ["gate", "", "yard", "", "", "", "", "", ""]
        assert (town.spec.width, town.spec.height, town.spec.fps) == (640, 360, 10)
        assert town.to_json()["configured"] is True
    finally:
        await r.close()


@pytest.mark.parametrize(
    ("wall", "error"),
    [
        ({"id": "w", "centre": TOWN, "cameras": ["ghost"]}, "unknown camera"),
        ({"id": "w", "centre": "410922199", "cameras": []}, "is not in centres"),
        ({"id": "w", "centre": TOWN, "layout": 1, "cameras": ["gate", "yard"]}, "for 1 tiles"),
        ({"id": "w", "centre": TOWN, "layout": 6}, "layout"),
        ({"id": "w", "centre": TOWN, "fps": 0}, "fps"),
    ],
)
def test_bad_config_walls_are_refused(wall: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        wall_config([wall])


def test_a_config_wall_id_used_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match="used twice"):
        wall_config([{"id": "w", "centre": TOWN}, {"id": "w", "centre": COUNTY}])


# -- scope, get, delete, close -----------------------------------------------------------------
def test_the_list_is_scoped_to_the_centre_and_below(rig: Rig) -> None:
    county = make(rig, ["hall"], centre=COUNTY)
    town = make(rig, ["gate"], centre=TOWN)
    village = make(rig, ["duty"], centre=VILLAGE)
    other = make(rig, ["far"], centre=OTHER_TOWN)

    def ids(scope: str) -> set[str]:
        return {w.id for w in rig.walls.visible_to(scope)}

    assert ids(COUNTY) == {county.id, town.id, village.id, other.id}
    assert ids(TOWN) == {town.id, village.id}
    assert ids(VILLAGE) == {village.id}
    assert ids(OTHER_TOWN) == {other.id}
    assert ids("410922199") == set()


def test_get_unknown_is_none(rig: Rig) -> None:
    make(rig, [])
    assert rig.walls.get("nope") is None and rig.walls.get("") is None


async def test_delete_closes_the_wall_stream(rig: Rig) -> None:
    wall = make(rig, ["gate"])
    keep = make(rig, ["yard"])
    assert await rig.walls.delete(wall.id) is True
    assert rig.walls.get(wall.id) is None and len(rig.walls) == 1
    assert wall.stream.relay.closed and wall.stream.state is StreamState.IDLE
    assert not keep.stream.relay.closed
    assert await rig.walls.delete(wall.id) is False
    assert await rig.walls.delete("nope") is False
    assert rig.walls.get(keep.id) is keep


async def test_the_service_deletes_config_walls_too() -> None:
    # the route refuses (409) to delete a configured wall; the service itself does not check
    r = Rig(wall_config([{"id": "big", "centre": COUNTY, "cameras": ["hall"]}]))
    try:
        assert await r.walls.delete("big") is True and r.walls.get("big") is None
    finally:
        await r.close()


async def test_close_removes_and_closes_every_wall() -> None:
    r = Rig(wall_config([{"id": "big", "centre": COUNTY}]))
    made = [make(r, []), make(r, ["gate"])]
    big = r.walls.get("big")
    assert big is not None
    await r.close()
    assert len(r.walls) == 0 and r.walls.visible_to("") == []
    assert all(w.stream.relay.closed for w in [*made, big])


# -- the tiles of a wall's mosaic --------------------------------------------------------------
def open_source(wall: Wall) -> MosaicSource:
    source = wall.stream._source_factory(wall.stream.url, SourceOptions(name=wall.stream.name))
    assert isinstance(source, MosaicSource) and wall.source is source
    return source


def test_tiles_lease_each_camera_and_leave_empty_tiles_empty(rig: Rig) -> None:
    wall = rig.walls.create(
        MosaicSpec(4, 640, 360, 8), ["gate", "", "yard"], centre=TOWN, owner="op"
    )
    source = open_source(wall)
    assert source.spec == wall.spec
    feeds = source.open_tiles(*wall.spec.tile_size)
    assert len(feeds) == 4 and feeds[1] is None and feeds[3] is None
    assert all(isinstance(f, TapFeed) for f in (feeds[0], feeds[2]))
    assert [lease.camera for lease in rig.pictures.leases] == ["gate", "yard"]
    _, tile_height = wall.spec.tile_size
    for lease in rig.pictures.leases:
        assert lease.kwargs == {"fps": 8, "height": tile_height, "main": False}


def test_tile_labels_are_ascii_names_else_ids(rig: Rig) -> None:
    wall = make(rig, ["gate", "yard"])
    feeds = open_source(wall).open_tiles(160, 90)
    labels = [f.label for f in feeds if f is not None]
    assert labels == ["gate", "Yard"], "大门 is not ASCII: the id is burned in instead"


def test_a_tile_feed_reads_and_releases_its_lease(rig: Rig) -> None:
    wall = make(rig, ["gate"])
    [feed, *_] = open_source(wall).open_tiles(160, 90)
    assert feed is not None
    assert feed.frame() is None, "no decoded picture yet"
    feed.close()
    assert rig.pictures.leases[0].released


def test_a_camera_gone_since_is_an_empty_tile(rig: Rig) -> None:
    class Directory:
        def __init__(self) -> None:
            self.cams: dict[str, Camera] = {}

        def get(self, camera_id: str) -> Camera | None:
            return self.cams.get(camera_id)

        async def refresh(self) -> None:
            return None

        def visible_to(self, scope: str) -> list[dict[str, object]]:
            return []

    directory = Directory()
    config = CameraConfig(id="b-cam", name="b", url="hubrelay://node-b/b-cam")
    directory.cams["b-cam"] = Camera(config, TOWN, Stream("b-cam", config.url))
    rig.registry.remote = directory
    wall = make(rig, ["b-cam", "gate"])
    del directory.cams["b-cam"]  # its node went away
    feeds = open_source(wall).open_tiles(160, 90)
    assert feeds[0] is None and feeds[1] is not None
    assert [lease.camera for lease in rig.pictures.leases] == ["gate"]
