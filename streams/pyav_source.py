"""Cameras read through PyAV (FFmpeg): RTMP, HTTP MJPEG/FLV/MPEG-TS, RTSP fallback, files.

Each source runs FFmpeg's open and demux in ONE dedicated thread
(`streams.threads.run_in_thread`) and hands packets to the event loop with
`loop.call_soon_threadsafe`. Cancelling `run()` sets a stop flag that the thread checks
between packets; a blocked open or read ends at the latest after
`SourceOptions.timeout` (FFmpeg's interrupt callback), and the thread closes its container
itself (closing it from another thread while FFmpeg reads would be a use-after-free).
`run()` returns or raises only once the thread has ended.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from urllib.parse import unquote, urlsplit

import av
import av.container
import av.packet
import av.stream
import av.video.stream
from av.bitstream import BitStreamFilterContext

from streams import bitstream
from streams.media import CLOCK_RATE, Codec, Packet, PacketSink, SourceError, StreamInfo
from streams.registry import SourceOptions, redact_url
from streams.threads import Emit, Stopped, run_in_thread

MAX_SKIPPED = 600  # packets waited for a first keyframe before passing everything on


def stream_info(stream: av.video.stream.VideoStream) -> StreamInfo:
    ctx = stream.codec_context
    codec = Codec.from_name(ctx.name)
    extradata = ctx.extradata or b""
    params = b""
    if codec is Codec.H264:
        params = bitstream.parameter_sets_from_avcc(extradata)
    elif codec is Codec.HEVC:
        params = bitstream.hevc_parameter_sets_from_hvcc(extradata)
    elif codec is Codec.MPEG4:
        params = extradata  # the VOL header: decoders need it as extradata
    # only the measured rate: FFmpeg's guess for a rate-less stream (multipart MJPEG) is 25
    rate = stream.average_rate
    fps = float(rate) if rate and 0 < rate <= 240 else 0.0
    return StreamInfo(codec, ctx.width, ctx.height, fps, params)


def open_options(url: str, options: SourceOptions) -> dict[str, str]:
    """FFmpeg demuxer options for a low-latency live pull."""
    opts = {"fflags": "nobuffer", "probesize": "1000000", "analyzeduration": "2000000"}
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("rtsp", "rtsps"):
        opts["rtsp_transport"] = options.transport
        opts["timeout"] = str(int(options.timeout * 1_000_000))  # socket I/O, microseconds
    elif scheme in ("rtmp", "rtmps"):
        opts["rtmp_live"] = "live"
        opts["analyzeduration"] = "1000000"  # FLV sends its sequence header first
    return opts


class _Demux:
    """One opened container's video stream, yielding Annex-B packets (thread side only)."""

    def __init__(self, target: str, label: str, options: dict[str, str], timeout: float) -> None:
        try:
            self.container = av.open(target, options=options, timeout=(timeout, timeout))
        except av.FFmpegError as exc:
            raise SourceError(f"{label}: cannot open: {exc.strerror or exc}") from None
        try:
            if not self.container.streams.video:
                raise SourceError(f"{label}: no video stream")
            self.stream = self.container.streams.video[0]
            self.info = stream_info(self.stream)
            self.time_base: Fraction = self.stream.time_base or Fraction(1, CLOCK_RATE)
            self.bsf: BitStreamFilterContext | None = None
            if self.info.codec in (Codec.H264, Codec.HEVC):
                name = f"{self.info.codec.value}_mp4toannexb"
                self.bsf = BitStreamFilterContext(name, self.stream)
        except BaseException:
            self.container.close()
            raise
        self.label = label

    def packets(self, stop: threading.Event) -> Iterator[tuple[bytes, int | None, bool]]:
        """(Annex-B data, pts in 90 kHz or None, keyframe) until the end of the stream."""
        try:
            for raw in self.container.demux(self.stream):
                if stop.is_set():
                    raise Stopped
                if raw.size == 0:
                    continue
                for pkt in self.bsf.filter(raw) if self.bsf is not None else [raw]:
                    ts = pkt.pts if pkt.pts is not None else pkt.dts
                    pts = None if ts is None else int(ts * self.time_base * CLOCK_RATE)
                    yield bytes(pkt), pts, pkt.is_keyframe
        except av.FFmpegError as exc:
            if stop.is_set():
                raise Stopped from None
            raise SourceError(f"{self.label}: read failed: {exc.strerror or exc}") from None

    def close(self) -> None:
        self.container.close()


class PyAVSource:
    """A live camera pulled through FFmpeg (rtmp://, http(s)://, rtsp:// fallback)."""

    def __init__(self, url: str, options: SourceOptions) -> None:
        self.url = url
        self.options = options
        self.label = f"{options.name or 'camera'} ({redact_url(url)})"

    async def run(self, sink: PacketSink) -> None:
        await run_in_thread(f"pyav-{self.options.name}", lambda e, s: self._read(sink, e, s))

    def _read(self, sink: PacketSink, emit: Emit, stop: threading.Event) -> None:
        demux = _Demux(
            self.url, self.label, open_options(self.url, self.options), self.options.timeout
        )
        try:
            if stop.is_set():
                raise Stopped
            emit(functools.partial(sink.on_info, demux.info))
            started = time.monotonic()
            # a stream without a frame rate (multipart MJPEG) has made-up timestamps
            arrival_clock = demux.info.fps == 0.0
            # drop what precedes the first keyframe (nobody can decode it), unless the
            # demuxer never flags keyframes at all
            skipped = 0
            for data, pts, keyframe in demux.packets(stop):
                if skipped >= 0 and not keyframe and skipped < MAX_SKIPPED:
                    skipped += 1
                    continue
                skipped = -1
                if pts is None or arrival_clock:
                    pts = int((time.monotonic() - started) * CLOCK_RATE)
                packet = Packet(data, pts, keyframe, captured=time.time())
                emit(functools.partial(sink.on_packet, packet))
        finally:
            demux.close()


class FileSource:
    """file:///path: plays the file at real time and loops forever with a continuous pts."""

    def __init__(self, url: str, options: SourceOptions) -> None:
        self.path = unquote(urlsplit(url).path)
        self.options = options
        self.label = f"{options.name or 'file'} ({self.path})"

    async def run(self, sink: PacketSink) -> None:
        await run_in_thread(f"file-{self.options.name}", lambda e, s: self._play(sink, e, s))

    def _play(self, sink: PacketSink, emit: Emit, stop: threading.Event) -> None:
        offset = 0  # pts (90 kHz) added to this loop's timestamps
        clock_start = time.monotonic()
        informed = False
        while not stop.is_set():
            demux = _Demux(self.path, self.label, {}, self.options.timeout)
            try:
                if not informed:
                    emit(functools.partial(sink.on_info, demux.info))
                    informed = True
                frame = int(CLOCK_RATE / (demux.info.fps or 25.0))
                first: int | None = None
                last = offset - frame
                for data, pts, keyframe in demux.packets(stop):
                    if pts is None:
                        out = last + frame
                    else:
                        first = pts if first is None else first
                        out = offset + pts - first
                    last = max(last, out)
                    # pace: wait until this packet's time on the wall clock
                    delay = clock_start + out / CLOCK_RATE - time.monotonic()
                    if delay < -1.0:  # fell far behind (host stalled): do not burst
                        clock_start -= delay
                    elif delay > 0 and stop.wait(delay):
                        raise Stopped
                    packet = Packet(data, out, keyframe, captured=time.time())
                    emit(functools.partial(sink.on_packet, packet))
                if last < offset:
                    raise SourceError(f"{self.label}: no video packets")
                offset = last + frame
            finally:
                demux.close()
