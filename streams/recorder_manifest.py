"""Evidence files: segment hashes, hash-chained manifests, and crash recovery of MP4 files.

A recording folder (one source, one UTC day) holds its segments and `manifest.jsonl`: one
line per closed segment (name, SHA-256, bytes, time range) or per deletion (retention), each
line carrying `prev` (the previous line's `chain`) and its own `chain` =
SHA-256(prev + canonical JSON of the line without `chain`). An export carries the same entries
in `manifest.json` after a header that seeds the chain. `zzhub verify` checks both offline.

Everything here blocks (file I/O, hashing): call it from a thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
from pathlib import Path
from typing import Any

MANIFEST = "manifest.jsonl"
EXPORT_MANIFEST = "manifest.json"
GENESIS = "0" * 64
_CHUNK = 1 << 20


def canonical(data: dict[str, Any]) -> bytes:
    """The one byte form that is hashed: sorted keys, no spaces, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev: str, entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "chain"}
    return hashlib.sha256(prev.encode() + canonical(body)).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Manifest lines; a torn last line (crash while appending) is ignored."""
    out: list[dict[str, Any]] = []
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            entry = {"unreadable": line[:80]}
        out.append(entry if isinstance(entry, dict) else {"unreadable": line[:80]})
    return out


class ManifestBook:
    """Appends to the manifests of a recordings root; safe from several writer threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def append(self, folder: Path, entry: dict[str, Any]) -> dict[str, Any]:
        """Chain `entry` onto `folder`'s manifest and append it (fsynced); returns the line."""
        with self._lock:
            path = folder / MANIFEST
            lines = read_jsonl(path)
            prev = str(lines[-1].get("chain", GENESIS)) if lines else GENESIS
            line = {"seq": len(lines) + 1, **entry, "prev": prev}
            line["chain"] = chain_hash(prev, line)
            data = canonical(line) + b"\n"
            if path.exists() and path.stat().st_size:
                with path.open("rb") as f:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        data = b"\n" + data  # a torn line stays torn, the new one stands alone
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            return line


def build_export_manifest(header: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """An export's manifest: the header seeds the chain, each segment entry links to the last."""
    prev = hashlib.sha256(canonical(header)).hexdigest()
    chained: list[dict[str, Any]] = []
    for seq, entry in enumerate(entries, start=1):
        line = {"seq": seq, **entry, "prev": prev}
        line["chain"] = chain_hash(prev, line)
        chained.append(line)
        prev = line["chain"]
    return {"header": header, "entries": chained, "head": prev}


# -- crash recovery -------------------------------------------------------------------------
def complete_length(path: Path) -> int:
    """Bytes of `path` up to the end of its last complete top-level MP4 box pair.

    A fragmented MP4 cut by a crash ends in a partial `moof`/`mdat`; everything before it
    (ftyp, moov, whole fragments) plays. A `moof` without its `mdat` is dropped too."""
    size = path.stat().st_size
    good = 0
    with path.open("rb") as f:
        pos = 0
        while pos + 8 <= size:
            f.seek(pos)
            header = f.read(16)
            box_size, kind = struct.unpack(">I4s", header[:8])
            if box_size == 1 and len(header) >= 16:
                box_size = struct.unpack(">Q", header[8:16])[0]
            elif box_size == 0:
                box_size = size - pos
            if box_size < 8 or pos + box_size > size:
                break
            pos += box_size
            if kind != b"moof":  # a moof counts only with the mdat that follows it
                good = pos
    return good


def truncate_incomplete(path: Path) -> int:
    """Cut a crashed segment back to its last complete fragment; returns the new size."""
    keep = complete_length(path)
    if keep < path.stat().st_size:
        with path.open("r+b") as f:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
    return keep
