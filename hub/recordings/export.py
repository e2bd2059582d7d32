"""Exports: evidence zips (original segments + hash-chained manifest) and time formatting.

An export zip holds the segments exactly as recorded under `segments/NNNN-<day>-<file>` and
`manifest.json`: a header (camera or case tag, range, exporting user, time) that seeds the hash
chain, then one entry per segment with the SHA-256 the index holds. `zzhub verify ZIP` checks
it offline. Building runs in a thread; files go to a temporary path the caller removes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from hub.recordings.store import SegmentRow
from streams.recorder_manifest import EXPORT_MANIFEST, build_export_manifest

CHUNK = 256 * 1024


def iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def compact(ms: int) -> str:
    """20261123T005100Z: for file names."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y%m%dT%H%M%SZ")


def inside(root: Path, name: str) -> Path:
    """`root / name` for a name from the index, refusing anything that leaves `root`."""
    path = (root / name).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ValueError(f"segment path {name!r} leaves the recordings root")
    return path


def write_export_zip(
    root: Path, rows: list[SegmentRow], header: dict[str, Any], out: Path
) -> dict[str, Any]:
    """Blocking: the zip at `out`; returns its manifest."""
    entries: list[dict[str, Any]] = []
    members: list[tuple[Path, str]] = []
    for seq, row in enumerate(sorted(rows, key=lambda r: r.start_ms), start=1):
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


async def send_file(
    request: web.Request, path: Path, filename: str, content_type: str
) -> web.StreamResponse:
    """Stream a temporary file to the client as an attachment, then remove it."""
    try:
        size = (await asyncio.to_thread(path.stat)).st_size
        resp = web.StreamResponse(
            headers={
                "Content-Type": content_type,
                "Content-Length": str(size),
                "Content-Disposition": f'attachment; filename="{filename}"; '
                f"filename*=UTF-8''{quote(filename)}",
                "Cache-Control": "no-store",
            }
        )
        await resp.prepare(request)
        with path.open("rb") as f:
            while chunk := await asyncio.to_thread(f.read, CHUNK):
                await resp.write(chunk)
        await resp.write_eof()
        return resp
    finally:
        with contextlib.suppress(OSError):
            await asyncio.to_thread(path.unlink)
