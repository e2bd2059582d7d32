"""Janus 1.1 (Debian) as a baseline: its streaming plugin with an RTSP mountpoint, and a
client for its HTTP API.

Janus refuses loopback interfaces for ICE, so it gathers on a veth pair carrying 127.0.0.2
(`ice_enforce_list`), created only inside a network namespace of our own (one with nothing
but `lo`, as `make bench` / scripts/loopback-only.sh gives): no packet leaves 127.0.0.0/8.
Its HTTP API listens on 127.0.0.1. Janus's ICE (libnice) fails every pair between
127.0.0.2 and a peer on 127.0.0.1, so peers use 127.0.0.2 too (Chromium gathers on every
interface and finds it by itself; aiortc viewers are told to use it).
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import Proc, free_port, spawn

VETH, VETH_PEER, VETH_ADDRESS = "zzjanus0", "zzjanus1", "127.0.0.2"
LIB = Path("/usr/lib/x86_64-linux-gnu/janus")


class JanusUnavailable(RuntimeError):
    pass


def _links() -> list[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]


def ensure_veth() -> None:
    """The veth Janus gathers on, made only in a namespace that holds nothing but lo."""
    if shutil.which("janus") is None:
        raise JanusUnavailable("janus is not installed (apt-get install -y janus)")
    links = _links()
    if VETH in links:
        return
    if links != ["lo"]:
        raise JanusUnavailable(
            "not in a private network namespace with only lo; run under "
            "scripts/loopback-only.sh (make bench) to get the Janus baseline"
        )
    for cmd in (
        f"ip link add {VETH} type veth peer name {VETH_PEER}",
        f"ip addr add {VETH_ADDRESS}/32 dev {VETH}",
        f"ip link set {VETH} up",
        f"ip link set {VETH_PEER} up",
    ):
        subprocess.run(cmd.split(), check=True)


def _write_config(wd: Path, http_port: int, rtsp_url: str) -> Path:
    conf = wd / "janus-conf"
    for sub in ("plugins", "transports", "events", "loggers"):
        (conf / sub).mkdir(parents=True, exist_ok=True)
    (conf / "plugins" / "libjanus_streaming.so").symlink_to(LIB / "plugins/libjanus_streaming.so")
    (conf / "transports" / "libjanus_http.so").symlink_to(LIB / "transports/libjanus_http.so")
    (conf / "janus.jcfg").write_text(f"""
general: {{
  configs_folder = "{conf}"
  plugins_folder = "{conf}/plugins"
  transports_folder = "{conf}/transports"
  events_folder = "{conf}/events"
  loggers_folder = "{conf}/loggers"
  debug_level = 3
  session_timeout = 0
}}
nat: {{
  ice_enforce_list = "{VETH}"
  ignore_mdns = true
}}
media: {{}}
""")
    (conf / "janus.transport.http.jcfg").write_text(f"""
general: {{ json = "plain" base_path = "/janus" http = true port = {http_port}
            ip = "127.0.0.1" https = false }}
admin: {{ admin_http = false admin_https = false }}
cors: {{}}
""")
    (conf / "janus.plugin.streaming.jcfg").write_text(f"""
general: {{}}
bench: {{
  type = "rtsp"
  id = 1
  description = "bench"
  audio = false
  video = true
  url = "{rtsp_url}"
  rtsp_reconnect_delay = 5
  rtsp_timeout = 10
  rtsp_conn_timeout = 5
}}
""")
    return conf


@dataclass
class Janus:
    proc: Proc
    api: str  # http://127.0.0.1:PORT/janus
    mountpoint: int = 1

    async def stop(self) -> None:
        await self.proc.stop()


async def start_janus(wd: Path, rtsp_url: str) -> Janus:
    ensure_veth()
    port = free_port()
    conf = _write_config(wd, port, rtsp_url)
    proc = await spawn(
        "janus",
        [
            "janus",
            "-o",
            "-N",
            "-L",
            str(wd / "janus-out.log"),
            "-F",
            str(conf),
            "-C",
            str(conf / "janus.jcfg"),
        ],
        wd,
    )
    api = f"http://127.0.0.1:{port}/janus"
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            try:
                async with http.get(api + "/info") as resp:
                    if resp.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        else:
            await proc.stop()
            raise JanusUnavailable("Janus HTTP API did not come up; see janus.log")
    await asyncio.sleep(1.5)  # the RTSP mountpoint connects to the camera
    return Janus(proc, api)


@dataclass
class JanusSession:
    session: int
    handle: int
    offer: str


class JanusClient:
    """The streaming plugin's watch/start exchange over Janus's HTTP API."""

    def __init__(self, http: aiohttp.ClientSession, api: str) -> None:
        self.http = http
        self.api = api
        self.sessions: list[int] = []

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {**body, "transaction": secrets.token_hex(6)}
        async with self.http.post(self.api + path, json=body) as resp:
            reply: dict[str, Any] = await resp.json(content_type=None)
        if reply.get("janus") == "error":
            raise RuntimeError(f"Janus: {reply['error']}")
        return reply

    async def watch(self, mountpoint: int) -> JanusSession:
        session = (await self._post("", {"janus": "create"}))["data"]["id"]
        self.sessions.append(session)
        attach = {"janus": "attach", "plugin": "janus.plugin.streaming"}
        handle = (await self._post(f"/{session}", attach))["data"]["id"]
        watch = {"janus": "message", "body": {"request": "watch", "id": mountpoint}}
        await self._post(f"/{session}/{handle}", watch)
        async with asyncio.timeout(10):
            while True:
                async with self.http.get(f"{self.api}/{session}?maxev=1") as resp:
                    event = await resp.json(content_type=None)
                for ev in event if isinstance(event, list) else [event]:
                    if "jsep" in ev:
                        return JanusSession(session, handle, ev["jsep"]["sdp"])

    async def start(self, session: JanusSession, answer: str) -> None:
        body = {
            "janus": "message",
            "body": {"request": "start"},
            "jsep": {"type": "answer", "sdp": answer},
        }
        await self._post(f"/{session.session}/{session.handle}", body)
        # the answer carries every candidate; tell Janus no more will trickle in
        trickle = {"janus": "trickle", "candidate": {"completed": True}}
        await self._post(f"/{session.session}/{session.handle}", trickle)

    async def close(self) -> None:
        for session in self.sessions:
            try:
                await self._post(f"/{session}", {"janus": "destroy"})
            except (aiohttp.ClientError, RuntimeError):
                pass
        self.sessions.clear()
