"""`zzhub verify`: offline checks of recordings, evidence exports and the audit log.

- A recording folder: every `manifest.jsonl` below it (one per source and day) is checked line
  by line (hash chain), then every listed segment against its SHA-256; segments deleted by
  retention are chained deletions, not problems.
- An export (zip, or its unpacked folder with `manifest.json`): the header seeds the chain,
  each entry's file must be present with its hash.
- The audit log (`--audit -c CONFIG`): the chain of the SQLite table, first broken row named.

Problems are named per file: ALTERED (content differs), REORDERED (holds another listed
file's content), MISSING, UNLISTED (a segment no manifest lists), CHAIN (a manifest line or
audit row edited, removed or reordered). Exit code 0 when clean, 1 when anything is wrong.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.core.audit import check_chain
from streams.recorder_manifest import (
    EXPORT_MANIFEST,
    GENESIS,
    MANIFEST,
    canonical,
    chain_hash,
    read_jsonl,
    sha256_file,
)


@dataclass
class Report:
    checked: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # not problems (a segment being written)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_chain(entries: list[dict[str, Any]], prev: str, where: str, report: Report) -> None:
    for number, entry in enumerate(entries, start=1):
        if entry.get("prev") != prev or chain_hash(prev, entry) != entry.get("chain"):
            name = entry.get("file") or entry.get("deleted") or f"line {number}"
            report.problems.append(
                f"CHAIN {where}: entry {number} ({name}) does not continue the hash chain "
                "(a manifest line was edited, removed or moved)"
            )
            return
        prev = str(entry["chain"])


def _check_files(
    entries: list[dict[str, Any]],
    digest_of: Callable[[str], str | None],
    where: str,
    report: Report,
) -> set[str]:
    """Hash each listed file; returns the listed names."""
    listed = {str(e["file"]): str(e.get("sha256", "")) for e in entries if "file" in e}
    deleted = {str(e["deleted"]) for e in entries if "deleted" in e}
    by_hash = {h: n for n, h in listed.items()}
    for name, expected in listed.items():
        if name in deleted:
            continue
        actual = digest_of(name)
        report.checked += 1
        if actual is None:
            report.problems.append(f"MISSING {where}/{name}: listed in the manifest, not found")
        elif actual != expected:
            other = by_hash.get(actual)
            if other is not None and other != name:
                report.problems.append(
                    f"REORDERED {where}/{name}: holds the content of {other} (files swapped "
                    "or renamed)"
                )
            else:
                report.problems.append(
                    f"ALTERED {where}/{name}: SHA-256 {actual[:16]}… differs from the "
                    f"manifest's {expected[:16]}…"
                )
    return set(listed) | deleted


def verify_folder(root: Path, report: Report) -> None:
    if (root / EXPORT_MANIFEST).exists():
        manifest = json.loads((root / EXPORT_MANIFEST).read_text(encoding="utf-8"))

        def on_disk(name: str) -> str | None:
            path = root / name
            return sha256_file(path) if path.is_file() else None

        _verify_export(
            manifest,
            on_disk,
            {
                p.relative_to(root).as_posix()
                for p in root.rglob("*")
                if p.is_file() and p.name != EXPORT_MANIFEST
            },
            root.name,
            report,
        )
        return
    manifests = sorted(root.rglob(MANIFEST))
    if not manifests:
        report.problems.append(f"MISSING {root}: no {MANIFEST} or {EXPORT_MANIFEST} found")
    for path in manifests:
        folder = path.parent
        where = folder.relative_to(root).as_posix() if folder != root else "."
        entries = read_jsonl(path)
        _check_chain(entries, GENESIS, f"{where}/{MANIFEST}", report)

        def digest(name: str, folder: Path = folder) -> str | None:
            file = folder / name
            return sha256_file(file) if file.is_file() and "/" not in name else None

        listed = _check_files(entries, digest, where, report)
        files = sorted(p.name for p in folder.glob("*.mp4"))
        for extra in files:
            if extra in listed:
                continue
            if extra == files[-1] and all(extra > name for name in listed):
                # the newest file after every listed one: the segment being recorded now
                report.notes.append(f"OPEN {where}/{extra}: not closed yet (being recorded)")
            else:
                report.problems.append(f"UNLISTED {where}/{extra}: not in the manifest")


def _verify_export(
    manifest: dict[str, Any],
    digest_of: Callable[[str], str | None],
    present: set[str],
    where: str,
    report: Report,
) -> None:
    header = manifest.get("header", {})
    entries = manifest.get("entries", [])
    seed = hashlib.sha256(canonical(header)).hexdigest()
    _check_chain(entries, seed, f"{where}/{EXPORT_MANIFEST}", report)
    if entries and manifest.get("head") != entries[-1].get("chain"):
        report.problems.append(
            f"CHAIN {where}/{EXPORT_MANIFEST}: head does not match the "
            "last entry (entries removed at the end)"
        )
    listed = _check_files(entries, digest_of, where, report)
    for extra in sorted(present - listed):
        report.problems.append(f"UNLISTED {where}/{extra}: not in the manifest")


def verify_zip(path: Path, report: Report) -> None:
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        if EXPORT_MANIFEST not in names:
            report.problems.append(f"MISSING {path.name}/{EXPORT_MANIFEST}")
            return
        manifest = json.loads(zf.read(EXPORT_MANIFEST).decode("utf-8"))

        def digest(name: str) -> str | None:
            if name not in names:
                return None
            h = hashlib.sha256()
            with zf.open(name) as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            return h.hexdigest()

        present = {n for n in names if not n.endswith("/") and n != EXPORT_MANIFEST}
        _verify_export(manifest, digest, present, path.name, report)


def verify_path(path: Path) -> Report:
    report = Report()
    if path.is_dir():
        verify_folder(path, report)
    elif zipfile.is_zipfile(path):
        verify_zip(path, report)
    else:
        report.problems.append(f"MISSING {path}: not a folder or a zip file")
    return report


def verify_audit(db_path: Path) -> Report:
    report = Report()
    if not db_path.exists():
        report.problems.append(f"MISSING {db_path}: no database")
        return report
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        checked, broken = check_chain(conn)
    except sqlite3.OperationalError as err:
        report.problems.append(f"MISSING audit_log in {db_path}: {err}")
        return report
    finally:
        conn.close()
    report.checked = checked
    if broken is not None:
        report.problems.append(f"CHAIN audit row {broken.row_id}: {broken.reason}")
    return report
