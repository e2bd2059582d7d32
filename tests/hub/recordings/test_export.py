"""Evidence zips: layout, the hash-chained manifest, documents, `inside`, and what
`zzhub verify` (hub.recordings.verify) says about clean and tampered exports."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from hub.recordings.export import inside, temp_path, write_export_zip
from hub.recordings.store import SegmentRow
from hub.recordings.verify import verify_path
from streams.recorder_manifest import EXPORT_MANIFEST, canonical, chain_hash

HEADER = {"camera": "town-cam", "from": "2026-12-01T00:00:00.000Z", "exported_by": "wang"}
DOCS = {"case": {"code": "A-001", "title": "邻里纠纷"}, "notes": [{"by": "li", "text": "已调解"}]}


def segment(
    root: Path, name: str, content: bytes, start_ms: int, source: str = "town-cam"
) -> SegmentRow:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return SegmentRow(
        id=start_ms,
        source=source,
        tag="",
        centre="410922100",
        name=name,
        start_ms=start_ms,
        end_ms=start_ms + 1000,
        bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        status="closed",
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "recordings"
    folder.mkdir()
    return folder


@pytest.fixture
def rows(root: Path) -> list[SegmentRow]:
    # given out of order: the zip lists them by (start_ms, source)
    return [
        segment(root, "town-cam/20261201/b.mp4", b"second" * 50, 2000),
        segment(root, "town-cam/20261201/a.mp4", b"first" * 50, 1000),
        segment(root, "room/t/v/20261202/c.mp4", b"third" * 50, 2000, source="room/t/v"),
    ]


def rewrite(src: Path, dst: Path, change: dict[str, bytes | None]) -> None:
    """Copy a zip, replacing (bytes) or dropping (None) some members, adding new ones."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            if name in change:
                data = change[name]
                if data is not None:
                    zout.writestr(name, data)
            else:
                zout.writestr(name, zin.read(name))
        for name, data in change.items():
            if name not in zin.namelist() and data is not None:
                zout.writestr(name, data)


def test_zip_layout_and_manifest_without_documents(
    root: Path, rows: list[SegmentRow], tmp_path: Path
) -> None:
    out = tmp_path / "e.zip"
    manifest = write_export_zip(root, rows, HEADER, out)
    files = [e["file"] for e in manifest["entries"]]
    assert files == [
        "segments/0001-20261201-a.mp4",
        "segments/0002-20261202-c.mp4",  # same start: "room/t/v" sorts before "town-cam"
        "segments/0003-20261201-b.mp4",
    ]
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == [*files, EXPORT_MANIFEST]
        assert zf.read(files[0]) == b"first" * 50
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
        assert json.loads(zf.read(EXPORT_MANIFEST)) == manifest
    first = manifest["entries"][0]
    assert first == {
        "seq": 1,
        "file": "segments/0001-20261201-a.mp4",
        "sha256": hashlib.sha256(b"first" * 50).hexdigest(),
        "bytes": 250,
        "start_ms": 1000,
        "end_ms": 2000,
        "source": "town-cam",
        "prev": hashlib.sha256(canonical(HEADER)).hexdigest(),
        "chain": first["chain"],
    }
    assert first["chain"] == chain_hash(first["prev"], first)
    assert manifest["header"] == HEADER
    assert manifest["head"] == manifest["entries"][-1]["chain"]
    report = verify_path(out)
    assert report.ok and report.checked == 3


def test_documents_come_first_hashed_like_segments(
    root: Path, rows: list[SegmentRow], tmp_path: Path
) -> None:
    out = tmp_path / "case.zip"
    manifest = write_export_zip(root, rows, HEADER, out, documents=DOCS)
    entries = manifest["entries"]
    assert [e["file"] for e in entries[:2]] == ["case/case.json", "case/notes.json"]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    with zipfile.ZipFile(out) as zf:
        blob = zf.read("case/case.json")
    assert json.loads(blob) == DOCS["case"]
    assert "邻里纠纷" in blob.decode()  # kept readable, not \u-escaped
    assert entries[0]["sha256"] == hashlib.sha256(blob).hexdigest()
    assert entries[0]["bytes"] == len(blob)
    assert set(entries[0]) == {"seq", "file", "sha256", "bytes", "prev", "chain"}
    report = verify_path(out)
    assert report.ok and report.checked == 5


def test_export_of_no_segments(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "empty.zip"
    manifest = write_export_zip(root, [], HEADER, out)
    assert manifest == {
        "header": HEADER,
        "entries": [],
        "head": hashlib.sha256(canonical(HEADER)).hexdigest(),
    }
    assert verify_path(out).ok


def test_unpacked_export_folder_verifies_too(
    root: Path, rows: list[SegmentRow], tmp_path: Path
) -> None:
    out = tmp_path / "e.zip"
    write_export_zip(root, rows, HEADER, out, documents=DOCS)
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(out) as zf:
        zf.extractall(folder)
    assert verify_path(folder).ok
    (folder / "case" / "notes.json").write_text("[]", encoding="utf-8")
    [problem] = verify_path(folder).problems
    assert problem.startswith("ALTERED unpacked/case/notes.json: SHA-256 ")


def test_a_segment_missing_on_disk_stays_missing(
    root: Path, rows: list[SegmentRow], tmp_path: Path
) -> None:
    (root / "town-cam/20261201/b.mp4").unlink()
    out = tmp_path / "e.zip"
    manifest = write_export_zip(root, rows, HEADER, out)
    assert len(manifest["entries"]) == 3
    assert verify_path(out).problems == [
        "MISSING e.zip/segments/0003-20261201-b.mp4: listed in the manifest, not found"
    ]


def test_a_segment_changed_after_indexing_is_altered(
    root: Path, rows: list[SegmentRow], tmp_path: Path
) -> None:
    (root / "town-cam/20261201/a.mp4").write_bytes(b"edited")
    out = tmp_path / "e.zip"
    write_export_zip(root, rows, HEADER, out)
    [problem] = verify_path(out).problems
    assert problem.startswith("ALTERED e.zip/segments/0001-20261201-a.mp4")


def test_tampered_zips_are_named(root: Path, rows: list[SegmentRow], tmp_path: Path) -> None:
    good = tmp_path / "good.zip"
    manifest = write_export_zip(root, rows, HEADER, good, documents=DOCS)
    cases: dict[str, tuple[dict[str, bytes | None], list[str]]] = {
        "doc": (
            {"case/case.json": b'{"code": "A-002"}'},
            ["ALTERED doc.zip/case/case.json"],
        ),
        "extra": (
            {"segments/0099-20261201-x.mp4": b"planted"},
            ["UNLISTED extra.zip/segments/0099-20261201-x.mp4: not in the manifest"],
        ),
        "nomanifest": ({EXPORT_MANIFEST: None}, ["MISSING nomanifest.zip/manifest.json"]),
    }
    for name, (change, expected) in cases.items():
        bad = tmp_path / f"{name}.zip"
        rewrite(good, bad, change)
        problems = verify_path(bad).problems
        assert len(problems) == len(expected), (name, problems)
        for problem, start in zip(problems, expected, strict=True):
            assert problem.startswith(start), (name, problem)
    # the last entry removed from the manifest: the head no longer matches
    cut: dict[str, Any] = {**manifest, "entries": manifest["entries"][:-1]}
    bad = tmp_path / "cut.zip"
    rewrite(good, bad, {EXPORT_MANIFEST: json.dumps(cut).encode()})
    problems = verify_path(bad).problems
    assert (
        "CHAIN cut.zip/manifest.json: head does not match the last entry (entries removed at "
        "the end)" in problems
    )
    assert "UNLISTED cut.zip/segments/0003-20261201-b.mp4: not in the manifest" in problems
    # an entry's hash edited to match an altered file: the chain breaks at that entry
    edited = json.loads(json.dumps(manifest))
    edited["entries"][2]["sha256"] = "0" * 64
    bad = tmp_path / "edited.zip"
    rewrite(good, bad, {EXPORT_MANIFEST: json.dumps(edited).encode()})
    problems = verify_path(bad).problems
    assert problems[0].startswith(
        "CHAIN edited.zip/manifest.json: entry 3 (segments/0001-20261201-a.mp4)"
    )


def test_an_added_case_document_is_unlisted(
    root: Path, rows: list[SegmentRow], tmp_path: Path
) -> None:
    good = tmp_path / "good.zip"
    write_export_zip(root, rows, HEADER, good, documents=DOCS)
    bad = tmp_path / "planted.zip"
    rewrite(good, bad, {"case/confession.json": b'{"text": "forged"}'})
    assert not verify_path(bad).ok


def test_verify_of_something_else(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("hello")
    assert verify_path(path).problems == [f"MISSING {path}: not a folder or a zip file"]


@pytest.mark.parametrize(
    "name",
    ["../outside.mp4", "cam/../../outside.mp4", "/etc/passwd", "cam/20261201/../../../x"],
)
def test_inside_refuses_names_leaving_the_root(root: Path, name: str) -> None:
    with pytest.raises(ValueError, match="leaves the recordings root"):
        inside(root, name)


def test_inside_refuses_a_sibling_with_the_same_prefix(root: Path) -> None:
    (root.parent / "recordings-other").mkdir()
    with pytest.raises(ValueError):
        inside(root, "../recordings-other/x.mp4")


def test_inside_refuses_a_symlink_out_of_the_root(root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"s")
    (root / "cam").mkdir()
    (root / "cam" / "link.mp4").symlink_to(secret)
    with pytest.raises(ValueError):
        inside(root, "cam/link.mp4")


def test_inside_accepts_names_below_the_root(root: Path) -> None:
    assert inside(root, "cam/20261201/a.mp4") == (root / "cam/20261201/a.mp4").resolve()
    assert inside(root, "cam/x/../a.mp4") == (root / "cam/a.mp4").resolve()


def test_export_refuses_a_row_outside_the_root(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"x")
    row = SegmentRow(1, "cam", "", "", "../outside.mp4", 0, 1, 1, "", "closed")
    out = tmp_path / "e.zip"
    with pytest.raises(ValueError, match="leaves the recordings root"):
        write_export_zip(root, [row], HEADER, out)
    assert not out.exists()


def test_temp_path_is_fresh_under_dot_exports(root: Path) -> None:
    a, b = temp_path(root, ".zip"), temp_path(root, ".zip")
    assert a != b
    assert a.parent == root / ".exports" and a.parent.is_dir()
    assert a.suffix == ".zip" and len(a.stem) == 16
    assert not a.exists()
