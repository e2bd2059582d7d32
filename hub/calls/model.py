"""One call: a caller rings one or more targets (a centre, or a named person); each target
answers, declines, is missed at the timeout or is cancelled by the caller.

Per target: `ringing → accepted | declined | missed | cancelled`; every other move is refused
(409) and each move is logged `old -> new` through `CallTarget.move`. The call itself is
`ringing` (nobody answered yet), `active` (someone accepted; it lasts as long as its room) or
`ended`. A target's duration runs from its acceptance to its answerer leaving the room, or
the call's end.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from hub.core.auth import Principal
from hub.core.errors import Conflict
from hub.core.presence import Member, Status

log = logging.getLogger(__name__)


class TargetState(enum.StrEnum):
    RINGING = "ringing"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    MISSED = "missed"
    CANCELLED = "cancelled"


MOVES: dict[TargetState, frozenset[TargetState]] = {
    TargetState.RINGING: frozenset(
        {TargetState.ACCEPTED, TargetState.DECLINED, TargetState.MISSED, TargetState.CANCELLED}
    ),
}


class CallState(enum.StrEnum):
    RINGING = "ringing"
    ACTIVE = "active"
    ENDED = "ended"


@dataclass
class CallTarget:
    centre: str  # the centre rung; for a person, that person's centre
    centre_name: str
    user: str | None = None  # a named person; None: everyone connected at the centre
    state: TargetState = TargetState.RINGING
    rung: list[str] = field(default_factory=list)  # who got `call.ringing`
    answered_by: str | None = None
    settled_at: float | None = None
    accepted_at: float | None = None
    ended_at: float | None = None

    @property
    def key(self) -> str:
        return self.user or self.centre

    @property
    def duration(self) -> float | None:
        if self.accepted_at is None or self.ended_at is None:
            return None
        return round(max(0.0, self.ended_at - self.accepted_at), 3)

    def move(self, call_id: str, new: TargetState, by: str | None = None) -> None:
        if new not in MOVES.get(self.state, frozenset()):
            raise Conflict(f"call {call_id} to {self.key} is {self.state}: it cannot become {new}")
        log.info("call %s target %s: %s -> %s (%s)", call_id, self.key, self.state, new, by)
        self.state = new
        self.settled_at = time.time()
        if new is TargetState.ACCEPTED:
            self.accepted_at = self.settled_at
            self.answered_by = by
        elif new is TargetState.DECLINED:
            self.answered_by = by

    def rings(self, who: Principal) -> bool:
        """Is `who` one of the people this target rings (the person, or anyone there)?"""
        if self.user is not None:
            return self.user == who.user
        return self.centre == who.centre

    def to_json(self) -> dict[str, object]:
        return {
            "centre": self.centre,
            "centre_name": self.centre_name,
            "user": self.user,
            "state": str(self.state),
            "rung": list(self.rung),
            "answered_by": self.answered_by,
            "settled_at": self.settled_at,
            "accepted_at": self.accepted_at,
            "ended_at": self.ended_at,
            "duration": self.duration,
        }


@dataclass
class Call:
    id: str
    room: str
    caller: str
    caller_role: str
    caller_centre: str
    title: str
    timeout: float
    targets: list[CallTarget]
    created: float = field(default_factory=time.time)
    state: CallState = CallState.RINGING
    ended_at: float | None = None
    end_reason: str | None = None

    @property
    def expires_at(self) -> float:
        return self.created + self.timeout

    @property
    def ended(self) -> bool:
        return self.state is CallState.ENDED

    @property
    def ringing(self) -> list[CallTarget]:
        return [t for t in self.targets if t.state is TargetState.RINGING]

    @property
    def accepted(self) -> list[CallTarget]:
        return [t for t in self.targets if t.state is TargetState.ACCEPTED]

    def set_state(self, new: CallState) -> None:
        if self.state is not new:
            log.info("call %s: %s -> %s", self.id, self.state, new)
            self.state = new

    def people(self) -> set[str]:
        """Everyone the call's events go to: the caller, who was rung, who answered."""
        out = {self.caller}
        for t in self.targets:
            out.update(t.rung)
            if t.user:
                out.add(t.user)
            if t.answered_by:
                out.add(t.answered_by)
        return out

    def talking(self) -> set[str]:
        """Who is in this call's conversation now: the caller and the answerers."""
        if self.ended:
            return set()
        return {self.caller, *(t.answered_by for t in self.accepted if t.answered_by)}

    def ringing_event(self, target: CallTarget, member: Member | None) -> dict[str, Any]:
        """The `call.ringing` data for one person rung by `target`."""
        status = member.status if member is not None else Status.OFFLINE
        return {
            "call": self.id,
            "room": self.room,
            "from": self.caller,
            "from_centre": self.caller_centre,
            "title": self.title,
            "target": target.key,
            "centre": target.centre,
            "auto_answer": bool(member and member.duty),
            "busy": status in (Status.IN_CALL, Status.BUSY),
            "status": str(status),
            "expires_at": self.expires_at,
        }

    def to_json(self) -> dict[str, object]:
        accepted = [t.accepted_at for t in self.targets if t.accepted_at is not None]
        durations = [d for t in self.targets if (d := t.duration) is not None]
        return {
            "id": self.id,
            "room": self.room,
            "caller": self.caller,
            "caller_role": self.caller_role,
            "caller_centre": self.caller_centre,
            "title": self.title,
            "state": str(self.state),
            "answered": bool(accepted),
            "created": self.created,
            "timeout": self.timeout,
            "expires_at": self.expires_at,
            "answered_at": min(accepted) if accepted else None,
            "ended_at": self.ended_at,
            "end_reason": self.end_reason,
            "duration": max(durations) if durations else None,
            "targets": [t.to_json() for t in self.targets],
        }
