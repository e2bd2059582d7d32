"""A case's evidence export: case JSON, notes, timeline and its recordings, hash-chained.

The zip holds `case/case.json`, `case/notes.json`, `case/timeline.json`, the hearing segments
exactly as recorded under `segments/NNNN-<day>-<file>` and `manifest.json` in the format of
`hub.recordings.export` (header seeds the chain; one entry per file with its SHA-256), so
`zzhub verify ZIP` checks documents and recordings alike. Blocking: run it in a thread.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

from hub.recordings.export import inside
from hub.recordings.store import SegmentRow
from streams.recorder_manifest import EXPORT_MANIFEST, build_export_manifest


def write_case_zip(
    root: Path,
    rows: list[SegmentRow],
    documents: dict[str, Any],
    header: dict[str, Any],
    out: Path,
) -> dict[str, Any]:
    """Blocking: write the zip at `out`; returns its manifest."""
    entries: list[dict[str, Any]] = []
    blobs: list[tuple[str, bytes]] = []
    for name, doc in documents.items():
        blob = json.dumps(doc, ensure_ascii=False, indent=1).encode()
        member = f"case/{name}.json"
        entries.append(
            {"file": member, "sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)}
        )
        blobs.append((member, blob))
    files: list[tuple[Path, str]] = []
    for seq, row in enumerate(sorted(rows, key=lambda r: (r.start_ms, r.source)), start=1):
        src = inside(root, row.name)
        member = f"segments/{seq:04d}-{Path(row.name).parent.name}-{src.name}"
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
        files.append((src, member))
    manifest = build_export_manifest(header, entries)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for member, blob in blobs:
            zf.writestr(member, blob)
        for src, member in files:
            if src.exists():
                zf.write(src, member)  # a missing file stays missing: verify names it
        zf.writestr(EXPORT_MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
    return manifest
