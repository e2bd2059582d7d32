"""Rooms over HTTP with real aiortc participants: publish, subscribe to each other, a camera
shared into the room, host controls, rejoin, and the roll-call snapshot."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, TestServer
from aiortc import RTCSessionDescription
from yarl import URL

from config import parse_config
from hub.app import build_app
from hub.cameras.service import WHEP
from hub.rooms.model import ROOMS
from hub.rooms.service import ROOM_MEDIA
from tests.conftest import COUNTY, TOWN, VILLAGE, topology
from tests.fixtures import people
from tests.fixtures.webrtc import WhepViewer
from tests.signaling.test_publish_peers import Publisher, Subscriber

Client = TestClient[Any, Any]


def config() -> Any:
    data = topology()
    data["users"] += [
        {"name": "county-d", "role": "dispatcher", "centre": COUNTY, "password": "x"},
        {"name": "village-t", "role": "terminal", "centre": VILLAGE, "password": "x", "duty": True},
    ]
    return parse_config(data)


class Person(people.Person):
    """Someone in rooms: joins, publishes (WHIP), watches seats (WHEP)."""

    def __init__(self, client: Client, token: str, user: str = "") -> None:
        super().__init__(client, token, user)
        self.publisher: Publisher | None = None
        self.subscribers: dict[str, Subscriber] = {}

    async def publish(self, room: str) -> None:
        self.publisher = Publisher()
        answer, _ = await self.sdp(f"/api/rooms/{room}/publish", await self.publisher.offer())
        await self.publisher.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def watch(self, room: str, user: str) -> Subscriber:
        sub = Subscriber()
        answer, _ = await self.sdp(f"/api/rooms/{room}/seats/{user}/whep", await sub.offer())
        await sub.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        self.subscribers[user] = sub
        return sub

    async def close(self) -> None:
        for sub in self.subscribers.values():
            await sub.close()
        if self.publisher is not None:
            await self.publisher.close()


async def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


async def test_three_centre_room_everyone_sees_everyone(token: Callable[..., str]) -> None:
    async with TestClient(TestServer(build_app(config()), host="127.0.0.1")) as client:
        host = Person(client, token("dispatcher", COUNTY, "county-d"), "county-d")
        town = Person(client, token("operator", TOWN, "town-op"), "town-op")
        village = Person(client, token("terminal", VILLAGE, "village-t"), "village-t")
        room = await host.call(
            "POST",
            "/api/rooms",
            json={"title": "调度会", "users": ["town-op"], "centres": [VILLAGE]},
        )
        rid = room["id"]
        people = [host, town, village]
        try:
            for p in people:
                await p.call("POST", f"/api/rooms/{rid}/join")
                await p.publish(rid)
            rooms = client.app[ROOMS]
            await wait_for(lambda: all(s.publication for s in rooms.get(rid).seats.values()))  # type: ignore[union-attr]
            for p in people:
                for other in people:
                    if other is not p:
                        await p.watch(rid, other.user)
            await asyncio.gather(
                *(sub.wait(video=5, audio=5) for p in people for sub in p.subscribers.values())
            )
            assert all(sub.sizes == {(320, 240)} for p in people for sub in p.subscribers.values())

            # the host shares a county camera; the village terminal (outside its scope) sees it
            resp = await village.client.get("/api/cameras/county-cam", headers=village.headers)
            assert resp.status == 404
            await host.call("POST", f"/api/rooms/{rid}/cameras", json={"camera": "county-cam"})
            viewer = WhepViewer(
                client.session,
                str(client.make_url(f"/api/rooms/{rid}/cameras/county-cam/whep")),
                village.headers["Authorization"][7:],
            )
            await viewer.start()
            await viewer.wait_frames(5)
            # the participant ends its own session of the shared camera (its DELETE used to
            # be refused: the camera is outside its scope)
            assert viewer.location is not None
            resp = await client.delete(URL(viewer.location).path, headers=village.headers)
            assert resp.status == 200, await resp.text()
            assert len(client.app[WHEP]) == 0
            viewer.location = None
            await viewer.stop()

            # host controls: mute stops the village microphone being forwarded
            await host.call(
                "POST", f"/api/rooms/{rid}/control", json={"action": "mute", "user": "village-t"}
            )
            media = client.app[ROOM_MEDIA]
            seat = rooms.get(rid).seats["village-t"]  # type: ignore[union-attr]
            pub = media.publications.get(seat.publication or "")
            assert pub is not None and pub.audio_muted
            heard = host.subscribers["village-t"].audio_frames
            await asyncio.sleep(0.5)
            assert host.subscribers["village-t"].audio_frames - heard < 5
            # only the host controls
            resp = await client.post(
                f"/api/rooms/{rid}/control", json={"action": "end"}, headers=town.headers
            )
            assert resp.status == 403
            # remove: the seat and its media go
            await host.call(
                "POST", f"/api/rooms/{rid}/control", json={"action": "remove", "user": "village-t"}
            )
            await wait_for(lambda: media.publications.get(seat.publication or "") is None)
            # and what it was receiving stops: a removed user does not keep watching
            await wait_for(
                lambda: all(s.user != "village-t" for s in media.publications.subscriptions())
            )
            resp = await client.post(f"/api/rooms/{rid}/join", headers=village.headers)
            assert resp.status == 403
            await host.call("POST", f"/api/rooms/{rid}/control", json={"action": "end"})
            assert rooms.get(rid).ended  # type: ignore[union-attr]
            await wait_for(lambda: not media.publications.publications())
        finally:
            for p in people:
                await p.close()


async def test_dropped_participant_gets_the_same_seat(token: Callable[..., str]) -> None:
    async with TestClient(TestServer(build_app(config()), host="127.0.0.1")) as client:
        host = Person(client, token("dispatcher", COUNTY, "county-d"), "county-d")
        village = Person(client, token("terminal", VILLAGE, "village-t"), "village-t")
        room = await host.call("POST", "/api/rooms", json={"centres": [VILLAGE]})
        rid = room["id"]
        first = (await village.call("POST", f"/api/rooms/{rid}/join"))["seat"]["seat"]
        await village.publish(rid)
        rooms = client.app[ROOMS]
        await wait_for(lambda: rooms.get(rid).seats["village-t"].publication is not None)  # type: ignore[union-attr]
        pub = client.app[ROOM_MEDIA].publications.get(
            rooms.get(rid).seats["village-t"].publication or ""  # type: ignore[union-attr]
        )
        assert pub is not None
        await asyncio.wait_for(pub.connected.wait(), 10)
        assert village.publisher is not None
        await village.publisher.close()  # the village link drops
        await wait_for(lambda: not rooms.get(rid).seats["village-t"].present, 15)  # type: ignore[union-attr]
        again = (await village.call("POST", f"/api/rooms/{rid}/join"))["seat"]["seat"]
        assert again == first
        await village.close()


async def test_bad_room_requests(token: Callable[..., str]) -> None:
    async with TestClient(TestServer(build_app(config()), host="127.0.0.1")) as client:
        h = {"Authorization": f"Bearer {token('dispatcher', TOWN, 'town-d')}"}
        resp = await client.post("/api/rooms", json={"centres": ["410922101"]}, headers=h)
        assert resp.status == 403  # another township
        resp = await client.post("/api/rooms", json={"kind": "party"}, headers=h)
        assert resp.status == 400
        t = {"Authorization": f"Bearer {token('terminal', VILLAGE, 'village-t')}"}
        resp = await client.post("/api/rooms", json={}, headers=t)
        assert resp.status == 403
        room = await (await client.post("/api/rooms", json={}, headers=h)).json()
        resp = await client.post(
            f"/api/rooms/{room['id']}/publish",
            data="v=0",
            headers={**h, "Content-Type": "application/sdp"},
        )
        assert resp.status == 409  # join first
        await client.post(f"/api/rooms/{room['id']}/join", headers=h)
        resp = await client.post(
            f"/api/rooms/{room['id']}/publish",
            data="v=0",
            headers={**h, "Content-Type": "application/sdp"},
        )
        assert resp.status == 400 and (await resp.json())["error"]["message"]
        resp = await client.post(
            f"/api/rooms/{room['id']}/seats/nobody/whep",
            data="v=0",
            headers={**h, "Content-Type": "application/sdp"},
        )
        assert resp.status == 404
        resp = await client.get(f"/api/rooms/{room['id']}", headers=t)
        assert resp.status == 404  # not invited, not above


async def test_rollcall_answer_with_video_files_a_snapshot(token: Callable[..., str]) -> None:
    async with TestClient(TestServer(build_app(config()), host="127.0.0.1")) as client:
        host = Person(client, token("dispatcher", COUNTY, "county-d"), "county-d")
        village = Person(client, token("terminal", VILLAGE, "village-t"), "village-t")
        async with ClientSession() as http:
            ws = await http.ws_connect(
                client.make_url(f"/ws?token={village.headers['Authorization'][7:]}")
            )
            rc = await host.call(
                "POST", "/api/rollcalls", json={"centres": [VILLAGE], "timeout": 30}
            )
            await village.call("POST", f"/api/rollcalls/{rc['id']}/answer")
            await village.call("POST", f"/api/rooms/{rc['room']}/join")
            await village.publish(rc["room"])
            url = f"/api/rollcalls/{rc['id']}/centres/{VILLAGE}/snapshot.jpg"

            async def snapshot_ready() -> bool:
                resp = await client.get(url, headers=host.headers)
                return resp.status == 200 and (await resp.read())[:2] == b"\xff\xd8"

            async with asyncio.timeout(15):
                while not await snapshot_ready():
                    await asyncio.sleep(0.2)
            await ws.close()
        await village.close()
