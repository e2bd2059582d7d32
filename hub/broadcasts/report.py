"""Attendance reports of a broadcast: per target centre (who, when, how long), the centres that
never joined, a summary per township, and the same as CSV (UTF-8 with BOM, for Excel)."""

from __future__ import annotations

import csv
import io
import time
from datetime import datetime
from typing import Any

from hub.broadcasts.store import BroadcastRow, Interval
from hub.core.centres import CentreTree, township_of


def attendance(row: BroadcastRow, intervals: list[Interval], tree: CentreTree) -> dict[str, Any]:
    now = row.ended or time.time()
    by_centre: dict[str, dict[str, dict[str, Any]]] = {code: {} for code in row.targets}
    for iv in intervals:
        if iv.centre not in by_centre or iv.user == row.presenter:
            continue
        person = by_centre[iv.centre].setdefault(
            iv.user,
            {
                "user": iv.user,
                "role": iv.role,
                "first_joined": iv.joined,
                "last_left": None,
                "seconds": 0.0,
                "sessions": 0,
            },
        )
        person["sessions"] += 1
        person["seconds"] = round(person["seconds"] + iv.seconds(now), 1)
        person.setdefault("_lefts", []).append(iv.left)
    for people in by_centre.values():
        for person in people.values():
            lefts = person.pop("_lefts")
            person["last_left"] = None if None in lefts else max(lefts)
    centres = []
    for code, people in by_centre.items():
        centre = tree.get(code)
        centres.append(
            {
                "centre": code,
                "name": centre.name if centre else code,
                "township": township_of(code),
                "joined": bool(people),
                "first_joined": min((p["first_joined"] for p in people.values()), default=None),
                "seconds": round(max((p["seconds"] for p in people.values()), default=0.0), 1),
                "users": list(people.values()),
            }
        )
    return {
        "broadcast": row.to_json(),
        "centres": centres,
        "never_joined": [c["centre"] for c in centres if not c["joined"]],
        "townships": townships(centres, tree),
    }


def townships(centres: list[dict[str, Any]], tree: CentreTree) -> list[dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for c in centres:
        code = c["township"]
        centre = tree.get(code)
        entry = summary.setdefault(
            code,
            {
                "township": code,
                "name": centre.name if centre else code,
                "centres": 0,
                "joined": 0,
                "never_joined": [],
                "seconds": 0.0,
            },
        )
        entry["centres"] += 1
        if c["joined"]:
            entry["joined"] += 1
            entry["seconds"] = round(entry["seconds"] + c["seconds"], 1)
        else:
            entry["never_joined"].append(c["centre"])
    for entry in summary.values():
        entry["rate"] = round(entry["joined"] / entry["centres"], 3)
    return sorted(summary.values(), key=lambda e: e["township"])


def attendance_csv(report: dict[str, Any]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "centre",
            "name",
            "township",
            "user",
            "role",
            "first_joined",
            "last_left",
            "seconds",
            "sessions",
        ]
    )
    for c in report["centres"]:
        base = [c["centre"], c["name"], c["township"]]
        if not c["users"]:
            writer.writerow([*base, "", "", "", "", 0, 0])  # never joined
        for u in c["users"]:
            writer.writerow(
                [
                    *base,
                    u["user"],
                    u["role"],
                    _when(u["first_joined"]),
                    _when(u["last_left"]),
                    u["seconds"],
                    u["sessions"],
                ]
            )
    return "\ufeff".encode() + out.getvalue().encode("utf-8")


def _when(at: float | None) -> str:
    return "" if at is None else datetime.fromtimestamp(at).isoformat(timespec="seconds")
