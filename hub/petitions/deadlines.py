"""限时办结: a case's deadline from its category, on a working-day calendar, and its colour.

Deadlines are "Nh" (hours, on the clock) or "Nwd" (working days: the same clock time N working
days later; weekends per `workdays` and listed holidays do not count). Colours (红黄蓝): blue
while under 75 % of the allowed time, yellow past 75 %, red past the deadline. A resolved case
keeps the colour it had when resolved.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from config.schema import DEADLINE_RE, PetitionsConfig
from hub.petitions.model import Case, Category

DEFAULT = "7wd"
YELLOW_AT = 0.75


class Deadlines:
    def __init__(self, config: PetitionsConfig) -> None:
        self.config = config
        self.tz = ZoneInfo(config.timezone)
        self.holidays = {dt.date.fromisoformat(d) for d in config.holidays}
        self.workdays = set(config.workdays)

    def rule(self, category: Category, urgent: bool) -> str:
        key = "urgent" if urgent else str(category)
        return self.config.deadlines.get(key) or ("2h" if urgent else DEFAULT)

    def due(self, created: float, category: Category, urgent: bool) -> float:
        match = DEADLINE_RE.match(self.rule(category, urgent))
        assert match is not None  # checked by the config schema
        if match.group(3) == "h":
            return created + float(match.group(1)) * 3600
        return self.add_working_days(created, int(match.group(4)))

    def working(self, day: dt.date) -> bool:
        return day.isoweekday() in self.workdays and day not in self.holidays

    def add_working_days(self, start: float, days: int) -> float:
        moment = dt.datetime.fromtimestamp(start, self.tz)
        day, left = moment.date(), days
        for _ in range(days * 7 + 400):  # bounded: a calendar with no working day ends too
            if left <= 0:
                break
            day += dt.timedelta(days=1)
            if self.working(day):
                left -= 1
        end = dt.datetime.combine(day, moment.timetz().replace(tzinfo=None), self.tz)
        return end.timestamp()

    def day_code(self, at: float) -> str:
        """YYYYMMDD in the hub's time zone (the case code's day)."""
        return dt.datetime.fromtimestamp(at, self.tz).strftime("%Y%m%d")


def colour(case: Case, now: float) -> str:
    """blue | yellow | red for the deadline of `case` at `now` (or when it was resolved)."""
    at = case.resolved_at if case.resolved_at is not None else now
    return colour_at(case.created, case.due_at, at)


def colour_at(created: float, due_at: float, at: float) -> str:
    """blue | yellow | red at `at` for a deadline running from `created` to `due_at`."""
    span = max(due_at - created, 1.0)
    if at > due_at:
        return "red"
    if (at - created) / span >= YELLOW_AT:
        return "yellow"
    return "blue"
