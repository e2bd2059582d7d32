"""One roll call (一键查岗) and its ledger entries, one per centre checked.

Entry states: `checking` (its duty terminals were asked) → `answered` | `no_answer` (the
timeout passed); `offline` (no duty terminal was connected when the roll call started) →
`answered` if one connects and answers in time, else it stays `offline`. Moves are made
through `RollCallEntry.move`, which refuses others (409) and logs `old -> new`.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hub.core.centres import township_of
from hub.core.errors import Conflict

log = logging.getLogger(__name__)


class EntryStatus(enum.StrEnum):
    CHECKING = "checking"
    OFFLINE = "offline"
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"


MOVES: dict[EntryStatus, frozenset[EntryStatus]] = {
    EntryStatus.CHECKING: frozenset({EntryStatus.ANSWERED, EntryStatus.NO_ANSWER}),
    EntryStatus.OFFLINE: frozenset({EntryStatus.ANSWERED}),
}


class RollCallState(enum.StrEnum):
    RUNNING = "running"
    CLOSED = "closed"


@dataclass
class RollCallEntry:
    centre: str
    centre_name: str
    status: EntryStatus
    asked: list[str] = field(default_factory=list)  # duty terminals sent `rollcall.check`
    answered_by: str | None = None
    answered_at: float | None = None
    response_time: float | None = None  # seconds from the start to the answer
    auto: bool | None = None  # answered automatically (true) or by pressing 在岗 (false)
    snapshot: str | None = None  # path under the data dir

    @property
    def answered(self) -> bool:
        return self.status is EntryStatus.ANSWERED

    @property
    def township(self) -> str:
        return township_of(self.centre)

    def move(self, rollcall_id: str, new: EntryStatus) -> None:
        if new not in MOVES.get(self.status, frozenset()):
            raise Conflict(f"roll call {rollcall_id} at {self.centre} is {self.status}: not {new}")
        log.info("roll call %s %s: %s -> %s", rollcall_id, self.centre, self.status, new)
        self.status = new

    def to_json(self) -> dict[str, object]:
        return {
            "centre": self.centre,
            "centre_name": self.centre_name,
            "township": self.township,
            "status": str(self.status),
            "answered": self.answered,
            "asked": list(self.asked),
            "answered_by": self.answered_by,
            "answered_at": self.answered_at,
            "response_time": self.response_time,
            "auto": self.auto,
            "has_snapshot": self.snapshot is not None,
        }


@dataclass
class RollCall:
    id: str
    room: str
    started_by: str
    started_by_centre: str
    label: str
    timeout: float
    entries: dict[str, RollCallEntry]
    started: float = field(default_factory=time.time)
    state: RollCallState = RollCallState.RUNNING
    closed_at: float | None = None
    close_reason: str | None = None

    @property
    def expires_at(self) -> float:
        return self.started + self.timeout

    @property
    def running(self) -> bool:
        return self.state is RollCallState.RUNNING

    def set_state(self, new: RollCallState) -> None:
        if self.state is not new:
            log.info("roll call %s: %s -> %s", self.id, self.state, new)
            self.state = new

    def counts(self) -> dict[str, int]:
        out = {str(s): 0 for s in EntryStatus}
        for e in self.entries.values():
            out[str(e.status)] += 1
        return out

    def to_json(
        self, only: Callable[[str], bool] | None = None, *, entries: bool = True
    ) -> dict[str, object]:
        shown = [e for e in self.entries.values() if only is None or only(e.centre)]
        counts = self.counts()
        body: dict[str, object] = {
            "id": self.id,
            "room": self.room,
            "started_by": self.started_by,
            "started_by_centre": self.started_by_centre,
            "label": self.label,
            "timeout": self.timeout,
            "started": self.started,
            "expires_at": self.expires_at,
            "state": str(self.state),
            "closed_at": self.closed_at,
            "close_reason": self.close_reason,
            "centres": len(self.entries),
            "answered": counts["answered"],
            "not_answered": len(self.entries) - counts["answered"],
        }
        if entries:
            body["entries"] = [e.to_json() for e in shown]
        return body
