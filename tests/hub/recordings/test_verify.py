"""`zzhub verify`: a byte changed, a segment deleted, two swapped, a manifest line edited —
each named, in a recording folder and in an export zip; exit code 1 on problems."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hub.recordings.export import write_export_zip
from hub.recordings.store import SegmentRow
from hub.recordings.verify import verify_path
from streams.recorder import Recorder
from streams.recorder_manifest import MANIFEST, ManifestBook
from streams.recorder_writer import Segment, WriterOptions
from streams.relay import Relay
from tests.streams.test_recorder import Events, Feeder

ROOT = Path(__file__).resolve().parents[3]


def record(tmp_path: Path, seconds: float = 9.0) -> list[Segment]:
    async def run() -> list[Segment]:
        relay, events = Relay("cam"), Events()
        rec = Recorder(
            "cam", relay, WriterOptions(tmp_path, "cameras/cam", 2.0), events, ManifestBook()
        )
        rec.start()
        await Feeder(relay).feed(seconds)
        await rec.stop()
        return events.closed

    return asyncio.run(run())


def zzhub_verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", "verify", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[Path, list[Path]]:
    segments = record(tmp_path)
    assert len(segments) >= 4
    return tmp_path, [tmp_path / s.name for s in segments]


def test_clean_folder_passes(recorded: tuple[Path, list[Path]]) -> None:
    root, _ = recorded
    assert verify_path(root).ok
    result = zzhub_verify(str(root))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


def test_altered_missing_and_swapped_segments_are_named(
    recorded: tuple[Path, list[Path]],
) -> None:
    root, files = recorded
    data = bytearray(files[0].read_bytes())
    data[len(data) // 2] ^= 0x01
    files[0].write_bytes(bytes(data))
    files[1].unlink()
    a, b = files[2].read_bytes(), files[3].read_bytes()
    files[2].write_bytes(b)
    files[3].write_bytes(a)
    result = zzhub_verify(str(root))
    assert result.returncode == 1
    out = result.stdout
    assert f"ALTERED cameras/cam/{files[0].parent.name}/{files[0].name}" in out
    assert f"MISSING cameras/cam/{files[1].parent.name}/{files[1].name}" in out
    assert f"REORDERED cameras/cam/{files[2].parent.name}/{files[2].name}" in out
    assert f"holds the content of {files[3].name}" in out
    assert f"REORDERED cameras/cam/{files[3].parent.name}/{files[3].name}" in out


def test_edited_manifest_line_breaks_the_chain(recorded: tuple[Path, list[Path]]) -> None:
    root, files = recorded
    manifest = files[0].parent / MANIFEST
    lines = manifest.read_text().splitlines()
    entry = json.loads(lines[1])
    entry["end_ms"] += 1000  # someone stretches a segment's time range
    lines[1] = json.dumps(entry)
    manifest.write_text("\n".join(lines) + "\n")
    report = verify_path(root)
    assert any(p.startswith("CHAIN") and "entry 2" in p for p in report.problems)


def test_export_zip_names_altered_missing_and_swapped(
    recorded: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    root, files = recorded
    rows = []
    for i, path in enumerate(files):
        line = [json.loads(x) for x in (path.parent / MANIFEST).read_text().splitlines()][i]
        rows.append(
            SegmentRow(
                i,
                "cam",
                "",
                "410922",
                path.relative_to(root).as_posix(),
                line["start_ms"],
                line["end_ms"],
                line["bytes"],
                line["sha256"],
                "closed",
            )
        )
    good = tmp_path / "export.zip"
    manifest = write_export_zip(root, rows, {"camera": "cam", "exported_by": "t"}, good)
    assert verify_path(good).ok
    names = [e["file"] for e in manifest["entries"]]
    bad = tmp_path / "tampered.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        content = {n: src.read(n) for n in src.namelist()}
        altered = bytearray(content[names[0]])
        altered[-10] ^= 0xFF
        content[names[0]] = bytes(altered)
        del content[names[1]]
        content[names[2]], content[names[3]] = content[names[3]], content[names[2]]
        for name, data in content.items():
            dst.writestr(name, data)
    result = zzhub_verify(str(bad))
    assert result.returncode == 1
    assert f"ALTERED tampered.zip/{names[0]}" in result.stdout
    assert f"MISSING tampered.zip/{names[1]}" in result.stdout
    assert f"REORDERED tampered.zip/{names[2]}" in result.stdout
    assert f"REORDERED tampered.zip/{names[3]}" in result.stdout
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "manifest.json":
                doc = json.loads(data)
                doc["header"]["exported_by"] = "someone else"
                data = json.dumps(doc).encode()
            dst.writestr(name, data)
    report = verify_path(bad)
    assert any(p.startswith("CHAIN") for p in report.problems)


def test_verify_without_a_path_is_a_usage_error() -> None:
    assert zzhub_verify().returncode == 2
    assert zzhub_verify("--audit").returncode == 2
