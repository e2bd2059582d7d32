"""A simulated NVR (real SIP and media sockets on 127.0.0.1, the device side of our own
code) registers to the hub: its catalog becomes cameras of the right centres, its channels
go offline and online with the device, and a channel plays over UDP, TCP passive and TCP
active — one INVITE whatever the number of consumers, BYE from either side, decoded with
PyAV and by an aiortc WHEP viewer."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import av
import pytest
from aiohttp.test_utils import TestClient, TestServer
from av.video.codeccontext import VideoCodecContext

from config import parse_config
from hub.app import build_app
from hub.cameras.service import CAMERAS
from hub.gb28181.app import CHANNELS, LIVE, SERVER
from hub.gb28181.device import SimChannel, SimulatedDevice
from hub.gb28181.live import GbSource
from streams.mpegps import PsMuxer
from streams.rtp_ps import ps_to_rtp
from streams.stream import Stream, StreamState
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, VILLAGE, topology
from tests.fixtures.webrtc import WhepViewer

SERVER_ID, DOMAIN, PASSWORD = "41092200002000000001", "4109220000", "nvr-pass-123"
NVR = "41092210001180000001"
GATE = "41092210001310000001"  # no CivilCode: the device's centre
VILLAGE_CAM = "41092210001310000002"  # CivilCode 41092201 → the village, by the table
SNEAKY = "41092210001320000003"  # CivilCode of another township: not followed
HALL = "41092210001310000004"  # mapped to the county by a channel prefix
GROUP = "41092210002150000001"  # a business group: not a camera
SMALL = "size=320x240&fps=25&gop=25"

Client = TestClient[Any, Any]


def config(**gb: Any) -> dict[str, Any]:
    data = topology()
    data["alerts"] = {"camera_status": True}
    data["gb28181"] = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": 0,
        "server_id": SERVER_ID,
        "domain": DOMAIN,
        "password": PASSWORD,
        "keepalive_interval": 0.3,
        "missed_keepalives": 2,
        "devices": [{"id": "4109221000"}],
        "channels": [{"prefix": HALL, "centre": COUNTY}],
        "civil_codes": {"41092201": VILLAGE},
        "invite_timeout": 2,
        **gb,
    }
    return data


@pytest.fixture
async def hub() -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_app(parse_config(config())), host="127.0.0.1")) as c:
        yield c


def channels() -> list[SimChannel]:
    url = f"synthetic://gb?{SMALL}"
    return [
        SimChannel(GATE, "大门", url),
        SimChannel(VILLAGE_CAM, "村口", url, civil_code="41092201"),
        SimChannel(SNEAKY, "邻镇路口", url, civil_code=OTHER_TOWN),
        SimChannel(HALL, "大厅", url),
        SimChannel(GROUP, "业务分组", url),
    ]


async def nvr(hub: Client, *, transport: str = "udp", keepalive: float = 0.1) -> SimulatedDevice:
    server = hub.app[SERVER]
    port = server.udp_port if transport == "udp" else server.tcp_port
    device = SimulatedDevice(
        NVR,
        channels(),
        hub=("127.0.0.1", port),
        server_id=SERVER_ID,
        domain=DOMAIN,
        password=PASSWORD,
        transport=transport,
        keepalive=keepalive,
        batch=2,
    )
    await device.start()
    return device


async def until(check: Callable[[], Any], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


def listed(hub: Client) -> int:
    return len(hub.app[CHANNELS].of(NVR))


def stream_of(hub: Client, camera: str) -> Stream:
    cam = hub.app[CAMERAS].get(camera)
    assert cam is not None
    stream: Stream = cam.stream
    return stream


async def decoded_size(stream: Stream) -> tuple[int, int]:
    """Decode what the relay holds (its GOP) with PyAV: the pictures' size."""
    assert await stream.relay.wait_keyframe(10)
    info = stream.relay.info
    assert info is not None
    codec = cast(VideoCodecContext, av.CodecContext.create(str(info.codec), "r"))
    sizes = set()
    for packet in stream.relay.gop():
        for frame in codec.decode(av.Packet(packet.data)):
            sizes.add((frame.width, frame.height))
    assert len(sizes) == 1, sizes
    return sizes.pop()


async def test_catalog_channels_become_cameras_of_their_centres(
    hub: Client, auth: Callable[..., dict[str, str]]
) -> None:
    device = await nvr(hub)
    try:
        await until(lambda: listed(hub) == 4)
        assert device.queries.count("Catalog") == 1 and "DeviceInfo" in device.queries
        resp = await hub.get("/api/cameras", headers=auth())
        cams = {c["id"]: c for c in await resp.json() if c.get("source") == "gb28181"}
        assert set(cams) == {GATE, VILLAGE_CAM, SNEAKY, HALL}  # not the group
        assert {k: c["centre"] for k, c in cams.items()} == {
            GATE: TOWN,
            VILLAGE_CAM: VILLAGE,
            SNEAKY: TOWN,
            HALL: COUNTY,
        }
        assert cams[GATE]["name"] == "大门" and cams[GATE]["status"] == "online"
        assert cams[GATE]["gb28181"]["device"] == NVR and cams[GATE]["url"] is None
        assert hub.app[CHANNELS].mapper.refused_civil == 1
        # scope: the township sees its own and its village's, the other township nothing
        town = await hub.get("/api/cameras", headers=auth("operator", TOWN, "t"))
        seen = {c["id"] for c in await town.json()}
        assert {GATE, VILLAGE_CAM, SNEAKY} <= seen and HALL not in seen
        other = await hub.get("/api/cameras", headers=auth("operator", OTHER_TOWN, "o"))
        assert not {c["id"] for c in await other.json()} & set(cams)
        forbidden = await hub.get(f"/api/cameras/{GATE}", headers=auth("operator", OTHER_TOWN))
        assert forbidden.status == 404
        devices = await hub.get("/api/gb28181/devices", headers=auth())
        (entry,) = await devices.json()
        assert entry["channels"] == 4 and entry["name"] == "Simulated NVR"
    finally:
        await device.close()


async def test_channels_go_offline_with_their_device_and_come_back(
    hub: Client, auth: Callable[..., dict[str, str]]
) -> None:
    device = await nvr(hub)
    await until(lambda: listed(hub) == 4)
    await device.close()  # silent: no unregister, no keepalive

    async def alerts(kind: str) -> set[str]:
        resp = await hub.get(f"/api/alerts?kind={kind}", headers=auth())
        body = await resp.json()
        items = body["items"] if isinstance(body, dict) else body
        return {a["camera"] for a in items}

    channels = {GATE, VILLAGE_CAM, SNEAKY, HALL}
    async with asyncio.timeout(10):
        while await alerts("camera_offline") != channels:
            await asyncio.sleep(0.1)
    resp = await hub.get(f"/api/cameras/{GATE}", headers=auth())
    assert (await resp.json())["status"] == "offline"
    again = await nvr(hub)
    try:
        async with asyncio.timeout(10):
            while await alerts("camera_online") != channels:
                await asyncio.sleep(0.1)
        assert len(hub.app[CAMERAS].all()) == 4 + 4  # the same cameras, none added twice
    finally:
        await again.close()


@pytest.mark.parametrize(
    ("media", "sip"),
    [("udp", "udp"), ("tcp_passive", "udp"), ("tcp_active", "udp"), ("udp", "tcp")],
)
async def test_a_channel_plays_with_one_invite(media: str, sip: str) -> None:
    data = config(media_transport=media)
    async with TestClient(TestServer(build_app(parse_config(data)), host="127.0.0.1")) as hub:
        device = await nvr(hub, transport=sip)
        try:
            await until(lambda: listed(hub) == 4)
            stream = stream_of(hub, GATE)
            first = stream.acquire("viewer-1", viewer=True)
            second = stream.acquire("recorder")
            assert await decoded_size(stream) == (320, 240)
            assert hub.app[LIVE].invites == 1 and len(device.sessions) == 1
            assert stream.relay.info is not None and stream.relay.info.fps == 25
            first.release()
            second.release()
            await stream.wait_state(StreamState.IDLE, timeout=10)
            await until(lambda: device.byes == 1 and not device.sessions)
            assert not hub.app[LIVE].sessions
        finally:
            await device.close()


async def test_field_devices_no_marker_other_ssrc_no_sdp_no_to_tag(hub: Client) -> None:
    device = await nvr(hub)
    try:
        await until(lambda: listed(hub) == 4)
        device.marker = False  # pictures end at the next pack header
        device.stream_ssrc = 123456789  # announced in its answer's y=
        stream = stream_of(hub, GATE)
        with stream.acquire("v"):
            assert await decoded_size(stream) == (320, 240)
        await stream.wait_state(StreamState.IDLE, timeout=10)
        # a 200 with no SDP and no To tag: media comes to the offered port with our SSRC
        device.stream_ssrc, device.marker = None, True
        device.answer_sdp = device.to_tag = False
        with stream.acquire("v"):
            assert await decoded_size(stream) == (320, 240)
        await stream.wait_state(StreamState.IDLE, timeout=10)
        await until(lambda: device.byes == 2)
    finally:
        await device.close()


async def test_a_device_bye_ends_the_session_and_the_stream_invites_again(hub: Client) -> None:
    device = await nvr(hub)
    try:
        await until(lambda: listed(hub) == 4)
        stream = stream_of(hub, GATE)
        with stream.acquire("v"):
            await stream.wait_state(StreamState.ONLINE, timeout=10)
            await device.bye(GATE)
            await until(lambda: hub.app[LIVE].invites == 2 and len(device.sessions) == 1)
            await stream.wait_state(StreamState.ONLINE, timeout=10)
            assert device.byes == 0  # the hub does not BYE a dialog the device ended
        await until(lambda: device.byes == 1)  # the second session's, at the end of the pull
    finally:
        await device.close()


async def test_an_unanswered_invite_fails_the_pull_with_a_reason(
    hub: Client, auth: Callable[..., dict[str, str]]
) -> None:
    device = await nvr(hub)
    try:
        await until(lambda: listed(hub) == 4)
        device.answer_invites = False
        stream = stream_of(hub, GATE)
        with stream.acquire("v"):
            await stream.wait_state(StreamState.OFFLINE, timeout=10)
            assert "did not answer INVITE" in stream.last_error
            resp = await hub.get(f"/api/cameras/{GATE}", headers=auth())
            body = await resp.json()
            assert body["status"] == "offline" and "INVITE" in body["last_error"]
        assert hub.app[LIVE].invite_failed >= 1
        await stream.wait_state(StreamState.IDLE, timeout=10)
        assert len(hub.app[SERVER].pending) == 0  # no transaction left waiting
    finally:
        await device.close()


async def test_media_from_strangers_and_wrong_ssrcs_is_dropped(hub: Client) -> None:
    device = await nvr(hub)
    try:
        await until(lambda: listed(hub) == 4)
        stream = stream_of(hub, GATE)
        with stream.acquire("v"):
            await stream.wait_state(StreamState.ONLINE, timeout=10)
            (session,) = hub.app[LIVE].sessions.values()
            assert isinstance(session, GbSource)
            ps = PsMuxer().video(b"\x00\x00\x00\x01\x65" + b"\x00" * 100, 0, keyframe=True)
            live = hub.app[LIVE]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
                stranger.bind(("127.0.0.2", 0))  # not the device's address
                for rtp in ps_to_rtp(ps, 1, 0, session._ssrc or 0):
                    stranger.sendto(rtp, ("127.0.0.1", session.media_port))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as wrong:
                wrong.bind(("127.0.0.1", 0))
                for rtp in ps_to_rtp(ps, 1, 0, 42):
                    wrong.sendto(rtp, ("127.0.0.1", session.media_port))
            await until(lambda: live.strangers >= 1 and live.wrong_ssrc >= 1)
            assert await decoded_size(stream) == (320, 240)  # the device's stream goes on
    finally:
        await device.close()


async def test_an_aiortc_whep_viewer_decodes_a_gb_channel(
    hub: Client, token: Callable[..., str]
) -> None:
    device = await nvr(hub)
    try:
        await until(lambda: listed(hub) == 4)
        viewer = WhepViewer(
            hub.session, str(hub.make_url(f"/api/cameras/{VILLAGE_CAM}/whep")), token()
        )
        await viewer.start()
        await viewer.wait_frames(10, timeout=20)
        assert viewer.sizes == {(320, 240)}
        await viewer.stop()
    finally:
        await device.close()
