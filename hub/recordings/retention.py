"""Retention: delete recordings by age, by quota and when the disk is (nearly) full.

Oldest segments go first. Every deletion is chained into the folder's manifest (so
`zzhub verify` can tell retention from tampering), then removed from the index. Deleting for
space (quota, free-disk floor, ENOSPC) raises a `disk_full` alert on the event bus instead of
letting the recorder crash. File work runs in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from config.schema import RecordingConfig
from hub.recordings.store import RecordingIndex, SegmentRow
from streams.recorder_manifest import MANIFEST, ManifestBook

log = logging.getLogger(__name__)

BATCH = 50
ALERT_INTERVAL = 60.0  # seconds between two disk_full alerts


class Retention:
    def __init__(
        self,
        config: RecordingConfig,
        root: Path,
        index: RecordingIndex,
        book: ManifestBook,
        alert: Callable[[dict[str, object]], None],
    ) -> None:
        self.config = config
        self.root = root
        self.index = index
        self.book = book
        self._alert = alert
        self._last_alert = float("-inf")  # monotonic time of the last disk_full alert
        self._lock = asyncio.Lock()
        self.deleted = 0
        self.freed = 0
        self.alerts = 0

    async def run_once(self, *, enospc: bool = False) -> int:
        """One pass; returns the number of segments deleted."""
        async with self._lock:
            deleted = await self._by_age()
            for_space, freed, why = await self._for_space(enospc)
            if for_space:
                self._raise(why, for_space, freed)
            return deleted + for_space

    async def _by_age(self) -> int:
        cutoff = int((time.time() - self.config.retention_days * 86400) * 1000)
        total = 0
        while rows := await self.index.oldest(BATCH, before_ms=cutoff):
            total += len(rows)
            await self._delete(rows, "retention")
        return total

    async def _for_space(self, enospc: bool) -> tuple[int, int, str]:
        quota = self.config.quota_bytes
        used = await self.index.total_bytes()
        free = await asyncio.to_thread(_free_bytes, self.root)
        over_quota = used - quota if quota else 0
        short = self.config.min_free_bytes - free
        need = max(over_quota, short, 0)
        why = "quota" if over_quota > 0 else "disk"
        if enospc:
            why, need = "disk full (ENOSPC)", max(need, 1)
        count = freed = 0
        while need > 0:
            rows = await self.index.oldest(BATCH)
            if not rows:
                break
            chosen: list[SegmentRow] = []
            for row in rows:
                chosen.append(row)
                need -= row.bytes
                freed += row.bytes
                if need <= 0:
                    break
            await self._delete(chosen, why)
            count += len(chosen)
        return count, freed, why

    async def _delete(self, rows: list[SegmentRow], reason: str) -> None:
        await asyncio.to_thread(self._unlink, rows, reason)
        await self.index.delete([r.id for r in rows])
        self.deleted += len(rows)
        self.freed += sum(r.bytes for r in rows)
        log.info("deleted %d recorded segment(s) (%s)", len(rows), reason)

    def _unlink(self, rows: list[SegmentRow], reason: str) -> None:
        today = datetime.now(UTC).strftime("%Y%m%d")
        folders: set[Path] = set()
        for row in rows:
            path = self.root / row.name
            path.unlink(missing_ok=True)
            self.book.append(
                path.parent,
                {
                    "deleted": path.name,
                    "sha256": row.sha256,
                    "reason": reason,
                    "at_ms": int(time.time() * 1000),
                },
            )
            folders.add(path.parent)
        for folder in folders:
            # a past day's folder with no segment left goes whole; today's stays (being written)
            if folder.name != today and not any(folder.glob("*.mp4")):
                (folder / MANIFEST).unlink(missing_ok=True)
                shutil.rmtree(folder, ignore_errors=True)

    def _raise(self, why: str, count: int, freed: int) -> None:
        now = time.monotonic()
        if now - self._last_alert < ALERT_INTERVAL:
            return
        self._last_alert = now
        self.alerts += 1
        self._alert(
            {
                "kind": "disk_full",
                "severity": "warning",
                "reason": why,
                "deleted_segments": count,
                "freed_bytes": freed,
                "message": f"录像空间不足，已删除最早的 {count} 段录像 "
                f"(recording storage full: {why}; deleted the {count} oldest segments)",
            }
        )

    def stats(self) -> dict[str, int]:
        return {"deleted": self.deleted, "freed_bytes": self.freed, "alerts": self.alerts}


def _free_bytes(root: Path) -> int:
    root.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(root).free
