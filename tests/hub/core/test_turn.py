"""TURN credentials: coturn's shared-secret scheme, in /api/me and in WHEP Link headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config import ConfigError, parse_config
from config.schema import WebRTCConfig
from hub.app import build_app
from hub.core.turn import (
    client_ice_servers_for,
    link_header,
    turn_credentials,
    turn_password,
)
from tests.conftest import topology

SECRET = "coturn-shared-secret-0123"
# computed outside Python: printf '%s' '1700086400:dongguan-terminal' |
#   openssl dgst -sha1 -hmac 'coturn-shared-secret-0123' -binary | base64
VECTOR = ("1700086400:dongguan-terminal", "hAmaeEqLvsfEBPk5AJAXB9wa7wk=")
TURN = {"urls": ["turn:127.0.0.1:3478?transport=udp"], "secret": SECRET, "ttl": 600}


def test_password_matches_known_vector() -> None:
    assert turn_password(SECRET, VECTOR[0]) == VECTOR[1]


def test_credentials_are_expiry_colon_user() -> None:
    username, credential = turn_credentials(SECRET, "dongguan-terminal", 86400, now=1700000000)
    assert (username, credential) == VECTOR


def test_credentials_are_what_coturn_recomputes() -> None:
    # coturn: split the username at ':' for the expiry, HMAC-SHA1 the whole username
    username, credential = turn_credentials(SECRET, "op:with:colons", 60)
    expiry = int(username.split(":", 1)[0])
    assert time.time() < expiry <= time.time() + 61
    mac = hmac.new(SECRET.encode(), username.encode(), hashlib.sha1).digest()
    assert base64.b64decode(credential) == mac


def test_ice_servers_keep_static_entries_and_add_turn() -> None:
    webrtc = WebRTCConfig.model_validate(
        {"ice_servers": [{"urls": ["stun:127.0.0.1:3478"]}], "turn": TURN}
    )
    servers = client_ice_servers_for(webrtc, "alice")
    assert servers[0] == {"urls": ["stun:127.0.0.1:3478"]}
    assert servers[1]["urls"] == TURN["urls"]
    username = servers[1]["username"]
    assert isinstance(username, str) and username.endswith(":alice")
    assert servers[1]["credential"] == turn_password(SECRET, username)
    header = link_header(servers)
    assert header.startswith('<stun:127.0.0.1:3478>; rel="ice-server", <turn:127.0.0.1:3478')
    assert f'username="{username}"' in header and 'credential-type="password"' in header


def test_without_turn_nothing_is_added() -> None:
    assert client_ice_servers_for(WebRTCConfig(), "alice") == []
    assert link_header([]) == ""


def test_short_secret_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="secret"):
        parse_config(topology(webrtc={"turn": {**TURN, "secret": "short"}}))


def test_secret_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZZHUB_TURN_SECRET", SECRET)
    cfg = parse_config(topology(webrtc={"turn": {**TURN, "secret": "env:ZZHUB_TURN_SECRET"}}))
    assert cfg.webrtc.turn is not None and cfg.webrtc.turn.secret == SECRET


async def test_api_me_hands_out_turn_credentials(auth: Callable[..., dict[str, str]]) -> None:
    cfg = parse_config(topology(webrtc={"turn": TURN}))
    async with TestClient(TestServer(build_app(cfg), host="127.0.0.1")) as client:
        resp = await client.get("/api/me", headers=auth(user="town-op"))
        assert resp.status == 200
        body: dict[str, Any] = await resp.json()
    (server,) = body["ice_servers"]
    expiry, user = server["username"].split(":", 1)
    assert user == "town-op"
    assert time.time() + 590 < int(expiry) <= time.time() + 601
    assert server["credential"] == turn_password(SECRET, server["username"])


async def test_whep_link_header_carries_turn_credentials(
    auth: Callable[..., dict[str, str]],
) -> None:
    from aiortc import RTCPeerConnection

    cfg = parse_config(topology(webrtc={"turn": TURN, "session_timeout": 5}))
    pc = RTCPeerConnection()
    try:
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        async with TestClient(TestServer(build_app(cfg), host="127.0.0.1")) as client:
            resp = await client.post(
                "/api/cameras/county-cam/whep",
                data=pc.localDescription.sdp,
                headers={**auth(user="viewer"), "Content-Type": "application/sdp"},
            )
            assert resp.status == 201, await resp.text()
            link = resp.headers["Link"]
            await client.delete(resp.headers["Location"], headers=auth(user="viewer"))
    finally:
        await pc.close()
    assert link.startswith('<turn:127.0.0.1:3478?transport=udp>; rel="ice-server"')
    username = link.split('username="', 1)[1].split('"', 1)[0]
    assert username.endswith(":viewer")
    assert f'credential="{turn_password(SECRET, username)}"' in link
