"""Decoded pictures of cameras for analysis and walls: the substream when one is configured.

One `DecodedTaps` for the hub (one decode per camera stream), plus the substream `Stream`s,
pulled only while a tap needs them. Motion analysis and wall tiles read the substream (cheap
to decode); a focused wall tile or anything asking for `main=True` reads the main stream.
"""

from __future__ import annotations

import asyncio

from config.schema import HubConfig
from hub.cameras import Camera
from streams.decoded import DecodedTaps, FrameListener, TapLease
from streams.registry import SourceOptions
from streams.stream import Stream


class PictureSources:
    def __init__(self, config: HubConfig, *, tap_linger: float = 2.0) -> None:
        self.config = config
        self.taps = DecodedTaps(linger=tap_linger)
        self._substreams: dict[str, Stream] = {}

    def substream(self, camera: Camera) -> Stream | None:
        """The camera's substream (created on first use), or None when it has none."""
        url = camera.config.substream_url
        if not url:
            return None
        stream = self._substreams.get(camera.id)
        if stream is None:
            s = self.config.streams
            name = f"{camera.id}/sub"
            stream = Stream(
                name,
                url,
                SourceOptions(
                    name=name, transport=camera.config.transport, timeout=s.connect_timeout
                ),
                linger=s.linger,
                instant_start=s.instant_start,
                backoff=s.backoff,
            )
            self._substreams[camera.id] = stream
        return stream

    def lease(
        self,
        camera: Camera,
        *,
        fps: float,
        height: int = 0,
        listener: FrameListener | None = None,
        keyframes_only: bool = False,
        main: bool = False,
    ) -> TapLease:
        sub = None if main else self.substream(camera)
        stream = sub or camera.stream
        key = stream.name if sub is not None else camera.id
        return self.taps.lease(
            key, stream, fps=fps, height=height, listener=listener, keyframes_only=keyframes_only
        )

    def stats(self) -> dict[str, dict[str, int | float]]:
        return self.taps.stats()

    async def close(self) -> None:
        await self.taps.close()
        await asyncio.gather(*(s.close() for s in self._substreams.values()))
        self._substreams.clear()
