"""Hours and billing periods, all in UTC.

A billing period is a calendar month by default; ``BATON_BILLING_PERIOD``
switches to ISO weeks (Monday to Monday) or days, which is mostly useful for
trying billing out. Periods are the same for every team, so one grouped
query covers all teams of a period.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from billing import conf

HOUR = timedelta(hours=1)


def floor_hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(at: datetime) -> datetime:
    floor = floor_hour(at)
    return floor if floor == at else floor + HOUR


def ceil_day(at: datetime) -> datetime:
    """The first UTC midnight at or after ``at``."""
    at = at.astimezone(UTC)
    floor = at.replace(hour=0, minute=0, second=0, microsecond=0)
    return floor if floor == at else floor + timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime

    def __contains__(self, at: datetime) -> bool:
        return self.start <= at < self.end


def period_of(at: datetime, kind: str | None = None) -> Period:
    """The billing period containing ``at``."""
    kind = kind or conf.billing_period()
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == "day":
        return Period(day, day + timedelta(days=1))
    if kind == "week":
        start = day - timedelta(days=day.weekday())
        return Period(start, start + timedelta(days=7))
    start = day.replace(day=1)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return Period(start, start.replace(year=year, month=month))


def period_from(start: datetime, kind: str | None = None) -> Period:
    """The period beginning at ``start``: normally a whole one, but after a
    change of ``BATON_BILLING_PERIOD`` only the rest of the new kind's period,
    so records never overlap."""
    return Period(start, period_of(start, kind).end)


def periods_between(start: datetime, end: datetime, kind: str | None = None) -> Iterator[Period]:
    """Every period that overlaps [start, end)."""
    at = start
    while at < end:
        period = period_of(at, kind)
        yield period
        at = period.end
