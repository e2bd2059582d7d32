"""Devices register to the hub over real SIP sockets on 127.0.0.1 (UDP and TCP): digest
challenge, wrong passwords, unknown devices, keepalives, unregister, silence → offline, and
garbage that must not stop the server."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config import parse_config
from hub.app import build_app
from hub.gb28181.app import SERVER
from hub.gb28181.digest import Challenge, authorize
from hub.gb28181.manscdp import build_keepalive
from hub.gb28181.service import REGISTRAR
from hub.gb28181.sip import SipRequest, SipResponse, SipStreamParser, parse_message
from tests.conftest import TOWN, topology

SERVER_ID, DOMAIN = "41092200002000000001", "4109220000"
CAMERA = "41092210001320000001"  # a camera (type 132) of the first township
NVR = "41092210011180000001"  # an NVR (118): registers with auth none
STRANGER = "41092300001320000009"
PASSWORD = "camera-pass-123"

Client = TestClient[Any, Any]


def hub_config(**gb: Any) -> dict[str, Any]:
    data = topology()
    data["gb28181"] = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": 0,
        "server_id": SERVER_ID,
        "domain": DOMAIN,
        "password": PASSWORD,
        "keepalive_interval": 0.2,
        "missed_keepalives": 2,
        "devices": [
            {"id": "4109221000132", "centre": TOWN},
            {"id": NVR, "auth": "none"},
        ],
        **gb,
    }
    return data


@pytest.fixture
async def hub() -> AsyncIterator[Client]:
    data = hub_config()
    async with TestClient(TestServer(build_app(parse_config(data)), host="127.0.0.1")) as c:
        yield c


class Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answers: asyncio.Queue[bytes] = asyncio.Queue(maxsize=64)  # a test reads each
        self.requests: list[bytes] = []  # the hub's own (its Catalog query after REGISTER)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not data.startswith(b"SIP/2.0 "):
            if len(self.requests) < 64:
                self.requests.append(data)
        elif not self.answers.full():  # past 64 unread answers the test is broken anyway
            self.answers.put_nowait(data)


class Device:
    """A GB/T 28181 device as a real one talks: its own Via, tags, Call-ID and CSeq."""

    def __init__(self, device_id: str, port: int, password: str = PASSWORD) -> None:
        self.id, self.port, self.password = device_id, port, password
        self.call_id = f"{secrets.token_hex(6)}@127.0.0.1"
        self.cseq = 0
        self.tag = secrets.token_hex(4)
        self.transport: asyncio.DatagramTransport | None = None
        self.proto = Udp()

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: self.proto, remote_addr=("127.0.0.1", self.port)
        )

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def request(
        self, method: str, *, extra: str = "", body: bytes = b"", expires: int = 3600
    ) -> bytes:
        self.cseq += 1
        uri = f"sip:{SERVER_ID}@{DOMAIN}"
        head = (
            f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bK{secrets.token_hex(8)}\r\n"
            f"From: <sip:{self.id}@{DOMAIN}>;tag={self.tag}\r\n"
            f"To: <sip:{self.id}@{DOMAIN}>\r\n"
            f"Call-ID: {self.call_id}\r\n"
            f"CSeq: {self.cseq} {method}\r\n"
            f"Contact: <sip:{self.id}@10.0.0.5:5060>\r\n"  # a private address: never dialled
            "Max-Forwards: 70\r\n"
            f"{'Expires: ' + str(expires) + chr(13) + chr(10) if method == 'REGISTER' else ''}"
            f"{extra}"
            f"{'Content-Type: Application/MANSCDP+xml' + chr(13) + chr(10) if body else ''}"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def send(self, data: bytes) -> SipResponse:
        assert self.transport is not None
        self.transport.sendto(data)
        raw = await asyncio.wait_for(self.proto.answers.get(), 5)
        response = parse_message(raw)
        assert isinstance(response, SipResponse)
        return response

    async def register(self, expires: int = 3600) -> SipResponse:
        first = await self.send(self.request("REGISTER", expires=expires))
        if first.status != 401:
            return first
        challenge = Challenge.parse(first.headers.get("WWW-Authenticate") or "")
        credentials = authorize(
            challenge,
            method="REGISTER",
            uri=f"sip:{SERVER_ID}@{DOMAIN}",
            username=self.id,
            password=self.password,
        )
        auth = f"Authorization: {credentials.header_value()}\r\n"
        return await self.send(self.request("REGISTER", extra=auth, expires=expires))

    async def keepalive(self, sn: int) -> SipResponse:
        return await self.send(self.request("MESSAGE", body=build_keepalive(self.id, sn)))


async def device(hub: Client, device_id: str, password: str = PASSWORD) -> Device:
    d = Device(device_id, hub.app[SERVER].udp_port, password)
    await d.open()
    return d


async def listed(hub: Client, auth: Callable[..., dict[str, str]]) -> dict[str, Any]:
    resp = await hub.get("/api/gb28181/devices", headers=auth())
    assert resp.status == 200
    return {d["id"]: d for d in await resp.json()}


async def test_a_camera_registers_with_digest_and_keeps_alive(
    hub: Client, auth: Callable[..., dict[str, str]]
) -> None:
    cam = await device(hub, CAMERA)
    try:
        first = await cam.send(cam.request("REGISTER"))
        assert first.status == 401
        assert 'realm="4109220000"' in (first.headers.get("WWW-Authenticate") or "")
        ok = await cam.register()
        assert ok.status == 200 and ok.headers.get("Expires") == "3600"
        assert len(ok.headers.get("Date") or "") == 23  # 2026-12-03T10:00:00.000
        seen = (await listed(hub, auth))[CAMERA]
        assert seen["online"] and seen["centre"] == TOWN and seen["transport"] == "udp"
        assert (await cam.keepalive(1)).status == 200
        assert (await listed(hub, auth))[CAMERA]["keepalives"] == 1
        # a township operator sees its camera, another township's does not
        town = await hub.get("/api/gb28181/devices", headers=auth("operator", TOWN, "t"))
        assert [d["id"] for d in await town.json()] == [CAMERA]
        other = await hub.get("/api/gb28181/devices", headers=auth("operator", "410922101", "o"))
        assert await other.json() == []
        # unregister
        assert (await cam.register(expires=0)).status == 200
        assert not (await listed(hub, auth))[CAMERA]["online"]
    finally:
        cam.close()


async def test_wrong_passwords_and_strangers_are_refused(
    hub: Client, auth: Callable[..., dict[str, str]]
) -> None:
    wrong = await device(hub, CAMERA, password="not-it")
    stranger = await device(hub, STRANGER)
    try:
        assert (await wrong.register()).status == 403
        assert (await stranger.send(stranger.request("REGISTER"))).status == 403
        # a keepalive from a device that never registered
        assert (await stranger.keepalive(1)).status == 403
        assert CAMERA not in await listed(hub, auth)  # never registered
        assert hub.app[REGISTRAR].refused >= 2
    finally:
        wrong.close()
        stranger.close()


async def test_a_device_without_digest_registers_when_the_config_says_so(
    hub: Client, auth: Callable[..., dict[str, str]]
) -> None:
    nvr = await device(hub, NVR)
    try:
        assert (await nvr.send(nvr.request("REGISTER"))).status == 200  # no challenge
        assert (await listed(hub, auth))[NVR]["centre"] == TOWN  # from its ID's prefix
    finally:
        nvr.close()


async def test_a_silent_device_goes_offline_with_an_event(hub: Client) -> None:
    cam = await device(hub, CAMERA)
    try:
        assert (await cam.register()).status == 200
        registrar = hub.app[REGISTRAR]
        assert registrar.devices[CAMERA].online
        async with asyncio.timeout(10):  # 2 intervals of 0.2 s without a keepalive
            while registrar.devices[CAMERA].online:
                await asyncio.sleep(0.1)
        assert (await cam.register()).status == 200  # back
        assert registrar.devices[CAMERA].online
    finally:
        cam.close()


async def test_garbage_does_not_stop_the_server(hub: Client) -> None:
    cam = await device(hub, CAMERA)
    try:
        assert cam.transport is not None
        for junk in (b"", b"\x00" * 100, b"REGISTER sip:x SIP/2.0\r\n\r\n", b"INVITE" * 5000):
            cam.transport.sendto(junk)
        # a request with a broken From still gets an answer, not a crash
        bad = cam.request("REGISTER").replace(b"From: <sip:", b"From: <<<")
        cam.transport.sendto(bad)
        assert (await cam.register()).status == 200
        assert hub.app[SERVER].malformed >= 3
    finally:
        cam.close()


async def test_over_tcp_split_reads_and_the_same_connection(
    hub: Client, auth: Callable[..., dict[str, str]]
) -> None:
    cam = Device(NVR, hub.app[SERVER].tcp_port)
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.app[SERVER].tcp_port)
    try:
        data = cam.request("REGISTER").replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
        writer.write(data[:50])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(data[50:] + cam.request("OPTIONS"))  # the rest, and a second message
        await writer.drain()
        parser = SipStreamParser()
        answers: list[Any] = []
        async with asyncio.timeout(5):
            # two answers, and the hub's queries (Catalog, DeviceInfo) on the same connection
            while len(answers) < 4:
                answers += parser.feed(await reader.read(4096))
        assert [a.status for a in answers if isinstance(a, SipResponse)] == [200, 200]
        queries = [a for a in answers if isinstance(a, SipRequest)]
        assert {q.method for q in queries} == {"MESSAGE"} and len(queries) == 2
        assert all(q.vias[0].transport == "TCP" for q in queries)
        assert (await listed(hub, auth))[NVR]["transport"] == "tcp"
    finally:
        writer.close()


async def test_no_password_configured_means_no_digest_device_gets_in(
    hub: Client,
) -> None:
    registrar = hub.app[REGISTRAR]
    old = registrar.config
    registrar.config = old.model_copy(update={"password": ""})
    cam = await device(hub, CAMERA, password="")
    try:
        assert (await cam.send(cam.request("REGISTER"))).status == 403
    finally:
        registrar.config = old
        cam.close()


async def test_a_register_flood_from_one_address_is_dropped_and_counted(
    auth: Callable[..., dict[str, str]],
) -> None:
    data = hub_config(register_rate=0.5, register_burst=4)
    async with TestClient(TestServer(build_app(parse_config(data)), host="127.0.0.1")) as hub:
        port = hub.app[SERVER].udp_port
        looping = Device(CAMERA, port, password="not-it")  # 403, registers again, forever
        await looping.open()
        try:
            for _ in range(40):
                assert looping.transport is not None
                looping.transport.sendto(looping.request("REGISTER"))
            await asyncio.sleep(0.3)
            answers = looping.proto.answers.qsize()
            assert answers == 4  # the burst, then nothing: no digest, no answer
            assert hub.app[SERVER].registers.limited == 36
            metrics = await (await hub.get("/metrics", headers=auth())).text()
            assert "zzhub_gb28181_register_limited_total 36.0" in metrics
        finally:
            looping.close()
        # another address is not held back by it
        other = Device(NVR, port)
        loop = asyncio.get_running_loop()
        other.transport, _ = await loop.create_datagram_endpoint(
            lambda: other.proto, local_addr=("127.0.0.2", 0), remote_addr=("127.0.0.1", port)
        )
        try:
            assert (await other.register()).status == 200
        finally:
            other.close()
