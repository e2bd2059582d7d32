"""The time index of recorded segments (SQLite component "recordings").

A row per MP4 segment: which source (camera id or `room/<tag>/<track>`), the case tag, the
centre that owns it, its path relative to the recordings root, wall-clock range (ms since the
epoch), size, SHA-256 and status (`open` while written, `closed`, `recovered` after a crash).
Paths in rows are written by the recorder only; no request input ever becomes a path.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from hub.core.db import Database
from streams.recorder_writer import Segment

COMPONENT = "recordings"
MIGRATIONS = [
    """
    CREATE TABLE recording_segments (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        tag TEXT NOT NULL DEFAULT '',
        centre TEXT NOT NULL DEFAULT '',
        name TEXT NOT NULL UNIQUE,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER,
        bytes INTEGER NOT NULL DEFAULT 0,
        sha256 TEXT NOT NULL DEFAULT '',
        codec TEXT NOT NULL DEFAULT '',
        width INTEGER NOT NULL DEFAULT 0,
        height INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'open'
    );
    CREATE INDEX recording_segments_source ON recording_segments (source, start_ms);
    CREATE INDEX recording_segments_tag ON recording_segments (tag, start_ms);
    """,
]
GAP_TOLERANCE_MS = 1500  # segments closer than this count as continuous coverage


@dataclass(frozen=True, slots=True)
class SegmentRow:
    id: int
    source: str
    tag: str
    centre: str
    name: str
    start_ms: int
    end_ms: int | None
    bytes: int
    sha256: str
    status: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> SegmentRow:
        return cls(
            row["id"],
            row["source"],
            row["tag"],
            row["centre"],
            row["name"],
            row["start_ms"],
            row["end_ms"],
            row["bytes"],
            row["sha256"],
            row["status"],
        )

    @property
    def until_ms(self) -> int:
        """End of the segment; an open one reaches to now."""
        return self.end_ms if self.end_ms is not None else int(time.time() * 1000)

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "source": self.source,
            "tag": self.tag or None,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "bytes": self.bytes,
            "sha256": self.sha256 or None,
            "status": self.status,
        }


class RecordingIndex:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def migrate(self) -> None:
        await self.db.migrate(COMPONENT, MIGRATIONS)

    async def opened(self, seg: Segment, *, tag: str, centre: str) -> None:
        await self.db.execute(
            "INSERT INTO recording_segments (source, tag, centre, name, start_ms, codec, width,"
            " height) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO NOTHING",
            (seg.source, tag, centre, seg.name, seg.start_ms, seg.codec, seg.width, seg.height),
        )

    async def closed(self, seg: Segment, *, tag: str, centre: str, status: str = "closed") -> None:
        await self.opened(seg, tag=tag, centre=centre)  # the open report may have been lost
        await self.db.execute(
            "UPDATE recording_segments SET end_ms = ?, bytes = ?, sha256 = ?, status = ? "
            "WHERE name = ?",
            (seg.end_ms, seg.bytes, seg.sha256, status, seg.name),
        )

    async def _rows(self, sql: str, params: tuple[object, ...]) -> list[SegmentRow]:
        return [SegmentRow.from_row(r) for r in await self.db.fetchall(sql, params)]

    async def between(self, source: str, from_ms: int, to_ms: int) -> list[SegmentRow]:
        """Segments of `source` overlapping [from_ms, to_ms), oldest first."""
        now = int(time.time() * 1000)
        return await self._rows(
            "SELECT * FROM recording_segments WHERE source = ? AND start_ms < ? "
            "AND COALESCE(end_ms, ?) > ? ORDER BY start_ms",
            (source, to_ms, now, from_ms),
        )

    async def playlist(self, source: str, at_ms: int, limit: int = 4) -> list[SegmentRow]:
        """The segment holding `at_ms` (or the next one after it) and those that follow."""
        now = int(time.time() * 1000)
        return await self._rows(
            "SELECT * FROM recording_segments WHERE source = ? AND COALESCE(end_ms, ?) > ? "
            "ORDER BY start_ms LIMIT ?",
            (source, now, at_ms, limit),
        )

    async def by_tag(self, tag: str) -> list[SegmentRow]:
        return await self._rows(
            "SELECT * FROM recording_segments WHERE tag = ? ORDER BY source, start_ms", (tag,)
        )

    async def open_rows(self) -> list[SegmentRow]:
        return await self._rows("SELECT * FROM recording_segments WHERE end_ms IS NULL", ())

    async def oldest(self, limit: int, before_ms: int | None = None) -> list[SegmentRow]:
        """Closed segments, oldest first (optionally only those ending before `before_ms`)."""
        if before_ms is None:
            return await self._rows(
                "SELECT * FROM recording_segments WHERE end_ms IS NOT NULL "
                "ORDER BY start_ms LIMIT ?",
                (limit,),
            )
        return await self._rows(
            "SELECT * FROM recording_segments WHERE end_ms IS NOT NULL AND end_ms < ? "
            "ORDER BY start_ms LIMIT ?",
            (before_ms, limit),
        )

    async def total_bytes(self) -> int:
        row = await self.db.fetchone("SELECT COALESCE(SUM(bytes), 0) AS n FROM recording_segments")
        return int(row["n"]) if row else 0

    async def delete(self, ids: list[int]) -> None:
        if ids:
            marks = ",".join("?" * len(ids))
            await self.db.execute(f"DELETE FROM recording_segments WHERE id IN ({marks})", ids)


def coverage(
    rows: list[SegmentRow], from_ms: int, to_ms: int, tolerance: int = GAP_TOLERANCE_MS
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Recorded spans and the gaps between them within [from_ms, to_ms)."""
    spans: list[tuple[int, int]] = []
    for row in sorted(rows, key=lambda r: r.start_ms):
        start, end = max(row.start_ms, from_ms), min(row.until_ms, to_ms)
        if end <= start:
            continue
        if spans and start <= spans[-1][1] + tolerance:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    gaps: list[tuple[int, int]] = []
    cursor = from_ms
    for start, end in spans:
        if start > cursor:
            gaps.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < to_ms:
        gaps.append((cursor, to_ms))
    return spans, gaps
