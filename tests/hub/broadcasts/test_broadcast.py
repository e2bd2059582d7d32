"""Training broadcasts over HTTP with real aiortc peers: a presenter and several viewers all
decode, a late viewer starts within a second, a raised hand goes on stage and everyone decodes
it, viewers may not publish, attendance lists who joined and which centres never did."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, TestServer
from aiortc import RTCSessionDescription

from config import parse_config
from hub.app import build_app
from hub.broadcasts.service import BROADCASTS
from hub.core.auth import TOKENS, Principal
from hub.rooms.service import ROOM_MEDIA
from tests.conftest import COUNTY, TOWN, VILLAGE, topology
from tests.fixtures import people
from tests.signaling.test_publish_peers import Publisher, Subscriber

Client = TestClient[Any, Any]


def config() -> Any:
    data = topology()
    data["users"] += [
        {"name": "county-d", "role": "dispatcher", "centre": COUNTY, "password": "x"},
    ]
    return parse_config(data)


class Member(people.Person):
    """One person in a broadcast: joins, publishes (WHIP), watches (WHEP)."""

    def __init__(self, client: Client, token: str, user: str = "") -> None:
        super().__init__(client, token, user)
        self.publisher: Publisher | None = None
        self.watching: dict[str, Subscriber] = {}

    async def publish(self, bid: str) -> None:
        self.publisher = Publisher()
        answer, _ = await self.sdp(f"/api/broadcasts/{bid}/publish", await self.publisher.offer())
        await self.publisher.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def watch(self, bid: str, user: str | None = None) -> Subscriber:
        sub = Subscriber()
        path = f"/api/broadcasts/{bid}/seats/{user}/whep" if user else f"/api/broadcasts/{bid}/whep"
        answer, _ = await self.sdp(path, await sub.offer())
        await sub.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        self.watching[user or "presenter"] = sub
        return sub

    async def close(self) -> None:
        for sub in self.watching.values():
            await sub.close()
        if self.publisher is not None:
            await self.publisher.close()


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_app(config()), host="127.0.0.1")) as c:
        yield c


async def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


async def test_presenter_viewers_late_viewer_and_stage(
    client: Client, token: Callable[..., str]
) -> None:
    presenter = Member(client, token("dispatcher", COUNTY, "county-d"), "county-d")
    viewers = [
        Member(client, token("terminal", TOWN, "town-t"), "town-t"),
        Member(client, token("terminal", VILLAGE, "village-t"), "village-t"),
        Member(client, token("operator", TOWN, "town-op"), "town-op"),
    ]
    late = Member(client, token("terminal", VILLAGE, "village-t2"), "village-t2")
    everyone = [presenter, *viewers, late]
    async with ClientSession() as http:
        ws = await http.ws_connect(client.make_url(f"/ws?token={token('terminal', VILLAGE, 'v')}"))
        await ws.receive_json()  # hello
        b = await presenter.req(
            "POST", "/api/broadcasts", 201, json={"title": "安全培训", "subtree": TOWN}
        )
        bid = b["id"]
        assert b["targets"] == [TOWN, VILLAGE]
        started = await ws.receive_json(timeout=5)
        assert started["topic"] == "broadcast.started" and started["data"]["id"] == bid
        try:
            await presenter.req("POST", f"/api/broadcasts/{bid}/join")
            await presenter.publish(bid)
            service = client.app[BROADCASTS]
            await wait_for(
                lambda: bool(service.get(bid, _p(client, presenter)).to_json()["publications"])
            )
            for v in viewers:
                await v.req("POST", f"/api/broadcasts/{bid}/join")
                await v.watch(bid)
            await asyncio.gather(*(v.watching["presenter"].wait(video=5, audio=5) for v in viewers))
            # a viewer may not publish, through this API or the room's
            intruder = Publisher(audio=False)
            try:
                offer = await intruder.offer()
                await viewers[0].sdp(f"/api/broadcasts/{bid}/publish", offer, status=403)
            finally:
                await intruder.close()

            # one encoded stream forwarded: one publication, N subscriptions, no encoder
            media = client.app[ROOM_MEDIA]
            pub_id = service.get(bid, _p(client, presenter)).to_json()["publications"]["county-d"]
            assert media.publications.subscribers(pub_id) == len(viewers)
            stats = await presenter.req("GET", f"/api/broadcasts/{bid}/stats")
            assert sorted(x["user"] for x in stats["subscriptions"]) == sorted(
                v.user for v in viewers
            )
            assert all(x["video_sent"] > 0 for x in stats["subscriptions"])
            await viewers[0].req("GET", f"/api/broadcasts/{bid}/stats", 403)

            # a late viewer starts at once (GOP cache or PLI)
            await late.req("POST", f"/api/broadcasts/{bid}/join")
            t0 = time.monotonic()
            sub = await late.watch(bid)
            await asyncio.wait_for(sub.first_frame, 5)
            assert time.monotonic() - t0 < 1.0, f"late viewer waited {time.monotonic() - t0:.2f}s"

            # raise a hand, come on stage, everyone decodes the new speaker
            speaker = viewers[1]
            await speaker.req("POST", f"/api/broadcasts/{bid}/hand", json={"up": True})
            state = await presenter.req("GET", f"/api/broadcasts/{bid}")
            assert state["hands"] == ["village-t"]
            await viewers[0].req(
                "POST", f"/api/broadcasts/{bid}/stage", 403, json={"user": "village-t"}
            )
            await presenter.req(
                "POST", f"/api/broadcasts/{bid}/stage", json={"user": "village-t", "on": True}
            )
            await speaker.publish(bid)
            await wait_for(
                lambda: (
                    "village-t" in service.get(bid, _p(client, presenter)).to_json()["publications"]
                )
            )
            others = [m for m in everyone if m is not speaker]
            for m in others:
                await m.watch(bid, "village-t")
            await asyncio.gather(*(m.watching["village-t"].wait(video=5) for m in others))

            # off stage: the publication ends for everyone
            await presenter.req(
                "POST", f"/api/broadcasts/{bid}/stage", json={"user": "village-t", "on": False}
            )
            await asyncio.gather(*(m.watching["village-t"].wait_ended({"video"}) for m in others))
            assert service.get(bid, _p(client, presenter)).room.seats["village-t"].present

            await presenter.req("POST", f"/api/broadcasts/{bid}/end")
            await wait_for(lambda: not media.publications.publications())
            async with asyncio.timeout(5):
                while (await ws.receive_json())["topic"] != "broadcast.ended":
                    pass
        finally:
            await ws.close()
            for m in everyone:
                await m.close()


def _p(client: Client, member: Member) -> Principal:
    principal: Principal = client.app[TOKENS].verify(member.headers["Authorization"][7:])
    return principal


async def test_room_endpoints_refuse_broadcast_rooms(token: Callable[..., str]) -> None:
    """Joining or publishing a broadcast through the generic room endpoints would skip
    attendance and the stage rule: they answer 409 and name the right endpoints."""
    async with TestClient(
        TestServer(build_app(parse_config(topology())), host="127.0.0.1")
    ) as client:
        host = {"Authorization": f"Bearer {token('dispatcher', COUNTY, 'county-d')}"}
        resp = await client.post(
            "/api/broadcasts", json={"title": "培训", "centres": [VILLAGE]}, headers=host
        )
        assert resp.status == 201, await resp.text()
        room = (await resp.json())["room"]
        viewer = {"Authorization": f"Bearer {token('terminal', VILLAGE, 'village-t')}"}
        resp = await client.post(f"/api/rooms/{room}/join", headers=viewer)
        assert resp.status == 409
        assert "/api/broadcasts" in (await resp.json())["error"]["message"]
        resp = await client.post(
            f"/api/rooms/{room}/publish",
            data="v=0",
            headers={**viewer, "Content-Type": "application/sdp"},
        )
        assert resp.status == 409
