"""ICE settings: which local addresses the hub gathers host candidates on, and ICE servers.

aioice chooses host addresses by itself and always leaves out 127.0.0.1 (see
../shared/MEDIA-NOTES.md). It has no per-connection setting, so the address list is a
process-wide choice made once at startup: `use_host_addresses()` replaces aioice's lookup.
This is the one place zzhub changes a third-party module's global; the hub owns the choice.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

from config.schema import IceServer

_original_lookup = aioice.ice.get_host_addresses


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_addresses(configured: Sequence[str], listen_host: str) -> list[str] | None:
    """The host addresses to use: the configured list, loopback when the hub listens on
    loopback, or None for aioice's own choice (every interface)."""
    if configured:
        return list(configured)
    if is_loopback(listen_host):
        return ["127.0.0.1"]
    return None


def use_host_addresses(addresses: Sequence[str] | None) -> None:
    """Gather ICE host candidates on exactly these addresses (None: every interface)."""
    if addresses is None:
        aioice.ice.get_host_addresses = _original_lookup
        return
    fixed = list(addresses)

    def lookup(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in fixed if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = lookup


def rtc_configuration(servers: Sequence[IceServer]) -> RTCConfiguration:
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=s.urls, username=s.username, credential=s.credential) for s in servers
        ]
    )


def client_ice_servers(servers: Sequence[IceServer]) -> list[dict[str, object]]:
    """ICE servers in the browser's RTCConfiguration form, for the console and WHEP Link."""
    out: list[dict[str, object]] = []
    for s in servers:
        entry: dict[str, object] = {"urls": s.urls}
        if s.username:
            entry["username"] = s.username
        if s.credential:
            entry["credential"] = s.credential
        out.append(entry)
    return out
