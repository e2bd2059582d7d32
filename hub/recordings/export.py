"""Exports: evidence zips (original segments + hash-chained manifest) and time formatting.

An export zip holds the segments exactly as recorded under `segments/NNNN-<day>-<file>` and
`manifest.json`: a header (camera or case tag, range, exporting user, time) that seeds the hash
chain, then one entry per segment with the SHA-256 the index holds. `zzhub verify ZIP` checks
it offline. Building runs in a thread; files go to a temporary path the caller removes.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import zipfile
from pathlib import Path
from typing import Any

from hub.recordings.store import SegmentRow
from streams.recorder_manifest import EXPORT_MANIFEST, build_export_manifest


def inside(root: Path, name: str) -> Path:
    """`root / name` for a name from the index, refusing anything that leaves `root`."""
    path = (root / name).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ValueError(f"segment path {name!r} leaves the recordings root")
    return path


def write_export_zip(
    root: Path,
    rows: list[SegmentRow],
    header: dict[str, Any],
    out: Path,
    documents: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Blocking: the zip at `out`; returns its manifest. `documents` (a case's JSON, notes,
    timeline) go in as `case/<name>.json`, hashed like the segments; then the segments exactly
    as recorded, as `segments/NNNN-<day>-<file>`; then `manifest.json` (the header seeds the
    chain; one entry per file with its SHA-256), so `zzhub verify ZIP` checks all of it."""
    entries: list[dict[str, Any]] = []
    blobs: list[tuple[str, bytes]] = []
    for name, doc in (documents or {}).items():
        blob = json.dumps(doc, ensure_ascii=False, indent=1).encode()
        member = f"case/{name}.json"
        entries.append(
            {"file": member, "sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)}
        )
        blobs.append((member, blob))
    members: list[tuple[Path, str]] = []
    for seq, row in enumerate(sorted(rows, key=lambda r: (r.start_ms, r.source)), start=1):
        src = inside(root, row.name)
        day = Path(row.name).parent.name
        member = f"segments/{seq:04d}-{day}-{src.name}"
        entries.append(
            {
                "file": member,
                "sha256": row.sha256,
                "bytes": row.bytes,
                "start_ms": row.start_ms,
                "end_ms": row.end_ms,
                "source": row.source,
            }
        )
        members.append((src, member))
    manifest = build_export_manifest(header, entries)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for member, blob in blobs:
            zf.writestr(member, blob)
        for src, member in members:
            if src.exists():
                zf.write(src, member)  # a missing file stays missing: verify will name it
        zf.writestr(EXPORT_MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
    return manifest


def temp_path(root: Path, suffix: str) -> Path:
    """A fresh temporary file name for an export under the recordings root."""
    folder = root / ".exports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{secrets.token_hex(8)}{suffix}"
