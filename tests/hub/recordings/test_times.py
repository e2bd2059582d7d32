"""The recordings API's times: ISO 8601 or epoch milliseconds, within 1970–9999."""

from __future__ import annotations

import pytest

from hub.core.errors import Invalid
from hub.recordings.api import MAX_MS, parse_time


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        ("0", 0),
        ("1796169600000", 1796169600000),
        ("2026-12-02T00:00:00Z", 1796169600000),
        ("2026-12-02T08:00:00 08:00", 1796169600000),  # '+' arrives as a space
        ("2026-12-02T00:00:00", 1796169600000),  # naive means UTC
        (str(MAX_MS), MAX_MS),
    ],
)
def test_times_taken(value: str, ms: int) -> None:
    assert parse_time(value, "at") == ms


@pytest.mark.parametrize(
    "value", ["1" + "0" * 23, "²", "٣", "-5", "nan", "9999-12-31T23:59:59+14:00x", "x", "1e23"]
)
def test_times_refused_by_name(value: str) -> None:
    """Found by the outside check: a seek to 10^23 ms was accepted (the session then looped)."""
    with pytest.raises(Invalid, match=r"^at "):
        parse_time(value, "at")


def test_no_time_is_none() -> None:
    assert parse_time(None, "from") is None and parse_time("", "from") is None
