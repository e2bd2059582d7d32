"""Transcoder: one decode and one H.264 encode for a camera browsers cannot play as is.

HEVC, MJPEG or MPEG-4 packets from the camera's relay are decoded ONCE and encoded ONCE with
libx264 (ultrafast, zerolatency, constrained baseline, 2 s keyframe interval, one thread) into
an output relay that every viewer of the converted stream shares. The work runs in one
dedicated thread fed by a bounded queue; when the queue is full its backlog is dropped
(counted) and feeding resumes at the next keyframe, so a slow host loses pictures, not latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import threading
import time
from fractions import Fraction

import av
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType

from streams.media import CLOCK_RATE, Codec, Packet, StreamInfo
from streams.relay import Relay
from streams.snapshot import create_decoder, with_parameter_sets
from streams.synthetic import parameter_sets
from streams.threads import Emit, Stopped, feed_thread

log = logging.getLogger(__name__)

KEYFRAME_REQUEST_INTERVAL = 0.5  # seconds: a forced IDR goes to every viewer (MEDIA-NOTES)
KEYFRAME_SECONDS = 2.0
Item = tuple[StreamInfo, Packet]


class Transcoder:
    """Decode `source` once, encode H.264 once, publish to `output` (see the module docstring)."""

    def __init__(
        self,
        source: Relay,
        output: Relay,
        *,
        name: str,
        fps: float | None = None,
        bitrate: int = 1_500_000,
        queue_size: int = 25,
    ) -> None:
        self.source = source
        self.output = output
        self.name = name
        self.fps = fps
        self.bitrate = bitrate
        self._queue: queue.Queue[Item] = queue.Queue(maxsize=queue_size)
        self._need_keyframe = True
        self._force_keyframe = threading.Event()
        self._last_request = -KEYFRAME_REQUEST_INTERVAL
        self._task: asyncio.Task[None] | None = None
        self._info_sent: tuple[int, int] | None = None  # worker: size of the published info
        # counters (frames_in/out/errors are written by the worker thread only)
        self.frames_in = 0  # decoded pictures
        self.frames_out = 0  # encoded H.264 packets published
        self.drops = 0  # camera packets dropped before decoding (queue full, waiting for a key)
        self.errors = 0  # packets the decoder rejected
        self.keyframes_forced = 0
        self.keyframe_requests_ignored = 0

    # -- event loop side -----------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"transcode-{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
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
            "queued": self._queue.qsize(),
            "keyframes_forced": self.keyframes_forced,
        }

    async def _run(self) -> None:
        consumer = self.source.subscribe(f"transcode:{self.name}")
        await feed_thread(consumer, self._offer, f"transcode-{self.name}", self._work)

    def _offer(self, packet: Packet) -> None:
        info = self.source.info
        if info is None or (self._need_keyframe and not packet.keyframe):
            self.drops += 1
            return
        self._need_keyframe = False
        try:
            self._queue.put_nowait((info, packet))
        except queue.Full:
            # the worker is behind: drop its backlog and restart at a keyframe
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
                self.drops += 1
            if packet.keyframe:
                self._queue.put_nowait((info, packet))
            else:
                self.drops += 1
                self._need_keyframe = True

    # -- worker thread -------------------------------------------------------------------
    def _work(self, emit: Emit, stop: threading.Event) -> None:
        decoder: VideoCodecContext | None = None
        codec: Codec | None = None
        encoder: VideoCodecContext | None = None
        last_pts = -CLOCK_RATE
        shift = 0  # keeps encoder timestamps increasing across camera restarts
        next_due = -CLOCK_RATE  # with `fps`: the time of the next picture to keep
        while not stop.is_set():
            try:
                info, packet = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if decoder is None or info.codec is not codec:
                decoder, codec = create_decoder(info), info.codec
            data = with_parameter_sets(info, packet.data) if packet.keyframe else packet.data
            encoded = av.Packet(data)
            encoded.pts, encoded.time_base = packet.pts, Fraction(1, CLOCK_RATE)
            try:
                frames = decoder.decode(encoded)
            except av.FFmpegError:
                self.errors += 1
                continue
            fps = self.fps or info.fps or 25.0
            step = int(CLOCK_RATE / fps)
            for frame in frames:
                self.frames_in += 1
                pts = (frame.pts if frame.pts is not None else packet.pts) + shift
                if pts <= last_pts:  # the camera restarted its clock
                    shift += last_pts + step - pts
                    pts = next_due = last_pts + step
                if self.fps is not None:  # reduce the frame rate, evenly on average
                    if pts < next_due:
                        continue
                    next_due += step
                    if next_due <= pts:  # after a gap: restart the cadence here
                        next_due = pts + step
                last_pts = pts
                width, height = frame.width - frame.width % 2, frame.height - frame.height % 2
                if encoder is None or (encoder.width, encoder.height) != (width, height):
                    encoder = self._encoder(width, height, fps)
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
                            bytes(out),
                            out_pts,
                            out.is_keyframe,
                            captured=packet.captured,
                            meta=packet.meta,
                        ),
                        fps,
                        (width, height),
                    )
        raise Stopped

    def _encoder(self, width: int, height: int, fps: float) -> VideoCodecContext:
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
            params = parameter_sets(Codec.H264, packet.data)
            info = StreamInfo(Codec.H264, size[0], size[1], fps, params)
            emit(functools.partial(self.output.publish_info, info))
            self._info_sent = size
        if self._info_sent is None:
            return  # nothing decodable before the first keyframe
        self.frames_out += 1
        emit(functools.partial(self.output.publish, packet))
