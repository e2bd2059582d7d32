"""PlaybackSource: recorded MP4 segments played back as a live source, from a chosen moment.

It is an ordinary `Source` (see streams/media.py), so a `Stream` built on it feeds a private
Relay that WHEP viewers read exactly like a camera. A thread demuxes the segments (no decode),
converts the packets back to Annex-B and paces them on the wall clock at the chosen speed.
Playback starts on the keyframe at or before the requested moment. `PlaybackControl` (thread
safe) seeks, pauses, resumes and changes speed; timestamps stay continuous for the viewer.
At the end of the recordings it waits for more (a segment being written grows).
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import av
import av.bitstream

from streams import bitstream
from streams.media import CLOCK_RATE, Codec, Packet, PacketSink, SourceError, StreamInfo
from streams.threads import Emit, Stopped, run_in_thread

SPEEDS = (0.5, 1.0, 2.0, 4.0, 8.0)
IDLE_WAIT = 0.5
_BSF = {"h264": "h264_mp4toannexb", "hevc": "hevc_mp4toannexb"}


@dataclass(frozen=True, slots=True)
class PlaylistItem:
    path: Path
    start_ms: int
    end_ms: int | None  # None: still being written


class Playlist(Protocol):
    def after(self, at_ms: int) -> list[PlaylistItem]:
        """Blocking (thread side): the segment holding `at_ms` or the next, and later ones."""
        ...


class _Seek(Exception):
    pass


class PlaybackControl:
    """Shared between the event loop (commands) and the playback thread."""

    def __init__(self, start_ms: int) -> None:
        self._cond = threading.Condition()
        self.paused = False
        self.speed = 1.0
        self.position_ms = start_ms
        self.at_end = False
        self._seek: int | None = start_ms
        self._epoch = 0  # bumped on every command: the pacer re-anchors

    def seek(self, at_ms: int) -> None:
        with self._cond:
            self._seek, self.position_ms = at_ms, at_ms
            self._bump()

    def pause(self) -> None:
        with self._cond:
            self.paused = True
            self._bump()

    def resume(self) -> None:
        with self._cond:
            self.paused = False
            self._bump()

    def set_speed(self, speed: float) -> None:
        if speed not in SPEEDS:
            raise ValueError(f"speed must be one of {', '.join(map(str, SPEEDS))}")
        with self._cond:
            self.speed = speed
            self._bump()

    def _bump(self) -> None:
        self._epoch += 1
        self._cond.notify_all()

    def take_seek(self) -> int | None:
        with self._cond:
            seek, self._seek = self._seek, None
            return seek

    def seek_pending(self) -> bool:
        with self._cond:
            return self._seek is not None

    def sleep_until(self, deadline: float, stop: threading.Event, epoch: int) -> bool:
        """Wait for `deadline` (time.monotonic) or pause; False if a command came first."""
        with self._cond:
            while not stop.is_set():
                if self._epoch != epoch and not self.paused:
                    return False
                wait = deadline - time.monotonic() if not self.paused else IDLE_WAIT
                if wait <= 0:
                    return True
                self._cond.wait(min(wait, IDLE_WAIT))
        raise Stopped

    @property
    def epoch(self) -> int:
        return self._epoch

    def snapshot(self) -> dict[str, object]:
        return {
            "position_ms": self.position_ms,
            "paused": self.paused,
            "speed": self.speed,
            "at_end": self.at_end,
        }


class PlaybackSource:
    def __init__(self, name: str, playlist: Playlist, control: PlaybackControl) -> None:
        self.name = name
        self.playlist = playlist
        self.control = control
        self._info: StreamInfo | None = None
        self._out_pts = 0
        self._last_ms: int | None = None  # media time of the last packet sent (None: after a seek)
        self.packets = 0

    async def run(self, sink: PacketSink) -> None:
        await run_in_thread(
            f"playback-{self.name}", lambda emit, stop: self._play(sink, emit, stop)
        )

    def _play(self, sink: PacketSink, emit: Emit, stop: threading.Event) -> None:
        ctl = self.control
        pos = ctl.position_ms
        while not stop.is_set():
            seek = ctl.take_seek()
            if seek is not None:
                pos, self._last_ms = seek, None
            items = self.playlist.after(pos)
            if not items:
                ctl.at_end = True
                ctl.sleep_until(time.monotonic() + IDLE_WAIT, stop, ctl.epoch)
                continue
            ctl.at_end = False
            item = items[0]
            try:
                pos = self._play_file(item, pos, sink, emit, stop)
            except _Seek:
                continue
            except (av.FFmpegError, OSError) as err:
                raise SourceError(f"cannot play {item.path.name}: {err}") from None
            if item.end_ms is None:  # still being written: wait for it to grow
                ctl.sleep_until(time.monotonic() + IDLE_WAIT, stop, ctl.epoch)
            else:
                pos = max(pos, item.end_ms)  # on to the next segment
        raise Stopped

    def _play_file(
        self, item: PlaylistItem, pos: int, sink: PacketSink, emit: Emit, stop: threading.Event
    ) -> int:
        """Play `item` from `pos`; returns the position reached (ms)."""
        ctl = self.control
        with av.open(str(item.path)) as container:
            stream = container.streams.video[0]
            tb = stream.time_base
            if tb is None:
                raise SourceError(f"{item.path.name}: no time base")
            name = stream.codec_context.name
            bsf = av.bitstream.BitStreamFilterContext(_BSF[name], stream) if name in _BSF else None
            self._announce(stream, emit, sink)
            gop: list[tuple[Any, int]] = []  # packets from the keyframe before `pos`
            first: int | None = None
            anchor: tuple[float, int, int] | None = None  # (wall, media ms, epoch)
            for packet in container.demux(stream):
                if packet.pts is None or packet.size == 0:
                    continue
                first = packet.pts if first is None else first
                t_ms = item.start_ms + int((packet.pts - first) * tb * 1000)
                if self._last_ms is not None and t_ms <= self._last_ms:
                    continue  # already sent (a growing segment reopened)
                if self._last_ms is None and t_ms < pos:
                    gop = [] if packet.is_keyframe else gop
                    if packet.is_keyframe or gop:
                        gop.append((packet, t_ms))
                    continue
                for queued, q_ms in [*gop, (packet, t_ms)]:
                    if anchor is None or anchor[2] != ctl.epoch:
                        anchor = (time.monotonic(), q_ms, ctl.epoch)
                    due = anchor[0] + (q_ms - anchor[1]) / 1000 / ctl.speed
                    if due < time.monotonic() - 1.0:  # fell behind (slow disk): re-anchor
                        anchor = (time.monotonic(), q_ms, ctl.epoch)
                    if not ctl.sleep_until(due, stop, anchor[2]):
                        if ctl.seek_pending():
                            raise _Seek
                        anchor = (time.monotonic(), q_ms, ctl.epoch)
                    self._send(queued, q_ms, bsf, sink, emit)
                gop = []
        return self._last_ms if self._last_ms is not None else pos

    def _announce(self, stream: Any, emit: Emit, sink: PacketSink) -> None:
        ctx = stream.codec_context
        codec = Codec.from_name(ctx.name)
        extradata = bytes(ctx.extradata or b"")
        params = bitstream.parameter_sets_from_avcc(extradata) if codec is Codec.H264 else b""
        rate = stream.average_rate or stream.guessed_rate
        info = StreamInfo(codec, ctx.width, ctx.height, float(rate) if rate else 25.0, params)
        if info != self._info:
            self._info = info
            emit(functools.partial(sink.on_info, info))

    def _send(self, packet: Any, t_ms: int, bsf: Any, sink: PacketSink, emit: Emit) -> None:
        keyframe = bool(packet.is_keyframe)
        outs = bsf.filter(packet) if bsf is not None else [packet]
        if self._last_ms is not None:
            step = (t_ms - self._last_ms) * CLOCK_RATE // 1000 / self.control.speed
            self._out_pts += max(1, min(int(step), CLOCK_RATE))
        elif self.packets:
            self._out_pts += CLOCK_RATE // 25  # after a seek: one frame on
        self._last_ms = t_ms
        self.control.position_ms = t_ms
        for out in outs:
            data = bytes(out)
            if not data:
                continue
            self.packets += 1
            emit(
                functools.partial(
                    sink.on_packet,
                    Packet(
                        data,
                        self._out_pts,
                        keyframe,
                        captured=time.time(),
                        meta={"recorded_ms": t_ms},
                    ),
                )
            )
