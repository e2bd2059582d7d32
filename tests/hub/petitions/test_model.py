"""The case model on its own: state groups, the people of a case, the JSON forms."""

from __future__ import annotations

from hub.petitions.model import (
    HEARING,
    OPEN,
    WAITING,
    Case,
    Category,
    Entry,
    Outcome,
    Status,
)
from tests.hub.petitions.conftest import MONDAY_9, TOWN, VILLAGE


def case(**changes: object) -> Case:
    c = Case(
        code=f"{VILLAGE}-20261123-0001",
        origin=VILLAGE,
        queue=TOWN,
        category=Category.NEIGHBOURS,
        urgent=False,
        text="噪音",
        origin_user="village-t",
        created=MONDAY_9,
        due_at=MONDAY_9 + 3600,
    )
    for key, value in changes.items():
        setattr(c, key, value)
    return c


def test_state_groups() -> None:
    assert WAITING == (Status.TRIAGED, Status.TRANSFERRED)
    assert HEARING == (Status.IN_HEARING, Status.JOINT_HEARING)
    assert set(OPEN) == {Status.RECEIVED, *WAITING, *HEARING}
    closed = set(Status) - set(OPEN)
    assert closed == {Status.RESOLVED, Status.FOLLOWED_UP, Status.ARCHIVED}


def test_defaults_of_a_new_case() -> None:
    c = case()
    assert (c.status, c.queued_at, c.outcome, c.room, c.host) == (
        Status.RECEIVED,
        0.0,
        None,
        None,
        None,
    )
    assert c.invited == [] and case().invited is not c.invited  # no shared default list
    assert (c.satisfaction, c.resolved_at, c.overdue_at, c.link_iat) == (None, None, None, 0)


def test_people_of_a_case() -> None:
    c = case()
    assert c.petitioner == f"petitioner:{VILLAGE}-20261123-0001"
    assert c.people() == {"village-t", c.petitioner}
    heard = case(host="town-r", invited=["county-m", "lawyer"])
    assert heard.people() == {"village-t", heard.petitioner, "town-r", "county-m", "lawyer"}


def test_case_json() -> None:
    c = case(
        status=Status.RESOLVED,
        outcome=Outcome.COURT,
        invited=["county-m"],
        host="town-r",
        room="r1",
        satisfaction=None,
        resolved_at=MONDAY_9 + 60,
        followup_at=MONDAY_9 + 86400,
    )
    assert c.to_json() == {
        "code": c.code,
        "origin": VILLAGE,
        "queue": TOWN,
        "category": "neighbours",
        "urgent": False,
        "text": "噪音",
        "origin_user": "village-t",
        "status": "resolved",
        "status_label": "办结",
        "outcome": "court",
        "created": MONDAY_9,
        "queued_at": 0.0,
        "due_at": MONDAY_9 + 3600,
        "resolved_at": MONDAY_9 + 60,
        "overdue_at": None,
        "room": "r1",
        "host": "town-r",
        "invited": ["county-m"],
        "satisfaction": None,
        "followup_call": None,
        "followup_at": MONDAY_9 + 86400,
    }
    assert "link_iat" not in c.to_json()  # never shown
    assert c.to_json()["invited"] is not c.invited  # a copy


def test_entry_json() -> None:
    entry = Entry("c", 5.0, "town-r", "resolve", "in_hearing", "resolved", "ok", {"outcome": "x"})
    assert entry.to_json() == {
        "at": 5.0,
        "actor": "town-r",
        "action": "resolve",
        "from": "in_hearing",
        "to": "resolved",
        "note": "ok",
        "data": {"outcome": "x"},
    }
    bare = Entry("c", 1.0, "system", "overdue")
    assert (bare.status_from, bare.status_to, bare.note, bare.data) == (None, None, "", {})
