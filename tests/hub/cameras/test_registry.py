"""`CameraRegistry` without sockets: scope rules of `visible` / `viewable` (the same refusal
for an unknown id and one outside the scope), `find`, `visible_to`, the `on_status` hook, a
remote directory of other nodes' cameras (a stub of our own protocol), `require_node`, and
the registry's synthetic cameras."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from config import HubConfig, parse_config
from config.schema import CameraConfig, Role
from hub.cameras.service import Camera, CameraRegistry, PictureSources, require_node
from hub.core.auth import Principal
from hub.core.errors import NotFound, Unavailable
from streams.stream import Stream, StreamState
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, VILLAGE, topology

SMALL = "size=320x240&fps=25&gop=25"


def who(centre: str, role: Role = Role.OPERATOR, user: str = "op") -> Principal:
    return Principal(user, role, centre)


@pytest.fixture
async def registry(hub_config: HubConfig) -> AsyncIterator[CameraRegistry]:
    reg = CameraRegistry(hub_config)
    try:
        yield reg
    finally:
        await reg.close()


def camera(registry: CameraRegistry, camera_id: str) -> Camera:
    cam = registry.get(camera_id)
    assert cam is not None
    return cam


def drive(cam: Camera, state: StreamState, *, attempt: int | None = None) -> None:
    """As the pull loop does: `attempt` (failed attempts of this pull) set before the state."""
    if attempt is not None:
        cam.stream.attempt = attempt
    cam.stream._set_state(state)


class RemoteCamera(Camera):
    """Another node's camera as the cluster add-on lists it (enough for these rules)."""

    up: bool = True

    @property
    def node(self) -> str:
        return "node-b"

    @property
    def available(self) -> bool:
        return self.up


def remote_camera(camera_id: str, centre: str, *, up: bool = True) -> RemoteCamera:
    config = CameraConfig(id=camera_id, name=camera_id, url=f"hubrelay://node-b/{camera_id}")
    cam = RemoteCamera(config, centre, Stream(camera_id, config.url))
    cam.up = up
    return cam


class FakeDirectory:
    """A `RemoteDirectory`: `known` is what `get` answers; `refresh` moves `later` in."""

    def __init__(self, *cams: Camera) -> None:
        self.known: dict[str, Camera] = {c.id: c for c in cams}
        self.later: dict[str, Camera] = {}
        self.refreshes = 0
        self.gets: list[str] = []

    def get(self, camera_id: str) -> Camera | None:
        self.gets.append(camera_id)
        return self.known.get(camera_id)

    async def refresh(self) -> None:
        self.refreshes += 1
        self.known.update(self.later)
        self.later.clear()

    def visible_to(self, scope: str) -> list[dict[str, object]]:
        return [{"id": c.id} for c in self.known.values() if c.centre.startswith(scope)]


# -- visible: this node's cameras ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("centre", "seen"),
    [
        (COUNTY, {"county-cam", "town-cam", "other-cam", "village-cam"}),
        (TOWN, {"town-cam", "village-cam"}),
        (OTHER_TOWN, {"other-cam"}),
        (VILLAGE, {"village-cam"}),
    ],
)
def test_visible_follows_the_centre_tree(
    registry: CameraRegistry, centre: str, seen: set[str]
) -> None:
    p = who(centre)
    for cam in registry.all():
        if cam.id in seen:
            assert registry.visible(cam.id, p) is cam
        else:
            with pytest.raises(NotFound):
                registry.visible(cam.id, p)
    assert {c.id for c in registry.visible_to(centre)} == seen


def test_outside_the_scope_and_unknown_are_refused_alike(registry: CameraRegistry) -> None:
    village = who(VILLAGE)
    with pytest.raises(NotFound) as outside:
        registry.visible("town-cam", village)
    with pytest.raises(NotFound) as unknown:
        registry.visible("no-such-cam", village)
    assert outside.value.code == unknown.value.code == "not_found"
    assert outside.value.message == "no camera 'town-cam' in your scope"
    assert unknown.value.message == "no camera 'no-such-cam' in your scope"
    template = outside.value.message.replace("town-cam", "X")
    assert unknown.value.message.replace("no-such-cam", "X") == template


def test_the_role_does_not_widen_the_scope(registry: CameraRegistry) -> None:
    for role in (Role.ADMIN, Role.DISPATCHER, Role.TERMINAL):
        with pytest.raises(NotFound):
            registry.visible("county-cam", who(TOWN, role))
        assert registry.visible("village-cam", who(TOWN, role)).centre == VILLAGE


def test_a_centre_code_prefix_that_is_not_an_ancestor_sees_nothing(
    registry: CameraRegistry,
) -> None:
    assert registry.visible_to("410922102") == []
    assert registry.visible_to("999999") == []
    assert {c.id for c in registry.visible_to("")} == {c.id for c in registry.all()}


def test_get_all_and_find_without_a_remote(registry: CameraRegistry) -> None:
    assert [c.id for c in registry.all()] == ["county-cam", "town-cam", "other-cam", "village-cam"]
    assert registry.get("nope") is None and registry.find("nope") is None
    assert registry.find("village-cam") is registry.get("village-cam")
    cam = camera(registry, "town-cam")
    assert cam.centre == TOWN and cam.node == "" and cam.available
    require_node(cam)  # this node's cameras are always reachable


async def test_viewable_without_a_remote_is_visible(registry: CameraRegistry) -> None:
    assert (await registry.viewable("town-cam", who(TOWN))).id == "town-cam"
    with pytest.raises(NotFound, match="no camera 'town-cam' in your scope"):
        await registry.viewable("town-cam", who(OTHER_TOWN))
    with pytest.raises(NotFound, match="no camera 'ghost' in your scope"):
        await registry.viewable("ghost", who(COUNTY))


# -- a remote directory -------------------------------------------------------------------------
async def test_viewable_finds_a_remote_camera_without_refreshing(
    registry: CameraRegistry,
) -> None:
    far = remote_camera("far-cam", TOWN)
    directory = FakeDirectory(far)
    registry.remote = directory
    assert await registry.viewable("far-cam", who(TOWN)) is far
    assert await registry.viewable("far-cam", who(COUNTY)) is far
    assert directory.refreshes == 0


async def test_viewable_refreshes_once_then_refuses(registry: CameraRegistry) -> None:
    directory = FakeDirectory()
    registry.remote = directory
    with pytest.raises(NotFound) as err:
        await registry.viewable("ghost", who(COUNTY))
    assert err.value.message == "no camera 'ghost' in your scope"
    assert directory.refreshes == 1 and directory.gets == ["ghost", "ghost"]


async def test_viewable_sees_a_camera_claimed_since_the_last_read(
    registry: CameraRegistry,
) -> None:
    directory = FakeDirectory()
    late = remote_camera("late-cam", VILLAGE)
    directory.later[late.id] = late
    registry.remote = directory
    assert await registry.viewable("late-cam", who(TOWN)) is late
    assert directory.refreshes == 1
    assert await registry.viewable("late-cam", who(VILLAGE)) is late
    assert directory.refreshes == 1, "known now: no second refresh"


async def test_a_remote_camera_outside_the_scope_is_refused_like_an_unknown_one(
    registry: CameraRegistry,
) -> None:
    directory = FakeDirectory(remote_camera("far-cam", TOWN))
    registry.remote = directory
    with pytest.raises(NotFound) as outside:
        await registry.viewable("far-cam", who(OTHER_TOWN))
    with pytest.raises(NotFound) as unknown:
        await registry.viewable("nope", who(OTHER_TOWN))
    assert outside.value.message.replace("far-cam", "X") == unknown.value.message.replace(
        "nope", "X"
    )
    assert type(outside.value) is type(unknown.value)


async def test_local_cameras_never_ask_the_remote_directory(registry: CameraRegistry) -> None:
    shadow = remote_camera("town-cam", OTHER_TOWN)  # a remote entry with a local camera's id
    directory = FakeDirectory(shadow)
    registry.remote = directory
    with pytest.raises(NotFound):
        await registry.viewable("town-cam", who(OTHER_TOWN))
    assert (await registry.viewable("town-cam", who(TOWN))) is registry.get("town-cam")
    assert registry.find("town-cam") is registry.get("town-cam")
    assert directory.gets == [] and directory.refreshes == 0


def test_find_falls_back_to_the_remote_without_scope(registry: CameraRegistry) -> None:
    far = remote_camera("far-cam", OTHER_TOWN)
    registry.remote = FakeDirectory(far)
    assert registry.find("far-cam") is far
    assert registry.find("ghost") is None
    assert "far-cam" not in {c.id for c in registry.all()}
    assert "far-cam" not in {c.id for c in registry.visible_to("")}
    with pytest.raises(NotFound):
        registry.visible("far-cam", who(COUNTY))  # visible: this node's cameras only


def test_require_node_refuses_a_camera_whose_node_is_away() -> None:
    away = remote_camera("far-cam", TOWN, up=False)
    with pytest.raises(Unavailable) as err:
        require_node(away)
    assert err.value.code == "node_unavailable"
    assert "far-cam" in err.value.message and "node-b" in err.value.message
    require_node(remote_camera("near-cam", TOWN))


# -- on_status ---------------------------------------------------------------------------------
async def test_on_status_emits_camera_old_new_once_per_change(registry: CameraRegistry) -> None:
    heard: list[tuple[str, str, str]] = []
    registry.on_status.connect(lambda cam, old, new: heard.append((cam.id, old, new)))
    cam = camera(registry, "town-cam")
    drive(cam, StreamState.CONNECTING, attempt=0)  # first attempt: still idle
    assert heard == []
    drive(cam, StreamState.ONLINE)
    drive(cam, StreamState.OFFLINE)
    drive(cam, StreamState.CONNECTING, attempt=1)  # a retry: still offline
    drive(cam, StreamState.OFFLINE)
    drive(cam, StreamState.ONLINE)
    drive(cam, StreamState.IDLE)
    assert heard == [
        ("town-cam", "idle", "online"),
        ("town-cam", "online", "offline"),
        ("town-cam", "offline", "online"),
        ("town-cam", "online", "idle"),
    ]


async def test_on_status_hands_over_the_camera_object(registry: CameraRegistry) -> None:
    got: list[Camera] = []
    registry.on_status.connect(lambda cam, old, new: got.append(cam))
    village = camera(registry, "village-cam")
    drive(village, StreamState.OFFLINE)
    assert got == [village] and got[0].status() == "offline"


async def test_a_listener_that_raises_does_not_stop_the_others(
    registry: CameraRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[str] = []

    def broken(cam: Camera, old: str, new: str) -> None:
        raise RuntimeError("listener bug")

    registry.on_status.connect(lambda cam, old, new: heard.append(f"first:{new}"))
    registry.on_status.connect(broken)
    registry.on_status.connect(lambda cam, old, new: heard.append(f"last:{new}"))
    cam = camera(registry, "county-cam")
    with caplog.at_level(logging.ERROR):
        drive(cam, StreamState.OFFLINE)
        drive(cam, StreamState.IDLE)
    assert heard == ["first:offline", "last:offline", "first:idle", "last:idle"]
    assert sum("camera status" in r.getMessage() for r in caplog.records) == 2
    assert cam.stream.state is StreamState.IDLE


async def test_a_disconnected_listener_hears_nothing_more(registry: CameraRegistry) -> None:
    heard: list[str] = []
    handle = registry.on_status.connect(lambda cam, old, new: heard.append(new))
    cam = camera(registry, "town-cam")
    drive(cam, StreamState.OFFLINE)
    handle.disconnect()
    handle.disconnect()
    drive(cam, StreamState.IDLE)
    assert heard == ["offline"] and not handle.connected


async def test_status_changes_are_per_camera(registry: CameraRegistry) -> None:
    heard: list[tuple[str, str, str]] = []
    registry.on_status.connect(lambda cam, old, new: heard.append((cam.id, old, new)))
    drive(camera(registry, "town-cam"), StreamState.OFFLINE)
    drive(camera(registry, "other-cam"), StreamState.OFFLINE)
    drive(camera(registry, "town-cam"), StreamState.IDLE)
    assert heard == [
        ("town-cam", "idle", "offline"),
        ("other-cam", "idle", "offline"),
        ("town-cam", "offline", "idle"),
    ]
    assert camera(registry, "other-cam").status() == "offline"


async def test_a_healthy_on_demand_camera_never_reads_offline() -> None:
    registry = CameraRegistry(parse_config(topology(streams={"linger": 0.05})))
    heard: list[tuple[str, str]] = []
    registry.on_status.connect(lambda cam, old, new: heard.append((old, new)))
    cam = camera(registry, "town-cam")
    try:
        for _ in range(3):  # a viewer comes, watches, leaves; the stream stops after the linger
            lease = cam.stream.acquire("viewer", viewer=True)
            await cam.stream.wait_state(StreamState.ONLINE, timeout=10)
            lease.release()
            await cam.stream.wait_state(StreamState.IDLE, timeout=5)
    finally:
        await registry.close()
    assert ("idle", "online") in heard
    assert all("offline" not in change for change in heard), heard


# -- the cameras themselves ------------------------------------------------------------------------
def test_status_maps_the_stream_state() -> None:
    config = CameraConfig(id="c", name="c", url=f"synthetic://c?{SMALL}")
    cam = Camera(config, TOWN, Stream("c", config.url))
    assert cam.status() == "idle"
    cases = [  # (state, failed attempts of this pull, status)
        (StreamState.CONNECTING, 0, "idle"),
        (StreamState.ONLINE, 0, "online"),
        (StreamState.OFFLINE, 0, "offline"),
        (StreamState.CONNECTING, 1, "offline"),
        (StreamState.IDLE, 1, "idle"),
        (StreamState.CONNECTING, 0, "idle"),  # pulled again later: a first attempt again
    ]
    for state, attempt, status in cases:
        cam.stream.attempt = attempt
        cam.stream._set_state(state)
        assert cam.status() == status, (state, attempt)


def registry_of(cams: list[dict[str, Any]]) -> CameraRegistry:
    return CameraRegistry(parse_config(topology({TOWN: cams})))


async def test_always_on_follows_the_camera_config() -> None:
    url = f"synthetic://x?{SMALL}"
    registry = registry_of(
        [
            {"id": "plain", "name": "p", "url": url},
            {"id": "always", "name": "a", "url": url, "always_on": True},
            {"id": "analysed", "name": "m", "url": url, "analyse": True},
            {"id": "recorded", "name": "r", "url": url, "record": "continuous"},
            {"id": "on-alert", "name": "o", "url": url, "record": "on_alert"},
        ]
    )
    try:
        on = {c.id for c in registry.all() if c.stream.always_on}
        assert on == {"always", "analysed", "recorded"}
    finally:
        await registry.close()


async def test_start_pulls_only_always_on_cameras() -> None:
    url = f"synthetic://x?{SMALL}"
    registry = registry_of(
        [
            {"id": "plain", "name": "p", "url": url},
            {"id": "always", "name": "a", "url": url, "always_on": True},
        ]
    )
    try:
        registry.start()
        await asyncio.sleep(0)
        always, plain = camera(registry, "always"), camera(registry, "plain")
        assert always.stream.state is not StreamState.IDLE
        assert plain.stream.state is StreamState.IDLE
    finally:
        await registry.close()
    assert str(always.stream.state) == "idle", "close stops every pull"


async def test_to_json_redacts_credentials_and_names_the_substream() -> None:
    registry = registry_of(
        [
            {
                "id": "gate",
                "name": "大门",
                "url": "rtsp://admin:s3cret@10.0.0.9:554/main",
                "substream_url": f"synthetic://gate-sub?{SMALL}",
            },
            {"id": "plain", "name": "p", "url": f"synthetic://plain?{SMALL}", "analyse": False},
        ]
    )
    try:
        data = camera(registry, "gate").to_json()
        assert "s3cret" not in str(data["url"]) and "10.0.0.9" in str(data["url"])
        assert data["has_substream"] is True and data["centre"] == TOWN
        assert data["status"] == "idle" and data["name"] == "大门" and data["viewers"] == 0
        assert camera(registry, "plain").to_json()["has_substream"] is False
        meta = camera(registry, "gate").cluster_meta()
        assert meta == {"name": "大门", "centre": TOWN, "record": "off", "analyse": False}
    finally:
        await registry.close()


async def test_picture_sources_make_one_substream_per_camera() -> None:
    config = parse_config(
        topology(
            {
                TOWN: [
                    {
                        "id": "gate",
                        "name": "g",
                        "url": f"synthetic://gate?{SMALL}",
                        "substream_url": f"synthetic://gate-sub?{SMALL}",
                    },
                    {"id": "plain", "name": "p", "url": f"synthetic://plain?{SMALL}"},
                ]
            }
        )
    )
    registry = CameraRegistry(config)
    pictures = PictureSources(config)
    try:
        gate, plain = camera(registry, "gate"), camera(registry, "plain")
        sub = pictures.substream(gate)
        assert sub is not None and sub.name == "gate/sub" and sub.url.endswith("gate-sub?" + SMALL)
        assert pictures.substream(gate) is sub
        assert pictures.substream(plain) is None
        assert sub.state is StreamState.IDLE, "created, not pulled"
    finally:
        await pictures.close()
        await registry.close()
