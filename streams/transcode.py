"""Transcoder: one H.264 encode for a camera browsers cannot play as is.

HEVC, MJPEG or MPEG-4 pictures of the camera are encoded ONCE with libx264 (ultrafast,
zerolatency, constrained baseline, 2 s keyframe interval, one thread) into an output relay that
every viewer of the converted stream shares. The pictures come from the stream's one
`StreamDecoder` (the decoded tap of an analysed camera reads the same decoder), and the encode
runs in its decode thread; without a shared decoder the transcoder opens its own. The
decoder's bounded queue drops its backlog (counted) when full and resumes at the next keyframe,
so a slow host loses pictures, not latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from fractions import Fraction

import av
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType

from streams.bitstream import inband_parameter_sets
from streams.decoder import StreamDecoder
from streams.media import CLOCK_RATE, Codec, Packet, StreamInfo
from streams.relay import Relay
from streams.threads import Emit

log = logging.getLogger(__name__)

KEYFRAME_REQUEST_INTERVAL = 0.5  # seconds: a forced IDR goes to every viewer (MEDIA-NOTES)
KEYFRAME_SECONDS = 2.0


class Transcoder:
    """Encode the pictures of `source` once as H.264 into `output` (see the module docstring).

    `decoder` is the stream's shared decoder of `source`; without one the transcoder decodes
    `source` itself, through a queue of `queue_size` packets."""

    exact = True  # FrameSink: the pictures are shown, so decode them with the loop filter
    keyframes_only = False

    def __init__(
        self,
        source: Relay,
        output: Relay,
        *,
        name: str,
        fps: float | None = None,
        bitrate: int = 1_500_000,
        queue_size: int = 25,
        decoder: StreamDecoder | None = None,
    ) -> None:
        self.source = source
        self.output = output
        self.name = name
        self.fps = fps
        self.bitrate = bitrate
        self.decoder = decoder or StreamDecoder(
            source, name=f"transcode-{name}", queue_size=queue_size
        )
        self._force_keyframe = threading.Event()
        self._last_request = -KEYFRAME_REQUEST_INTERVAL
        self._task: asyncio.Task[None] | None = None
        self._stopped = False  # set on the loop: late publications from the thread are dropped
        # decode thread state
        self._encoder: VideoCodecContext | None = None
        self._last_pts = -CLOCK_RATE
        self._shift = 0  # keeps encoder timestamps increasing across camera restarts
        self._next_due = -CLOCK_RATE  # with `fps`: the time of the next picture to keep
        self._info_sent: tuple[int, int] | None = None  # size of the published info
        # counters (frames_in/out are written by the decode thread only)
        self.frames_in = 0  # decoded pictures received
        self.frames_out = 0  # encoded H.264 packets published
        self.keyframes_forced = 0
        self.keyframe_requests_ignored = 0

    @property
    def drops(self) -> int:
        """Camera packets dropped before decoding (queue full, waiting for a keyframe)."""
        return self.decoder.drops

    @property
    def errors(self) -> int:
        """Camera packets the decoder rejected."""
        return self.decoder.errors

    # -- event loop side -----------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._stopped = False
            self._encoder, self._info_sent = None, None
            self._last_pts = self._next_due = -CLOCK_RATE
            self._shift = 0
            self._task = asyncio.create_task(self._run(), name=f"transcode-{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._stopped = True
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def request_keyframe(self) -> None:
        """Force an IDR soon; requests within 0.5 s of the last honoured one are ignored."""
        now = time.monotonic()
        if now - self._last_request < KEYFRAME_REQUEST_INTERVAL:
            self.keyframe_requests_ignored += 1
            return
        self._last_request = now
        self.keyframes_forced += 1
        self._force_keyframe.set()

    def stats(self) -> dict[str, int]:
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "drops": self.drops,
            "errors": self.errors,
            "queued": self.decoder.queued,
            "keyframes_forced": self.keyframes_forced,
        }

    async def _run(self) -> None:
        await self.decoder.serve(self)

    # -- decode thread (FrameSink) -------------------------------------------------------
    def on_frame(self, frame: av.VideoFrame, packet: Packet, info: StreamInfo, emit: Emit) -> None:
        fps = self.fps or info.fps or 25.0
        step = int(CLOCK_RATE / fps)
        self.frames_in += 1
        pts = (frame.pts if frame.pts is not None else packet.pts) + self._shift
        if pts <= self._last_pts:  # the camera restarted its clock
            self._shift += self._last_pts + step - pts
            pts = self._next_due = self._last_pts + step
        if self.fps is not None:  # reduce the frame rate, evenly on average
            if pts < self._next_due:
                return
            self._next_due += step
            if self._next_due <= pts:  # after a gap: restart the cadence here
                self._next_due = pts + step
        self._last_pts = pts
        width, height = frame.width - frame.width % 2, frame.height - frame.height % 2
        encoder = self._encoder
        if encoder is None or (encoder.width, encoder.height) != (width, height):
            encoder = self._encoder = self._open_encoder(width, height, fps)
        picture = frame.reformat(width=width, height=height, format="yuv420p")
        picture.pts, picture.time_base = pts, Fraction(1, CLOCK_RATE)
        # decoded pictures keep their type (every MJPEG frame is I): reset it, or
        # the encoder would make each of them an IDR
        picture.pict_type = PictureType.NONE
        if self._force_keyframe.is_set():
            self._force_keyframe.clear()
            picture.pict_type = PictureType.I
        for out in encoder.encode(picture):
            out_pts = out.pts if out.pts is not None else pts
            self._publish(
                emit,
                Packet(
                    bytes(out), out_pts, out.is_keyframe, captured=packet.captured, meta=packet.meta
                ),
                fps,
                (width, height),
            )

    def _open_encoder(self, width: int, height: int, fps: float) -> VideoCodecContext:
        encoder = VideoCodecContext.create("libx264", "w")
        encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
        encoder.time_base = Fraction(1, CLOCK_RATE)
        encoder.framerate = Fraction(fps).limit_denominator(1001)
        encoder.gop_size = max(1, round(KEYFRAME_SECONDS * fps))
        encoder.bit_rate = self.bitrate
        encoder.thread_count = 1  # sliced threads + in-band SPS break pictures (MEDIA-NOTES)
        encoder.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "profile": "baseline",
            "forced-idr": "1",
        }
        self._info_sent = None  # a new encoder starts a new stream: publish its info
        return encoder

    def _publish(self, emit: Emit, packet: Packet, fps: float, size: tuple[int, int]) -> None:
        if packet.keyframe and self._info_sent != size:
            params = inband_parameter_sets(Codec.H264, packet.data)
            info = StreamInfo(Codec.H264, size[0], size[1], fps, params)
            emit(functools.partial(self._publish_info, info))
            self._info_sent = size
        if self._info_sent is None:
            return  # nothing decodable before the first keyframe
        self.frames_out += 1
        emit(functools.partial(self._publish_packet, packet))

    # -- event loop side, called through emit --------------------------------------------
    def _publish_info(self, info: StreamInfo) -> None:
        if not self._stopped:
            self.output.publish_info(info)

    def _publish_packet(self, packet: Packet) -> None:
        if not self._stopped:
            self.output.publish(packet)
