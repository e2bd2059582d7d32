"""The petition case (一案一码): its states, categories, legal moves and JSON form.

A case is created `received` (受理) and routed at once to a queue (`triaged`, 分诊). A
receptionist accepts it (`in_hearing`, 接诊); it may be transferred to another centre's queue
(`transferred`, 转诊) or widened to a joint hearing (`joint_hearing`, 会诊); it is resolved
(`resolved`, 办结, with an outcome), followed up (`followed_up`, 回访) and archived (`archived`,
归档). `MOVES` is the one table of legal transitions; every move is a timeline entry.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Status(enum.StrEnum):
    RECEIVED = "received"  # 受理
    TRIAGED = "triaged"  # 分诊: waiting in a queue
    IN_HEARING = "in_hearing"  # 接诊
    TRANSFERRED = "transferred"  # 转诊: waiting in another centre's queue
    JOINT_HEARING = "joint_hearing"  # 会诊
    RESOLVED = "resolved"  # 办结
    FOLLOWED_UP = "followed_up"  # 回访
    ARCHIVED = "archived"  # 归档


class Category(enum.StrEnum):
    WAGE_ARREARS = "wage_arrears"  # 欠薪
    LAND = "land"  # 土地
    NEIGHBOURS = "neighbours"  # 邻里
    FAMILY = "family"  # 婚姻家庭
    PROPERTY = "property"  # 物业
    LABOUR = "labour"  # 劳动
    OTHER = "other"  # 其他


class Outcome(enum.StrEnum):
    MEDIATED = "mediated"  # 调解成功
    ARBITRATION = "arbitration"  # 转仲裁
    COURT = "court"  # 诉讼
    NOT_ACCEPTED = "not_accepted"  # 不予受理


WAITING = (Status.TRIAGED, Status.TRANSFERRED)
HEARING = (Status.IN_HEARING, Status.JOINT_HEARING)
OPEN = (Status.RECEIVED, *WAITING, *HEARING)  # the deadline runs

# action → (states it may start from, state it leads to)
MOVES: dict[str, tuple[tuple[Status, ...], Status]] = {
    "triage": ((Status.RECEIVED,), Status.TRIAGED),
    "accept": (WAITING, Status.IN_HEARING),
    "transfer": ((*WAITING, *HEARING), Status.TRANSFERRED),
    "invite": (HEARING, Status.JOINT_HEARING),
    "resolve": ((*WAITING, *HEARING), Status.RESOLVED),
    "followup": ((Status.RESOLVED,), Status.FOLLOWED_UP),
    "archive": ((Status.FOLLOWED_UP,), Status.ARCHIVED),
    "interrupted": (HEARING, Status.TRIAGED),  # the hub stopped during the hearing
    "hearing_ended": (HEARING, Status.TRIAGED),  # the host ended the room without resolving
}

LABELS = {
    Status.RECEIVED: "受理",
    Status.TRIAGED: "分诊",
    Status.IN_HEARING: "接诊",
    Status.TRANSFERRED: "转诊",
    Status.JOINT_HEARING: "会诊",
    Status.RESOLVED: "办结",
    Status.FOLLOWED_UP: "回访",
    Status.ARCHIVED: "归档",
}


class IllegalMove(Exception):
    """A lifecycle move the case's state does not allow (HTTP 409)."""


def check_move(code: str, status: Status, action: str) -> Status:
    """The state `action` leads to from `status`; `IllegalMove` with a readable reason."""
    sources, target = MOVES[action]
    if status not in sources:
        allowed = ", ".join(f"{s} ({LABELS[s]})" for s in sources)
        raise IllegalMove(
            f"case {code} is {status} ({LABELS[status]}): {action} is only allowed from {allowed}"
        )
    return target


@dataclass
class Case:
    code: str
    origin: str  # the centre the request came from (village terminal or link)
    queue: str  # the township or county centre whose queue holds it
    category: Category
    urgent: bool
    text: str
    origin_user: str  # the kiosk terminal (or staff member) that made the request
    created: float
    due_at: float
    status: Status = Status.RECEIVED
    queued_at: float = 0.0
    outcome: Outcome | None = None
    room: str | None = None
    host: str | None = None
    invited: list[str] = field(default_factory=list)
    satisfaction: int | None = None
    resolved_at: float | None = None
    overdue_at: float | None = None  # flagged to the centre above
    link_iat: int = 0  # the newest petitioner link's serial: links with a lower one are void
    followup_call: str | None = None
    followup_at: float | None = None  # a call back scheduled for then

    @property
    def petitioner(self) -> str:
        return f"petitioner:{self.code}"

    def people(self) -> set[str]:
        """Users told about the case in person (events): the requester's side and invitees."""
        return {
            self.origin_user,
            self.petitioner,
            *self.invited,
            *([self.host] if self.host else []),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "origin": self.origin,
            "queue": self.queue,
            "category": str(self.category),
            "urgent": self.urgent,
            "text": self.text,
            "origin_user": self.origin_user,
            "status": str(self.status),
            "status_label": LABELS[self.status],
            "outcome": str(self.outcome) if self.outcome else None,
            "created": self.created,
            "queued_at": self.queued_at,
            "due_at": self.due_at,
            "resolved_at": self.resolved_at,
            "overdue_at": self.overdue_at,
            "room": self.room,
            "host": self.host,
            "invited": list(self.invited),
            "satisfaction": self.satisfaction,
            "followup_call": self.followup_call,
            "followup_at": self.followup_at,
        }


@dataclass(frozen=True, slots=True)
class Entry:
    """One timeline entry: a move, a note, an invitation, a flag."""

    code: str
    at: float
    actor: str
    action: str
    status_from: str | None = None
    status_to: str | None = None
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "from": self.status_from,
            "to": self.status_to,
            "note": self.note,
            "data": self.data,
        }
