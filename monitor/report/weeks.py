"""ISO weeks in Kyiv time: parsing ``2026-W47``, the default week, and their bounds."""

from __future__ import annotations

import dataclasses
import re
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

KYIV = ZoneInfo("Europe/Kyiv")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


@dataclasses.dataclass(frozen=True)
class Week:
    """One ISO week, Monday 00:00 to the next Monday 00:00, Kyiv time."""

    year: int
    number: int

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.number:02d}"

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.number, 1)

    @property
    def sunday(self) -> date:
        return self.monday + timedelta(days=6)

    @property
    def start(self) -> datetime:
        """Monday 00:00 Kyiv, as an aware datetime."""
        return datetime.combine(self.monday, time(0), KYIV)

    @property
    def end(self) -> datetime:
        """The next Monday 00:00 Kyiv (exclusive)."""
        return datetime.combine(self.monday + timedelta(days=7), time(0), KYIV)

    def shifted(self, weeks: int) -> Week:
        return week_of(self.monday + timedelta(weeks=weeks))

    def __str__(self) -> str:
        return self.label


def week_of(day: date) -> Week:
    year, number, _ = day.isocalendar()
    return Week(year, number)


def week_containing(moment: datetime) -> Week:
    """The ISO week (Kyiv time) that ``moment`` falls in, e.g. the week of a pinned snapshot clock."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return week_of(moment.astimezone(KYIV).date())


def parse_week(text: str) -> Week:
    """``2026-W47`` → Week; ValueError with the expected form otherwise."""
    match = _WEEK.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not an ISO week; write it as 2026-W47")
    year, number = int(match.group(1)), int(match.group(2))
    try:
        date.fromisocalendar(year, number, 1)
    except ValueError:
        raise ValueError(f"{text!r}: {year} has no ISO week {number}") from None
    return Week(year, number)


def last_complete_week(clock: datetime | None = None) -> Week:
    """The last ISO week that ended at or before ``clock`` (default now), in Kyiv time.

    On Monday 07:00 (the scheduler's weekly run) that is the week that ended seven hours earlier.
    """
    clock = clock or datetime.now(timezone.utc)
    if clock.tzinfo is None:
        clock = clock.replace(tzinfo=timezone.utc)
    today = clock.astimezone(KYIV).date()
    return week_of(today - timedelta(days=today.weekday() + 7))
