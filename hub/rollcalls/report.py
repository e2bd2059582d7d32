"""Roll-call reports: the CSV export of one ledger and the per-township summary.

The CSV is UTF-8 with a byte-order mark (Excel opens the Chinese names correctly) and headers
in Chinese with the English field name beside them. Times are the hub's local time.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import sqlite3
from collections.abc import Callable

from hub.core.centres import CentreTree
from hub.core.errors import Invalid
from hub.rollcalls.model import RollCall

STATUS_ZH = {"answered": "在岗", "no_answer": "未应答", "offline": "离线", "checking": "查岗中"}
HEADER = [
    "查岗编号 rollcall",
    "中心编码 centre",
    "中心名称 centre_name",
    "所属乡镇 township",
    "状态 status",
    "在岗 answered",
    "响应时间(秒) response_time",
    "应答人 answered_by",
    "自动应答 auto",
    "应答时间 answered_at",
    "快照 snapshot",
    "发起人 started_by",
    "发起时间 started",
]


def _local(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


def ledger_csv(rc: RollCall, only: Callable[[str], bool] | None = None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    for e in rc.entries.values():
        if only is not None and not only(e.centre):
            continue
        writer.writerow(
            [
                rc.id,
                e.centre,
                e.centre_name,
                e.township,
                f"{STATUS_ZH.get(str(e.status), str(e.status))} {e.status}",
                "是" if e.answered else "否",
                "" if e.response_time is None else f"{e.response_time:.1f}",
                e.answered_by or "",
                "" if e.auto is None else ("是" if e.auto else "否"),
                _local(e.answered_at),
                e.snapshot or "",
                rc.started_by,
                _local(rc.started),
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def parse_time(value: str | None, *, end: bool = False) -> float | None:
    """Epoch seconds, an ISO date (`to=` a date means up to the end of that day) or an ISO
    date-time (the hub's local time unless it carries an offset)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise Invalid(f"{value!r} is not a date, a date-time or epoch seconds")
        return seconds
    try:
        if len(value) == 10:
            day = dt.datetime.combine(dt.date.fromisoformat(value), dt.time())
            return (day + dt.timedelta(days=1) if end else day).timestamp()
        return dt.datetime.fromisoformat(value).timestamp()
    except (ValueError, OverflowError):
        raise Invalid(f"{value!r} is not a date, a date-time or epoch seconds") from None


def summary(
    tree: CentreTree, totals: list[sqlite3.Row], never: list[sqlite3.Row]
) -> list[dict[str, object]]:
    """One object per township: checks, answered share, mean response, never-answering."""
    silent: dict[str, list[dict[str, object]]] = {}
    for row in never:
        silent.setdefault(row["township"], []).append(
            {"code": row["centre"], "name": row["name"], "checks": row["checks"]}
        )
    out: list[dict[str, object]] = []
    for row in totals:
        centre = tree.get(row["township"])
        checks, answered = int(row["checks"]), int(row["answered"] or 0)
        mean = row["mean_response"]
        out.append(
            {
                "township": row["township"],
                "name": centre.name if centre else row["township"],
                "rollcalls": int(row["rollcalls"]),
                "checks": checks,
                "answered": answered,
                "answered_pct": round(100.0 * answered / checks, 1) if checks else 0.0,
                "mean_response": None if mean is None else round(float(mean), 2),
                "never_answered": silent.get(row["township"], []),
            }
        )
    return out
