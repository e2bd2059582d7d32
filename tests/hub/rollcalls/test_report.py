"""Roll-call reports: the ledger CSV (BOM, CRLF, Chinese headers, local times), `parse_time`
and the per-township summary computed from real ledger rows (closed roll calls only, the
[from, to) window, the scope)."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from config.schema import CentreConfig
from hub.core.centres import CentreTree
from hub.core.db import Database
from hub.core.errors import Invalid
from hub.rollcalls.model import EntryStatus, RollCall, RollCallEntry, RollCallState
from hub.rollcalls.report import HEADER, ledger_csv, parse_time, summary
from hub.rollcalls.store import RollCallLedger
from tests.hub.rollcalls.conftest import OC, T2, V2, V3, V4, C, T, V, make_tree

DEC3_UTC = 1796256000.0  # 2026-12-03 00:00:00 UTC = 08:00:00 in Shanghai


@pytest.fixture
def shanghai(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The hub's local time is the machine's: run these in China Standard Time."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def entry(code: str, name: str, status: EntryStatus, **kw: object) -> RollCallEntry:
    e = RollCallEntry(code, name, status)
    for key, value in kw.items():
        setattr(e, key, value)
    return e


def sample() -> RollCall:
    return RollCall(
        id="rc-1",
        room="room-1",
        started_by="county-d",
        started_by_centre=C,
        label="全县",
        timeout=60.0,
        started=DEC3_UTC,
        state=RollCallState.CLOSED,
        entries={
            V: entry(
                V,
                "东关村",
                EntryStatus.ANSWERED,
                answered_by="v-t",
                answered_at=DEC3_UTC + 12.34,
                response_time=12.34,
                auto=True,
            ),
            V2: entry(V2, "西关村", EntryStatus.NO_ANSWER, asked=["v2-t"]),
            V4: entry(V4, "北关村", EntryStatus.OFFLINE),
            V3: entry(
                V3,
                "南街村",
                EntryStatus.ANSWERED,
                answered_by="v3-t",
                answered_at=DEC3_UTC + 65,
                response_time=0.0,
                auto=False,
                snapshot=f"rollcall/rc-1/{V3}.jpg",
            ),
            T: entry(T, "城关镇", EntryStatus.CHECKING, asked=["town-t"]),
        },
    )


def rows_of(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


# -- the CSV ---------------------------------------------------------------------------------------
def test_csv_is_utf8_with_bom_and_crlf(shanghai: None) -> None:
    data = ledger_csv(sample())
    assert data.startswith(b"\xef\xbb\xbf")
    text = data[3:].decode("utf-8")
    lines = text.split("\r\n")
    assert lines[-1] == "" and len(lines) == 1 + 5 + 1  # header, five centres, final CRLF
    assert "\n" not in text.replace("\r\n", "")
    assert "东关村".encode() in data  # the names are not escaped


def test_csv_header_names_both_languages() -> None:
    header = rows_of(ledger_csv(sample()))[0]
    assert header == HEADER
    assert header[0] == "查岗编号 rollcall" and header[4] == "状态 status"
    assert all(" " in h and h.split(" ")[-1].isascii() for h in header)


def test_csv_rows(shanghai: None) -> None:
    rows = {r[1]: r for r in rows_of(ledger_csv(sample()))[1:]}
    assert list(rows) == [V, V2, V4, V3, T]  # the ledger's order
    assert rows[V] == [
        "rc-1",
        V,
        "东关村",
        T,
        "在岗 answered",
        "是",
        "12.3",
        "v-t",
        "是",
        "2026-12-03 08:00:12",
        "",
        "county-d",
        "2026-12-03 08:00:00",
    ]
    assert rows[V2][3:10] == [T, "未应答 no_answer", "否", "", "", "", ""]
    assert rows[V4][4:6] == ["离线 offline", "否"]
    assert rows[V3][3:11] == [
        T2,
        "在岗 answered",
        "是",
        "0.0",  # an instant answer is 0.0, not blank
        "v3-t",
        "否",
        "2026-12-03 08:01:05",
        f"rollcall/rc-1/{V3}.jpg",
    ]
    assert rows[T][3:5] == [T, "查岗中 checking"]  # a township stands for itself


def test_csv_only_keeps_the_centres_in_scope() -> None:
    rows = rows_of(ledger_csv(sample(), only=lambda code: code.startswith(T2)))
    assert [r[1] for r in rows[1:]] == [V3]


def test_csv_of_an_empty_ledger_is_the_header() -> None:
    rc = sample()
    rc.entries = {}
    assert rows_of(ledger_csv(rc)) == [HEADER]


# -- parse_time ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "end", "expected"),
    [
        (None, False, None),
        ("", True, None),
        ("1796256000", False, 1796256000.0),
        ("1796256000.5", True, 1796256000.5),
        ("2026-12-03", False, DEC3_UTC - 8 * 3600),  # local midnight
        ("2026-12-03", True, DEC3_UTC - 8 * 3600 + 86400),  # the whole day
        ("2026-12-03T08:00:00", False, DEC3_UTC),  # local time
        ("2026-12-03T08:00:00", True, DEC3_UTC),  # end= only widens a date
        ("2026-12-03T00:00:00+00:00", False, DEC3_UTC),  # an offset wins
        ("2026-12-03 08:30", False, DEC3_UTC + 1800),
    ],
)
def test_parse_time(shanghai: None, value: str | None, end: bool, expected: float | None) -> None:
    assert parse_time(value, end=end) == expected


@pytest.mark.parametrize(
    "value", ["yesterday", "2026-13-01", "2026-12-32", "12/03/2026", "2026-12-03T25:00", "1e"]
)
def test_parse_time_refuses_garbage(value: str) -> None:
    with pytest.raises(Invalid, match="not a date"):
        parse_time(value)


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity"])
def test_parse_time_refuses_non_finite_numbers(value: str) -> None:
    with pytest.raises(Invalid):
        parse_time(value)


# -- the summary over real ledger rows ----------------------------------------------------------
@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[RollCallLedger]:
    db = Database(tmp_path / "ledger.sqlite3")
    await db.open()
    ledger = RollCallLedger(db)
    assert await ledger.open() == 0
    yield ledger
    await db.close()


def closed(
    rc_id: str, started: float, entries: list[RollCallEntry], state: str = "closed"
) -> RollCall:
    return RollCall(
        id=rc_id,
        room=f"room-{rc_id}",
        started_by="county-d",
        started_by_centre=C,
        label=rc_id,
        timeout=60.0,
        started=started,
        state=RollCallState(state),
        entries={e.centre: e for e in entries},
        closed_at=started + 60 if state == "closed" else None,
        close_reason="timeout" if state == "closed" else None,
    )


def ans(code: str, rt: float) -> RollCallEntry:
    return entry(code, "x", EntryStatus.ANSWERED, response_time=rt, answered_by="t")


def miss(code: str, status: EntryStatus = EntryStatus.NO_ANSWER) -> RollCallEntry:
    return entry(code, {V4: "北关村", V2: "西关村", V3: "南街村"}.get(code, "x"), status)


@pytest.fixture
async def filled(ledger: RollCallLedger) -> RollCallLedger:
    """Window [1000, 2000): rc1, rc2, rc6 count; rc3 runs; rc4 and rc5 are outside."""
    for rc in (
        closed("rc1", 1000, [ans(V, 2.0), ans(V2, 4.0), miss(V4, EntryStatus.OFFLINE)]),
        closed("rc2", 1500, [ans(V, 3.5), miss(V2), miss(V4), ans(V3, 1.0)]),
        closed("rc6", 1800, [miss(V4)]),
        closed("rc3", 1999, [ans(V4, 9.0), ans(V3, 9.0)], state="running"),
        closed("rc4", 2000, [miss(V3), ans(V4, 9.0)]),
        closed("rc5", 999, [miss(V), ans(V4, 9.0)]),
    ):
        await ledger.save(ledger.snapshot(rc))
    return ledger


async def test_summary_per_township(filled: RollCallLedger) -> None:
    totals, never = await filled.summary_rows(C, 1000, 2000)
    assert summary(make_tree(), totals, never) == [
        {
            "township": T,
            "name": "城关镇",
            "rollcalls": 3,
            "checks": 7,
            "answered": 3,
            "answered_pct": 42.9,
            "mean_response": 3.17,  # (2.0 + 4.0 + 3.5) / 3, answered checks only
            "never_answered": [{"code": V4, "name": "北关村", "checks": 3}],
        },
        {
            "township": T2,
            "name": "马庄桥镇",
            "rollcalls": 1,
            "checks": 1,
            "answered": 1,
            "answered_pct": 100.0,
            "mean_response": 1.0,
            "never_answered": [],
        },
    ]


@pytest.mark.parametrize(
    ("scope", "townships"),
    [(C, [T, T2]), (T, [T]), (T2, [T2]), (V4, [T]), (OC, [])],
)
async def test_summary_scope(filled: RollCallLedger, scope: str, townships: list[str]) -> None:
    totals, never = await filled.summary_rows(scope, 1000, 2000)
    assert [s["township"] for s in summary(make_tree(), totals, never)] == townships


async def test_summary_of_a_village_that_never_answered(filled: RollCallLedger) -> None:
    totals, never = await filled.summary_rows(V4, 1000, 2000)
    [row] = summary(make_tree(), totals, never)
    assert (row["checks"], row["answered"], row["answered_pct"], row["mean_response"]) == (
        3,
        0,
        0.0,
        None,
    )
    assert row["never_answered"] == [{"code": V4, "name": "北关村", "checks": 3}]


async def test_summary_window_is_half_open(filled: RollCallLedger) -> None:
    totals, never = await filled.summary_rows(T2, 1000, 2001)  # now rc4 counts
    [row] = summary(make_tree(), totals, never)
    assert (row["checks"], row["answered"], row["rollcalls"]) == (2, 1, 2)
    totals, _ = await filled.summary_rows(C, 2001, 3000)
    assert totals == []


async def test_summary_names_an_unknown_township_by_its_code(filled: RollCallLedger) -> None:
    totals, never = await filled.summary_rows(T2, 1000, 2000)
    tree = CentreTree([CentreConfig(code=C, name="清丰县")])
    assert [(s["township"], s["name"]) for s in summary(tree, totals, never)] == [(T2, T2)]


async def test_summary_counts_closed_roll_calls_after_an_interrupted_start(
    filled: RollCallLedger,
) -> None:
    # rc3 was left running: reopening closes it (interrupted) and it then counts
    assert await filled.open() == 1
    totals, never = await filled.summary_rows(T2, 1000, 2000)
    [row] = summary(make_tree(), totals, never)
    assert (row["rollcalls"], row["checks"], row["answered"]) == (2, 2, 2)
    assert row["mean_response"] == 5.0


@pytest.mark.parametrize("value", ["9999-12-31", "9999-12-31T23:59:59"])
def test_parse_time_of_the_last_day_is_a_refusal_or_a_time_never_a_crash(
    shanghai: None, value: str
) -> None:
    """Found by the outside check: `summary?to=9999-12-31` answered 500 (the day after it
    does not exist)."""
    try:
        seconds = parse_time(value, end=True)
    except Invalid:
        return
    assert seconds is not None and seconds > 0
