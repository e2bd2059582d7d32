"""Room participants built on aiortc, as a browser would be: a publisher that sends a camera
(encoded by aiortc to H.264 or VP8) and a microphone (a tone), and subscribers that decode
what the hub forwards. Shared by tests/signaling/test_publish*.py; no tests here."""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
from typing import Any

import av
import numpy as np
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import (
    AudioStreamTrack,
    MediaStreamError,
    MediaStreamTrack,
    VideoStreamTrack,
)

from signaling.ice import use_host_addresses
from signaling.publish import Publication, Publications

WIDTH, HEIGHT = 320, 240


class PatternTrack(VideoStreamTrack):
    """A moving bar on grey, 30 fps (VideoStreamTrack's pacing)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        image = np.full((HEIGHT, WIDTH, 3), 96, np.uint8)
        x = (self.count * 8) % WIDTH
        image[:, x : x + 16] = 255
        self.count += 1
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = pts
        frame.time_base = time_base
        return frame


class ToneTrack(AudioStreamTrack):
    """A 440 Hz tone at about -10 dBov (AudioStreamTrack's 8 kHz pacing)."""

    def __init__(self, amplitude: float = 0.3) -> None:
        super().__init__()
        self.amplitude = amplitude
        self.sample = 0

    async def recv(self) -> Any:
        frame: Any = await super().recv()
        n = frame.samples
        peak = int(32767 * self.amplitude)
        values = [
            int(peak * math.sin(2 * math.pi * 440 * (self.sample + i) / 8000)) for i in range(n)
        ]
        self.sample += n
        frame.planes[0].update(struct.pack(f"<{n}h", *values))
        return frame


class Publisher:
    """Sends a camera and a microphone; counts the keyframe requests that reach it."""

    def __init__(self, codec: str = "h264", audio: bool = True, video: bool = True) -> None:
        use_host_addresses(["127.0.0.1"])
        self.pc = RTCPeerConnection()
        self.keyframe_requests = 0
        self.video_sender: RTCRtpSender | None = None
        if video:
            transceiver = self.pc.addTransceiver(PatternTrack(), direction="sendonly")
            caps = RTCRtpSender.getCapabilities("video")
            transceiver.setCodecPreferences(
                [c for c in caps.codecs if c.mimeType.lower() in (f"video/{codec}", "video/rtx")]
            )
            sender = self.video_sender = transceiver.sender
            original = sender._send_keyframe

            def send_keyframe() -> None:
                self.keyframe_requests += 1
                original()

            sender._send_keyframe = send_keyframe  # type: ignore[method-assign]
        if audio:
            self.pc.addTransceiver(ToneTrack(), direction="sendonly")

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())  # gathers candidates
        sdp: str = self.pc.localDescription.sdp
        return sdp

    async def publish(self, pubs: Publications, owner: str = "alice") -> Publication:
        pub, answer = await pubs.publish(await self.offer(), owner=owner)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        return pub

    async def close(self) -> None:
        await self.pc.close()


class Subscriber:
    """Receives one publication; decodes and counts video and audio frames."""

    def __init__(self, video: bool = True, audio: bool = True) -> None:
        use_host_addresses(["127.0.0.1"])
        self.pc = RTCPeerConnection()
        self.session = ""
        self.video_frames = 0
        self.audio_frames = 0
        self.sizes: set[tuple[int, int]] = set()
        self.ended: set[str] = set()
        self.first_frame = asyncio.get_running_loop().create_future()
        self._readers: list[asyncio.Task[None]] = []
        self._progress = asyncio.Event()
        if video:
            self.pc.addTransceiver("video", direction="recvonly")
        if audio:
            self.pc.addTransceiver("audio", direction="recvonly")

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._readers.append(asyncio.get_running_loop().create_task(self._read(track)))

    async def _read(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame: Any = await track.recv()
                if track.kind == "video":
                    self.video_frames += 1
                    self.sizes.add((frame.width, frame.height))
                    if not self.first_frame.done():
                        self.first_frame.set_result(None)
                else:
                    self.audio_frames += 1
                self._progress.set()
        except MediaStreamError:
            self.ended.add(track.kind)
            self._progress.set()

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp: str = self.pc.localDescription.sdp
        return sdp

    async def subscribe(self, pubs: Publications, publication_id: str, user: str = "bob") -> str:
        self.session, answer = await pubs.subscribe(publication_id, await self.offer(), user=user)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        return self.session

    async def wait(self, video: int = 0, audio: int = 0, timeout: float = 15.0) -> None:
        """Until `video` more decoded pictures and `audio` more audio frames arrived."""
        want_video, want_audio = self.video_frames + video, self.audio_frames + audio
        async with asyncio.timeout(timeout):
            while self.video_frames < want_video or self.audio_frames < want_audio:
                self._progress.clear()
                await self._progress.wait()

    async def wait_ended(self, kinds: set[str], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not kinds <= self.ended:
                self._progress.clear()
                await self._progress.wait()

    async def close(self) -> None:
        for task in self._readers:
            task.cancel()
        for task in self._readers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.pc.close()
