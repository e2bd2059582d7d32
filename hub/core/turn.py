"""TURN credentials by the shared-secret scheme (the "TURN REST API", coturn `use-auth-secret`).

The hub and coturn share one secret (coturn's `static-auth-secret`). For each client the hub
makes a username `<expiry unix time>:<user>` and the password
base64(HMAC-SHA1(secret, username)); coturn recomputes the HMAC and refuses the username once
its expiry has passed. No per-user state lives on the TURN server and no long-term password
reaches a browser.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence

from config.schema import IceServer, TurnConfig, WebRTCConfig
from signaling.ice import client_ice_servers


def turn_password(secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def turn_credentials(secret: str, user: str, ttl: int, now: float | None = None) -> tuple[str, str]:
    """(username, credential) valid for `ttl` seconds from `now`."""
    expiry = int(now if now is not None else time.time()) + ttl
    username = f"{expiry}:{user}"
    return username, turn_password(secret, username)


def turn_server(turn: TurnConfig, user: str, now: float | None = None) -> IceServer:
    username, credential = turn_credentials(turn.secret, user, turn.ttl, now)
    return IceServer(urls=list(turn.urls), username=username, credential=credential)


def ice_servers_for(webrtc: WebRTCConfig, user: str) -> list[IceServer]:
    """The configured ICE servers plus, with `webrtc.turn`, a fresh TURN entry for `user`."""
    servers = list(webrtc.ice_servers)
    if webrtc.turn is not None:
        servers.append(turn_server(webrtc.turn, user))
    return servers


def client_ice_servers_for(webrtc: WebRTCConfig, user: str) -> list[dict[str, object]]:
    """RTCConfiguration `iceServers` for a browser (GET /api/me, WHEP Link headers)."""
    return client_ice_servers(ice_servers_for(webrtc, user))


def link_header(servers: Sequence[dict[str, object]]) -> str:
    """A WHEP `Link` header value (RFC 9725 §4.4) listing the ICE servers, or ""."""
    links = []
    for server in servers:
        urls = server["urls"]
        assert isinstance(urls, list)
        for url in urls:
            link = f'<{url}>; rel="ice-server"'
            if "username" in server:
                credential = server.get("credential", "")
                link += f'; username="{server["username"]}"; credential="{credential}"'
                link += '; credential-type="password"'
            links.append(link)
    return ", ".join(links)
