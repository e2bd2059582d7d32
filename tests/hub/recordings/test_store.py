"""The recording index on real SQLite, coverage, and retention (age, quota, ENOSPC) with
the deletions chained into the folders' manifests."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from config.schema import RecordingConfig
from hub.core.db import Database
from hub.recordings.retention import Retention
from hub.recordings.store import RecordingIndex, SegmentRow, coverage
from hub.recordings.verify import verify_path
from streams.recorder_manifest import MANIFEST, ManifestBook, read_jsonl
from streams.recorder_writer import Segment

TOWN = "410922100"
DAY_MS = 86_400_000


@pytest.fixture
async def index(tmp_path: Path) -> AsyncIterator[RecordingIndex]:
    db = Database(tmp_path / "zzhub.sqlite3")
    await db.open()
    idx = RecordingIndex(db)
    await idx.migrate()
    await idx.migrate()  # idempotent
    try:
        yield idx
    finally:
        await db.close()


def seg(
    name: str, start: int, end: int | None = None, size: int = 0, source: str = "cam"
) -> Segment:
    return Segment(source, name, start, end, size, "ab" * 32 if end else "", "h264", 320, 240)


async def test_opened_then_closed_fills_the_row(index: RecordingIndex) -> None:
    s = seg("cam/20261201/a.mp4", 1000)
    await index.opened(s, tag="case-1", centre=TOWN)
    [row] = await index.open_rows()
    assert row == SegmentRow(row.id, "cam", "case-1", TOWN, s.name, 1000, None, 0, "", "open")
    await index.closed(seg(s.name, 1000, 5000, 42), tag="case-1", centre=TOWN)
    assert await index.open_rows() == []
    [row] = await index.by_tag("case-1")
    assert (row.end_ms, row.bytes, row.sha256, row.status) == (5000, 42, "ab" * 32, "closed")
    assert row.to_json() == {
        "id": row.id,
        "source": "cam",
        "tag": "case-1",
        "start_ms": 1000,
        "end_ms": 5000,
        "bytes": 42,
        "sha256": "ab" * 32,
        "status": "closed",
    }


async def test_closed_without_the_open_report_and_recovered_status(index: RecordingIndex) -> None:
    await index.closed(seg("cam/d/b.mp4", 10, 20, 5), tag="", centre=TOWN, status="recovered")
    await index.opened(seg("cam/d/b.mp4", 99), tag="x", centre="other")  # duplicate: ignored
    [row] = await index.between("cam", 0, 100)
    assert (row.start_ms, row.status, row.tag, row.centre) == (10, "recovered", "", TOWN)
    assert row.to_json()["tag"] is None


def test_open_row_json_and_until_now() -> None:
    row = SegmentRow(1, "cam", "", "", "n", 0, None, 0, "", "open")
    assert row.to_json()["sha256"] is None and row.to_json()["end_ms"] is None
    before = int(time.time() * 1000)
    assert before <= row.until_ms <= int(time.time() * 1000)
    assert SegmentRow(1, "cam", "", "", "n", 0, 77, 0, "", "closed").until_ms == 77


async def fill(index: RecordingIndex) -> None:
    for i, (start, end) in enumerate([(0, 10), (10, 20), (30, 40)]):
        await index.closed(seg(f"cam/d/{i}.mp4", start, end, 100), tag="t", centre=TOWN)
    await index.closed(seg("other/d/x.mp4", 5, 15, 7, source="other"), tag="", centre=TOWN)
    now = int(time.time() * 1000)
    await index.opened(seg("cam/d/open.mp4", now - 1000), tag="t", centre=TOWN)


async def test_between_is_the_overlap_oldest_first(index: RecordingIndex) -> None:
    await fill(index)
    names = [r.name for r in await index.between("cam", 5, 31)]
    assert names == ["cam/d/0.mp4", "cam/d/1.mp4", "cam/d/2.mp4"]
    assert [r.name for r in await index.between("cam", 10, 30)] == ["cam/d/1.mp4"]  # half-open
    assert await index.between("cam", 20, 30) == []
    now = int(time.time() * 1000)
    assert [r.name for r in await index.between("cam", now - 10, now + 10)] == ["cam/d/open.mp4"]
    assert [r.source for r in await index.between("other", 0, 100)] == ["other"]


async def test_playlist_from_a_moment(index: RecordingIndex) -> None:
    await fill(index)
    assert [r.name for r in await index.playlist("cam", 15)] == [
        "cam/d/1.mp4",
        "cam/d/2.mp4",
        "cam/d/open.mp4",
    ]
    assert [r.name for r in await index.playlist("cam", 20, limit=1)] == ["cam/d/2.mp4"]
    assert [r.name for r in await index.playlist("cam", 0, limit=2)] == [
        "cam/d/0.mp4",
        "cam/d/1.mp4",
    ]


async def test_by_tag_oldest_total_delete_and_size(index: RecordingIndex) -> None:
    await fill(index)
    assert [r.name for r in await index.by_tag("t")] == [
        "cam/d/0.mp4",
        "cam/d/1.mp4",
        "cam/d/2.mp4",
        "cam/d/open.mp4",
    ]
    oldest = await index.oldest(10)
    assert [r.name for r in oldest] == [
        "cam/d/0.mp4",
        "other/d/x.mp4",
        "cam/d/1.mp4",
        "cam/d/2.mp4",
    ]
    assert [r.name for r in await index.oldest(10, before_ms=20)] == [
        "cam/d/0.mp4",
        "other/d/x.mp4",
    ]
    assert [r.name for r in await index.oldest(1)] == ["cam/d/0.mp4"]
    assert await index.total_bytes() == 307
    await index.delete([oldest[0].id, oldest[1].id])
    await index.delete([])
    assert await index.total_bytes() == 200


async def test_total_bytes_of_an_empty_index(index: RecordingIndex) -> None:
    assert await index.total_bytes() == 0
    assert await index.oldest(5) == []


def row(start: int, end: int | None) -> SegmentRow:
    return SegmentRow(start, "cam", "", "", f"{start}.mp4", start, end, 0, "", "closed")


def test_coverage_edges() -> None:
    assert coverage([], 0, 100) == ([], [(0, 100)])
    assert coverage([row(0, 100)], 0, 100) == ([(0, 100)], [])
    # clipped to the window; a segment outside it is ignored
    assert coverage([row(-50, 30), row(200, 300)], 0, 100) == ([(0, 30)], [(30, 100)])
    # a gap within the tolerance joins the spans; a bigger one is a gap
    assert coverage([row(0, 10), row(15, 20), row(40, 50)], 0, 50, tolerance=5) == (
        [(0, 20), (40, 50)],
        [(20, 40)],
    )
    # overlapping and contained segments, given out of order
    assert coverage([row(10, 20), row(0, 50), row(5, 8)], 0, 60, tolerance=0) == (
        [(0, 50)],
        [(50, 60)],
    )


# -- retention -------------------------------------------------------------------------------
class Env:
    def __init__(self, root: Path, index: RecordingIndex, **config: object) -> None:
        self.root, self.index = root, index
        self.alerts: list[dict[str, object]] = []
        cfg = RecordingConfig.model_validate({"min_free_bytes": 0, **config})
        self.book = ManifestBook()
        self.retention = Retention(cfg, root, index, self.book, self.alerts.append)

    async def add(self, folder: str, name: str, start_ms: int, size: int) -> Path:
        path = self.root / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = bytes(size)
        path.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        s = Segment("cam", f"{folder}/{name}", start_ms, start_ms + 1000, size, digest)
        # what the recorder does when it closes a segment
        self.book.append(path.parent, {"file": name, "sha256": digest, "bytes": size})
        await self.index.closed(s, tag="", centre=TOWN)
        return path


def today() -> str:
    return datetime.now(UTC).strftime("%Y%m%d")


async def test_retention_by_age_chains_deletions_and_removes_empty_past_folders(
    tmp_path: Path, index: RecordingIndex
) -> None:
    env = Env(tmp_path / "rec", index, retention_days=1)
    now = int(time.time() * 1000)
    old = await env.add("cam/20200101", "a.mp4", now - 3 * DAY_MS, 10)
    kept_old_day = await env.add("cam/20200102", "b.mp4", now - 2 * DAY_MS, 10)
    await env.add("cam/20200102", "c.mp4", now - 1000, 10)  # young, in a past folder
    fresh = await env.add(f"cam/{today()}", "d.mp4", now - 1000, 10)
    assert await env.retention.run_once() == 2
    assert not old.exists() and not old.parent.exists()  # past day, nothing left: folder gone
    assert not kept_old_day.exists() and kept_old_day.parent.exists()
    lines = read_jsonl(kept_old_day.parent / MANIFEST)
    assert [line.get("file") or line["deleted"] for line in lines] == ["b.mp4", "c.mp4", "b.mp4"]
    assert lines[-1]["reason"] == "retention" and lines[-1]["sha256"] == lines[0]["sha256"]
    assert fresh.exists()
    assert env.alerts == []  # age is not a space problem
    assert env.retention.stats() == {"deleted": 2, "freed_bytes": 20, "alerts": 0}
    assert [r.name for r in await index.oldest(10)] == [
        "cam/20200102/c.mp4",
        f"cam/{today()}/d.mp4",
    ]


async def test_quota_deletes_oldest_until_under_and_alerts(
    tmp_path: Path, index: RecordingIndex
) -> None:
    env = Env(tmp_path / "rec", index, quota_bytes=250)
    now = int(time.time() * 1000)
    folder = f"cam/{today()}"
    paths = [await env.add(folder, f"{i}.mp4", now - (10 - i) * 1000, 100) for i in range(4)]
    assert await env.retention.run_once() == 2  # 400 used, 150 over: two of 100
    assert [p.exists() for p in paths] == [False, False, True, True]
    assert paths[0].parent.exists()  # today's folder stays
    assert await index.total_bytes() == 200
    [alert] = env.alerts
    assert alert["kind"] == "disk_full" and alert["reason"] == "quota"
    assert (alert["deleted_segments"], alert["freed_bytes"]) == (2, 200)
    assert "deleted the 2 oldest segments" in str(alert["message"])
    lines = read_jsonl(paths[0].parent / MANIFEST)
    deletions = [line for line in lines if "deleted" in line]
    assert [line["deleted"] for line in deletions] == ["0.mp4", "1.mp4"]
    assert all(line["reason"] == "quota" for line in deletions)
    report = verify_path(tmp_path / "rec")  # deletions are chained, not tampering
    assert report.ok and report.checked == 2


async def test_enospc_deletes_at_least_one_and_alerts_are_rate_limited(
    tmp_path: Path, index: RecordingIndex
) -> None:
    env = Env(tmp_path / "rec", index)
    now = int(time.time() * 1000)
    for i in range(3):
        await env.add(f"cam/{today()}", f"{i}.mp4", now - (10 - i) * 1000, 100)
    assert await env.retention.run_once() == 0  # no quota, no floor: nothing to do
    assert await env.retention.run_once(enospc=True) == 1
    assert await env.retention.run_once(enospc=True) == 1
    assert [a["reason"] for a in env.alerts] == ["disk full (ENOSPC)"]  # second within 60 s
    assert env.retention.stats() == {"deleted": 2, "freed_bytes": 200, "alerts": 1}


async def test_enospc_with_nothing_left_to_delete(tmp_path: Path, index: RecordingIndex) -> None:
    env = Env(tmp_path / "rec", index)
    assert await env.retention.run_once(enospc=True) == 0
    assert env.alerts == []


async def test_first_alert_is_raised_whatever_the_monotonic_clock(
    tmp_path: Path, index: RecordingIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = Env(tmp_path / "rec", index)
    await env.add(f"cam/{today()}", "0.mp4", int(time.time() * 1000), 100)
    # the process runs 12 s after the monotonic clock's origin (only this module's view)
    fake_time = SimpleNamespace(time=time.time, monotonic=lambda: 12.0)
    monkeypatch.setattr("hub.recordings.retention.time", fake_time)
    assert await env.retention.run_once(enospc=True) == 1
    assert len(env.alerts) == 1
