"""Walls: server-side mosaics of 1/4/9/16 cameras, one composite stream per wall.

A wall is a `Stream` whose source is a `streams.mosaic.MosaicSource`: it runs only while
someone watches it (plus the stream linger), its tiles come from the cameras' decoded taps
(the substream when configured; one decode per camera whatever the number of walls and
analysers), and it is encoded once for all its viewers, who reach it over WHEP like a camera.
Walls come from the config (physical video walls, permanent) or from `POST /api/walls`
(kept in memory until deleted or the hub stops). In a hub cluster a wall made over the API may
show cameras of other nodes: each comes over the one relay leg its node's viewers share here.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field

from aiohttp import web

from config.schema import HubConfig, WallConfig
from hub.cameras.service import Camera, CameraRegistry, PictureSources
from hub.core.centres import within
from streams.decoded import DecodedFrame, TapLease
from streams.media import Source
from streams.mosaic import LAYOUTS, MosaicSource, MosaicSpec, TileFeed, label_of
from streams.registry import SourceOptions
from streams.stream import Stream

MAX_WALLS = 64


class WallError(ValueError):
    """A wall request that cannot be met; the message says why."""


class TapFeed:
    """A mosaic tile reading a camera's decoded tap."""

    def __init__(self, label: str, lease: TapLease) -> None:
        self.label = label
        self.lease = lease

    def frame(self) -> DecodedFrame | None:
        return self.lease.tap.latest

    def close(self) -> None:
        self.lease.release()


@dataclass(eq=False)
class Wall:
    id: str
    name: str
    centre: str
    owner: str
    spec: MosaicSpec
    cameras: list[str]  # one per tile; "" = empty tile
    stream: Stream
    configured: bool = False  # from the config file: cannot be deleted
    created: float = field(default_factory=time.time)
    source: MosaicSource | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "centre": self.centre,
            "owner": self.owner,
            "layout": self.spec.layout,
            "cameras": self.cameras,
            "width": self.spec.width,
            "height": self.spec.height,
            "fps": self.spec.fps,
            "configured": self.configured,
            "viewers": self.stream.viewers,
            "state": str(self.stream.state),
            "whep": f"/api/walls/{self.id}/whep",
            "stats": self.source.stats() if self.source else {},
        }


class Walls:
    def __init__(
        self,
        config: HubConfig,
        cameras: CameraRegistry,
        pictures: PictureSources,
        *,
        max_walls: int = MAX_WALLS,
    ) -> None:
        self.config = config
        self.cameras = cameras
        self.pictures = pictures
        self.max_walls = max_walls
        self._walls: dict[str, Wall] = {}
        for wc in config.walls:
            self._from_config(wc)

    def _from_config(self, wc: WallConfig) -> None:
        spec = MosaicSpec(wc.layout, wc.width, wc.height, wc.fps)
        self.create(
            spec,
            wc.cameras,
            centre=wc.centre,
            owner="config",
            name=wc.name or wc.id,
            wall_id=wc.id,
            configured=True,
        )

    def create(
        self,
        spec: MosaicSpec,
        cameras: list[str],
        *,
        centre: str,
        owner: str,
        name: str = "",
        wall_id: str | None = None,
        configured: bool = False,
    ) -> Wall:
        if spec.layout not in LAYOUTS:
            raise WallError(f"layout must be one of {', '.join(map(str, LAYOUTS))}")
        if len(cameras) > spec.layout:
            raise WallError(f"{len(cameras)} cameras do not fit {spec.layout} tiles")
        for cam_id in cameras:
            if cam_id and self.find(cam_id) is None:
                raise WallError(f"unknown camera {cam_id!r}")
        if len(self._walls) >= self.max_walls:
            raise WallError(f"at most {self.max_walls} walls; delete one first")
        wall_id = wall_id or secrets.token_urlsafe(6)
        tiles = list(cameras) + [""] * (spec.layout - len(cameras))
        s = self.config.streams
        stream_name = f"wall:{wall_id}"
        made: list[Wall] = []

        def factory(url: str, options: SourceOptions) -> Source:
            wall = made[0]
            wall.source = MosaicSource(spec, lambda w, h: self._feeds(wall, h), name=wall_id)
            return wall.source

        stream = Stream(
            stream_name,
            f"wall://{wall_id}",
            SourceOptions(name=stream_name),
            linger=s.linger,
            instant_start=True,
            backoff=((1.0, 1000),),
            source_factory=factory,
        )
        wall = Wall(wall_id, name or wall_id, centre, owner, spec, tiles, stream, configured)
        made.append(wall)
        self._walls[wall_id] = wall
        return wall

    def _feeds(self, wall: Wall, tile_height: int) -> list[TileFeed | None]:
        feeds: list[TileFeed | None] = []
        for cam_id in wall.cameras:
            cam = self.find(cam_id) if cam_id else None
            if cam is None:
                feeds.append(None)
                continue
            lease = self.pictures.lease(cam, fps=wall.spec.fps, height=tile_height)
            feeds.append(TapFeed(label_of(cam.id, cam.config.name), lease))
        return feeds

    def find(self, camera_id: str) -> Camera | None:
        """This node's camera, else a camera of another hub node (walls made over the API;
        walls from the config file are checked at start, against this node's cameras)."""
        return self.cameras.find(camera_id)

    def get(self, wall_id: str) -> Wall | None:
        return self._walls.get(wall_id)

    def visible_to(self, scope: str) -> list[Wall]:
        return [w for w in self._walls.values() if within(w.centre, scope)]

    def __len__(self) -> int:
        return len(self._walls)

    async def delete(self, wall_id: str) -> bool:
        wall = self._walls.pop(wall_id, None)
        if wall is None:
            return False
        await wall.stream.close()
        return True

    async def close(self) -> None:
        walls, self._walls = list(self._walls.values()), {}
        await asyncio.gather(*(w.stream.close() for w in walls))


WALLS = web.AppKey("walls", Walls)
