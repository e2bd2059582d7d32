"""Cameras of other hub nodes, served on this one through one hub-to-hub relay leg each.

A camera another node owns (`zzhub:owner:camera`; its name and centre in `zzhub:camera:meta`,
see hub/cluster/service.py) is listed here (`GET /api/cameras`, with `node` and `available`) and
viewed here like a local one, with no config on this node: the first viewer, snapshot or WHEP
session creates a local Stream whose source, `RemoteSource`, looks the owner up on every
connect and pulls `hubrelay://` from it (streams/hubrelay.py) with a short-lived admin token
this node signs as `hub:<its node id>` (the nodes of a cluster share `auth.secret`). Every
local viewer shares that Stream, so the owner serves one consumer per pulling node; after the
last viewer leaves the Stream lingers, then closes its leg, like any camera.

When the owning node is announced down, the legs pulling from it are cut at once (viewers see
the camera go offline and keep their peer connection); the Stream retries with backoff (at
most `MAX_RETRY` seconds apart while someone watches) and resumes once the owner is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from aiohttp import web

from config.schema import CameraConfig, HubConfig, Role
from hub.cameras.service import Camera, CameraRegistry
from hub.cluster.service import Cluster, ClusterState, NodeInfo
from hub.core.auth import TokenIssuer
from hub.core.centres import within
from streams.hubrelay import HubRelaySource
from streams.media import PacketSink, SourceError
from streams.registry import SourceOptions
from streams.stream import Stream, StreamState

log = logging.getLogger(__name__)

MAX_RETRY = 5.0  # seconds between attempts to reach a remote camera's owner, at most
LEG_TOKEN_TTL = 300  # the token only opens the leg; the leg then lives on


@dataclass(frozen=True, slots=True)
class RemoteEntry:
    """A camera of another node, as that node described it when it claimed it."""

    id: str
    name: str
    centre: str
    node: str
    record: str = "off"
    analyse: bool = False


@dataclass(eq=False)
class RemoteCamera(Camera):
    entry: RemoteEntry = field(default_factory=lambda: RemoteEntry("", "", "", ""))
    registry: RemoteCameras | None = None

    @property
    def node(self) -> str:
        return self.entry.node

    @property
    def available(self) -> bool:
        return self.registry is not None and self.registry.owner_of(self.id) is not None

    def status(self) -> str:
        if not self.available and self.stream.state is not StreamState.ONLINE:
            return "offline"
        return super().status()

    def to_json(self) -> dict[str, object]:
        return {
            **super().to_json(),
            "name": self.entry.name,
            "centre": self.entry.centre,
            "record": self.entry.record,
            "analyse": self.entry.analyse,
            "url": f"hubrelay://{self.node}/{self.id}",
            "has_substream": False,  # the leg carries the main stream only
            "node": self.node,
            "available": self.available,
            "remote": True,
        }


class RemoteCameras:
    """The cluster's camera map as this node last read it, and the Streams of the remote
    cameras viewed here. Lookups are synchronous (request handlers, the API); the map is
    re-read each heartbeat when its revision changed."""

    def __init__(
        self, config: HubConfig, cluster: Cluster, local: CameraRegistry, tokens: TokenIssuer
    ) -> None:
        self.config = config
        self.cluster = cluster
        self.local = local
        self.tokens = tokens
        self._entries: dict[str, RemoteEntry] = {}
        self._owners: dict[str, str] = {}
        self._rev: str | None = None
        self._session = -1  # cluster.reconnects when the map was read (a new Redis restarts rev)
        self._cameras: dict[str, RemoteCamera] = {}
        self._down: dict[str, asyncio.Event] = {}  # node id → set when it is announced down
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.legs_cut = 0

    # -- the map ------------------------------------------------------------------------------
    async def refresh(self) -> None:
        async with self._lock:
            if self._session != self.cluster.reconnects:
                self._rev = None
            got = await self.cluster.camera_map(self._rev)
            if got is None:
                return
            rev, owners, meta = got
            entries: dict[str, RemoteEntry] = {}
            for cam_id, raw in meta.items():
                entry = _entry(cam_id, raw)
                if entry is not None and self.local.get(cam_id) is None:
                    entries[cam_id] = entry
            self._entries, self._owners, self._rev = entries, owners, rev
            self._session = self.cluster.reconnects
            for cam in self._cameras.values():
                if cam.id in entries:
                    cam.entry = entries[cam.id]
                    cam.centre = cam.entry.centre

    def owner_of(self, camera_id: str) -> str | None:
        """The live node that owns a remote camera, as last read; None when it is down."""
        node = self._owners.get(camera_id)
        if node is None or node == self.cluster.node.id or not self.cluster.live(node):
            return None
        return node

    def get(self, camera_id: str) -> RemoteCamera | None:
        """The remote camera (its Stream made on first use); None when no node has it."""
        cam = self._cameras.get(camera_id)
        entry = self._entries.get(camera_id)
        if entry is None or self.local.get(camera_id) is not None:
            return None
        if cam is None:
            s = self.config.streams
            cam_config = CameraConfig(id=camera_id, name=entry.name, url=f"cluster://{camera_id}")
            stream = Stream(
                camera_id,
                cam_config.url,
                SourceOptions(name=camera_id, timeout=s.connect_timeout),
                linger=s.linger,
                instant_start=s.instant_start,
                backoff=[(min(delay, MAX_RETRY), times) for delay, times in s.backoff],
                source_factory=lambda url, options: RemoteSource(camera_id, self, options),
            )
            cam = RemoteCamera(cam_config, entry.centre, stream, entry=entry, registry=self)
            self._cameras[camera_id] = cam
        return cam

    def visible_to(self, scope: str) -> list[dict[str, object]]:
        """API objects of the remote cameras in `scope` (no Stream made for a listing)."""
        out = []
        for entry in sorted(self._entries.values(), key=lambda e: (e.centre, e.id)):
            if not within(entry.centre, scope) or self.local.get(entry.id) is not None:
                continue
            cam = self._cameras.get(entry.id)
            if cam is not None:
                out.append(cam.to_json())
                continue
            available = self.owner_of(entry.id) is not None
            out.append(
                {
                    "id": entry.id,
                    "name": entry.name,
                    "centre": entry.centre,
                    "status": "idle" if available else "offline",
                    "codec": None,
                    "width": None,
                    "height": None,
                    "fps": None,
                    "viewers": 0,
                    "record": entry.record,
                    "analyse": entry.analyse,
                    "url": f"hubrelay://{entry.node}/{entry.id}",
                    "has_substream": False,
                    "last_error": None,
                    "node": entry.node,
                    "available": available,
                    "remote": True,
                }
            )
        return out

    def streams(self) -> list[RemoteCamera]:
        return list(self._cameras.values())

    # -- legs ---------------------------------------------------------------------------------
    async def leg_url(self, camera_id: str) -> tuple[str, str]:
        """(owning node id, hubrelay:// URL with a fresh token) for a remote camera."""
        node = await self.cluster.owner("camera", camera_id)
        if node is None or node.id == self.cluster.node.id:
            known = self._entries.get(camera_id)
            where = f"node {known.node}" if known else "no node"
            raise SourceError(f"camera {camera_id}: {where} is unavailable")
        entry = self._entries.get(camera_id)
        centre = entry.centre if entry else self.cluster.scope
        token = self.tokens.issue(
            f"hub:{self.cluster.node.id}", Role.ADMIN, centre, ttl=LEG_TOKEN_TTL
        )
        return node.id, _hubrelay_url(node, camera_id, token, self.config.redis.peer_ca)

    def down_signal(self, node_id: str) -> asyncio.Event:
        return self._down.setdefault(node_id, asyncio.Event())

    def _node_changed(self, node: NodeInfo, state: str) -> None:
        if state == "down":
            signal = self._down.pop(node.id, None)
            if signal is not None:
                signal.set()  # every leg pulling from it ends now

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        if self.cluster.state is ClusterState.OFF:
            return
        self._hooked = self.cluster.node_listeners.connect(self._node_changed)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="remote-cameras")

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # a malformed map must not end the refresher
                log.exception("reading the cluster's camera map failed")
            await asyncio.sleep(self.cluster.heartbeat)

    async def close(self) -> None:
        self._hooked.disconnect()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.gather(*(cam.stream.close() for cam in self._cameras.values()))


class RemoteSource:
    """The Source of a remote camera's Stream: one hub-to-hub leg to its current owner, cut
    when that node is announced down."""

    def __init__(self, camera_id: str, cameras: RemoteCameras, options: SourceOptions) -> None:
        self.camera_id = camera_id
        self.cameras = cameras
        self.options = options
        self.node = ""

    async def run(self, sink: PacketSink) -> None:
        self.node, url = await self.cameras.leg_url(self.camera_id)
        down = self.cameras.down_signal(self.node)
        leg = asyncio.ensure_future(HubRelaySource(url, self.options).run(sink))
        cut = asyncio.ensure_future(down.wait())
        try:
            done, _ = await asyncio.wait({leg, cut}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cut.cancel()
            leg.cancel()
            await asyncio.gather(leg, cut, return_exceptions=True)
        if leg in done:
            leg.result()  # the leg's own end: SourceError, or the owner ended the stream
            return
        self.cameras.legs_cut += 1
        raise SourceError(f"camera {self.camera_id}: node {self.node} is down")

    def stats(self) -> dict[str, object]:
        return {"node": self.node}


def _entry(camera_id: str, raw: str) -> RemoteEntry | None:
    try:
        meta = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get("centre"), str):
        return None
    return RemoteEntry(
        camera_id,
        str(meta.get("name") or camera_id),
        meta["centre"],
        str(meta.get("node", "")),
        str(meta.get("record", "off")),
        bool(meta.get("analyse", False)),
    )


def _hubrelay_url(node: NodeInfo, camera_id: str, token: str, ca: str) -> str:
    parts = urlsplit(node.url)
    if not parts.netloc:
        raise SourceError(f"node {node.id} advertises no usable URL ({node.url!r})")
    query = ""
    if parts.scheme == "https":
        query = "?tls=1" + (f"&ca={quote(ca, safe='')}" if ca else "")
    netloc = parts.netloc.rpartition("@")[2]
    return (
        f"hubrelay://{quote(node.id, safe='')}:{quote(token, safe='')}@{netloc}"
        f"/{quote(camera_id, safe='')}{query}"
    )


async def remote_cameras_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the cluster (it reads the map through it), before WHEP sessions (they hold
    remote Streams): torn down after every viewer is gone."""
    from hub.cameras.service import CAMERAS
    from hub.cluster.service import CLUSTER
    from hub.core.auth import TOKENS
    from hub.core.state import CONFIG

    remote = RemoteCameras(app[CONFIG], app[CLUSTER], app[CAMERAS], app[TOKENS])
    app[REMOTE_CAMERAS] = remote
    app[CAMERAS].remote = remote
    remote.start()
    yield
    app[CAMERAS].remote = None
    await remote.close()


REMOTE_CAMERAS = web.AppKey("remote_cameras", RemoteCameras)
