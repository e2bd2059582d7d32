"""Times as the hub writes them: ISO 8601 in UTC with milliseconds (the API, manifests), and
a compact form for file names."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def compact(ms: int) -> str:
    """20261123T005100Z: for file names."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y%m%dT%H%M%SZ")
