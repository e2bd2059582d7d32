"""Clip export: recorded segments stitched into one MP4 without re-encoding (blocking).

The clip starts on the keyframe at or before `from_ms` and ends before `to_ms`. Timestamps are
rebased on the segments' wall-clock starts, so a gap between segments stays a gap in the clip.
Metadata tags (title, comment, artist and `zzhub_*` keys) name the camera, the range and the
exporting user.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from streams.playback import PlaylistItem

OUT_TIME_BASE = Fraction(1, 90_000)


@dataclass(frozen=True, slots=True)
class ClipResult:
    packets: int
    first_ms: int
    last_ms: int


class NothingRecorded(Exception):
    """No packet of the range could be read."""


def write_clip(
    items: list[PlaylistItem], from_ms: int, to_ms: int, out: Path, metadata: dict[str, str]
) -> ClipResult:
    output = av.open(
        str(out), "w", format="mp4", options={"movflags": "faststart+use_metadata_tags"}
    )
    out_stream: Any = None
    written, first_ms, last_ms, last_dts = 0, 0, 0, -1
    try:
        output.metadata.update(metadata)
        for item in items:
            with av.open(str(item.path)) as source:
                stream = source.streams.video[0]
                tb = stream.time_base
                if tb is None:
                    continue
                if out_stream is None:
                    out_stream = output.add_stream_from_template(stream)
                    out_stream.time_base = OUT_TIME_BASE
                gop: list[tuple[Any, int]] = []
                first: int | None = None
                for packet in source.demux(stream):
                    if packet.pts is None or packet.size == 0:
                        continue
                    first = packet.pts if first is None else first
                    t_ms = item.start_ms + int((packet.pts - first) * tb * 1000)
                    if t_ms >= to_ms:
                        break
                    if written == 0 and t_ms < from_ms:
                        gop = [] if packet.is_keyframe else gop
                        if packet.is_keyframe or gop:
                            gop.append((packet, t_ms))
                        continue
                    for queued, q_ms in [*gop, (packet, t_ms)]:
                        if written == 0:
                            if not queued.is_keyframe:
                                continue
                            first_ms = q_ms
                        dts = max(last_dts + 1, (q_ms - first_ms) * 90)
                        queued.pts = queued.dts = dts
                        queued.time_base = OUT_TIME_BASE
                        queued.stream = out_stream
                        output.mux(queued)
                        written, last_ms, last_dts = written + 1, q_ms, dts
                    gop = []
        if written == 0:
            raise NothingRecorded("no recorded video in that range")
    finally:
        output.close()
    return ClipResult(written, first_ms, last_ms)
