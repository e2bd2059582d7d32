"""`kill -9` the hub while it records: every closed segment plays, the segment in progress
keeps all but its last fragment (loss <= 2 s), and the next start recovers it into the index."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import av
import yaml

from hub.recordings.verify import verify_path
from streams.recorder_manifest import MANIFEST, read_jsonl, truncate_incomplete
from tests.conftest import topology

ROOT = Path(__file__).resolve().parents[3]


def start_hub(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as err:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "serve", "-c", str(config)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )


def wait_closed(folder: Path, count: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 40
    while True:
        manifests = list(folder.rglob(MANIFEST))
        if manifests and len(read_jsonl(manifests[0])) >= count:
            return
        assert proc.poll() is None, log.read_text()[-2000:]
        assert time.monotonic() < deadline, f"fewer than {count} segments closed"
        time.sleep(0.2)


def last_frame_ms(path: Path) -> int:
    """Wall-clock time of the last decodable frame (segment start from its metadata)."""
    with av.open(str(path)) as c:
        start_ms = int(c.metadata["comment"].split()[-1])
        stream = c.streams.video[0]
        assert stream.time_base is not None
        last = first = None
        for frame in c.decode(stream):
            first = frame.pts if first is None else first
            last = frame.pts
    assert first is not None and last is not None, f"{path.name}: no frame decodes"
    return start_ms + int((last - first) * stream.time_base * 1000)


def test_kill_9_loses_at_most_the_fragment_in_progress(tmp_path: Path) -> None:
    cams = {
        "410922": [
            {
                "id": "crash-cam",
                "name": "crash",
                "url": "synthetic://crash-cam?size=320x240&fps=25&gop=25",
                "record": "continuous",
            }
        ]
    }
    cfg = topology(cams, recording={"segment_seconds": 3, "min_free_bytes": 0})
    cfg["http"]["data_dir"] = str(tmp_path / "data")
    config = tmp_path / "hub.yaml"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    log = tmp_path / "hub.log"
    folder = tmp_path / "data" / "recordings" / "cameras" / "crash-cam"
    proc = start_hub(config, log)
    try:
        wait_closed(folder, 2, proc, log)
        time.sleep(1.6)  # into the next segment: one or two fragments written
        killed_ms = int(time.time() * 1000)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    manifest = next(folder.rglob(MANIFEST))
    closed = read_jsonl(manifest)
    for entry in closed:  # every closed segment plays to its end
        path = manifest.parent / entry["file"]
        assert last_frame_ms(path) >= entry["end_ms"] - 100
    listed = {e["file"] for e in closed}
    in_progress = [p for p in manifest.parent.glob("*.mp4") if p.name not in listed]
    assert len(in_progress) == 1, "the segment being written when the hub died"
    copy = tmp_path / "open-copy.mp4"
    copy.write_bytes(in_progress[0].read_bytes())
    truncate_incomplete(copy)
    loss = killed_ms - last_frame_ms(copy)
    print(f"kill -9: {loss} ms before the kill lost")
    assert loss <= 2000, f"{loss} ms lost"

    # the next start recovers it: indexed as "recovered", the folder verifies clean
    proc = start_hub(config, log)
    try:
        deadline = time.monotonic() + 30
        db = tmp_path / "data" / "zzhub.sqlite3"
        while True:
            conn = sqlite3.connect(db)
            try:
                rows = conn.execute(
                    "SELECT status FROM recording_segments WHERE name LIKE ?",
                    (f"%{in_progress[0].name}",),
                ).fetchall()
            finally:
                conn.close()
            if rows and rows[0][0] == "recovered":
                break
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
        assert last_frame_ms(in_progress[0]) >= killed_ms - 2000
        report = verify_path(folder)
        assert report.ok, report.problems
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
