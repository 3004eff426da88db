"""The usage ledger's daily partitions on PostgreSQL.

``billing_usagerecord`` is a table partitioned by range on ``created_at`` (the request's
start, which every writer of a request sends identically: ``billing.events.UsageEvent``), one
partition per UTC day named ``billing_usagerecord_pYYYYMMDD``, plus a DEFAULT partition
``billing_usagerecord_default`` for a row whose day has no partition yet, so no row is ever
refused or lost. Billing migration ``0011_partitioned_usage_ledger`` made the table; on SQLite
(the embedded default) it stays a plain table and everything here does nothing.

Why a day: at 1,000 requests per second a day is 86 million rows, about the largest table
whose indexes still stay cached and rebuild in minutes; an hour (3.6 million rows) would give
2,160 partitions at the default 90 days of retention, and planning and locking cost grows with
the number of partitions a query may touch; a month would be 2.6 billion rows, and retention
could only drop a month at a time. A day holds every hour a rollup reads, and retention
drops one day at a time.

- ``ensure`` (the ``billing.ensure_ledger_partitions`` task every hour, after every
  ``migrate`` and at the start of ``manage.py consume_usage``) creates today's partition and
  the next ``AHEAD_DAYS``, and moves any row the DEFAULT partition caught into a partition of
  its own day (created for it): the DEFAULT partition is detached, an empty one takes its
  place, and its rows go back in through the parent, all in one transaction, so a concurrent
  insert waits rather than fails. A row far from today (clock skew) is logged at error.
- ``drop_expired`` is retention (``billing.ledger.prune``): whole partitions whose day ended
  before the cutoff are dropped, never a row deleted, and a partition that still holds a row
  whose money is not in the credit ledger is kept until ``charge_usage`` has debited it.

Dropping a partition fires no row trigger (like TRUNCATE, billing migration 0006): it is this
module's operation, guarded by the same rule the trigger applies to retention.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import connection, transaction

log = logging.getLogger("baton.billing")

TABLE = "billing_usagerecord"
DEFAULT = f"{TABLE}_default"
PREFIX = f"{TABLE}_p"
NAME = re.compile(rf"^{PREFIX}(\d{{8}})$")
DAY = timedelta(days=1)
# Partitions kept ready beyond today. Beat runs ``ensure`` every hour, so a week of failed
# runs passes before a row needs the DEFAULT partition (which still takes it).
AHEAD_DAYS = 7
# Rows the DEFAULT partition caught further than this from today are reported as clock skew.
SKEW = timedelta(days=AHEAD_DAYS + 1)
# Partition DDL waits at most this long for the table's lock, then gives up until the next run
# (rather than queueing every insert behind it while a long query runs).
LOCK_TIMEOUT = "5s"
# One partition job at a time, across processes.
LOCK_ID = 0x6261746F6E01  # "baton" 1


def partitioned() -> bool:
    """True when the ledger is a partitioned table (PostgreSQL after migration 0011)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
        row = cursor.fetchone()
    return bool(row) and row[0] == "p"


def day_of(at: datetime) -> date:
    return at.astimezone(UTC).date()


def start_of(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def name_of(day: date) -> str:
    return f"{PREFIX}{day:%Y%m%d}"


def days() -> list[date]:
    """The days that have a partition, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [TABLE],
        )
        names = [row[0] for row in cursor.fetchall()]
    found = []
    for name in names:
        match = NAME.match(name)
        if match:
            found.append(datetime.strptime(match.group(1), "%Y%m%d").date())
    return sorted(found)


def window(
    since: datetime | None = None, now: datetime | None = None
) -> tuple[datetime, datetime] | None:
    """The span of the unbroken run of daily partitions that holds today, from ``since`` on;
    None where the ledger is not partitioned or today has no partition. A query bounded by
    it is planned against those partitions alone (the DEFAULT partition, which could hold
    any time, is pruned too), so the request log reads the newest partition and stops. What
    it leaves out: a row the DEFAULT partition caught in the last hour, until ``ensure``
    moves it, and rows dated beyond a gap in the partitions (a clock days off)."""
    if not partitioned():
        return None
    today = day_of(now or datetime.now(UTC))
    have = set(days())
    if today not in have:
        return None
    first = last = today
    while first - DAY in have:
        first -= DAY
    while last + DAY in have:
        last += DAY
    start = start_of(first)
    if since is not None:
        start = max(start, since)
    return start, start_of(last + DAY)


def _create(cursor: Any, day: date) -> None:
    start, end = start_of(day), start_of(day + DAY)
    cursor.execute(
        f'CREATE TABLE IF NOT EXISTS "{name_of(day)}" PARTITION OF "{TABLE}" '
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    )


def _locked(cursor: Any) -> None:
    cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_ID])


def _checked(cursor: Any) -> None:
    """Run the foreign key checks still deferred in the enclosing transaction (rows written
    earlier in it): PostgreSQL drops no table with checks pending on it."""
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def create_days(wanted: list[date]) -> list[date]:
    """Partitions for these days, where missing (rows for them in the DEFAULT partition are
    moved by ``ensure``); returns the days created."""
    if not partitioned():
        return []
    created = []
    with transaction.atomic(), connection.cursor() as cursor:
        _locked(cursor)
        have = set(days())
        for day in sorted(set(wanted) - have):
            _create(cursor, day)
            created.append(day)
    return created


@dataclass
class EnsureRun:
    created: list[date] = field(default_factory=list)  # all days created, moved_days among them
    moved: int = 0  # rows moved out of the DEFAULT partition
    moved_days: list[date] = field(default_factory=list)  # days created for those rows


def ensure(now: datetime | None = None, ahead: int = AHEAD_DAYS) -> EnsureRun:
    """Today's partition and the next ``ahead`` days exist, and the DEFAULT partition is
    empty. Does nothing where the ledger is not partitioned."""
    run = EnsureRun()
    if not partitioned():
        return run
    today = day_of(now or datetime.now(UTC))
    # The DEFAULT partition first: PostgreSQL refuses a partition for a day it holds rows of.
    run.moved, run.moved_days = move_default(now)
    run.created = run.moved_days + create_days(
        [today + timedelta(days=n) for n in range(ahead + 1)]
    )
    if run.created:
        log.info("ledger partitions created: %s", ", ".join(map(str, sorted(run.created))))
    return run


def move_default(now: datetime | None = None) -> tuple[int, list[date]]:
    """Give every row in the DEFAULT partition a partition of its day; returns the rows moved
    and the days created for them."""
    if not partitioned():
        return 0, []
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT 1 FROM "{DEFAULT}" LIMIT 1')  # noqa: S608 (a constant)
        if cursor.fetchone() is None:
            return 0, []
    now = now or datetime.now(UTC)
    with transaction.atomic(), connection.cursor() as cursor:
        _locked(cursor)
        # Detaching takes the parent's ACCESS EXCLUSIVE lock: inserts wait for this
        # transaction, and the rows are never outside the ledger as others see it.
        cursor.execute(f'ALTER TABLE "{TABLE}" DETACH PARTITION "{DEFAULT}"')
        cursor.execute(f'ALTER TABLE "{DEFAULT}" RENAME TO "{DEFAULT}_moving"')
        cursor.execute(f'CREATE TABLE "{DEFAULT}" PARTITION OF "{TABLE}" DEFAULT')
        cursor.execute(
            f"SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date FROM \"{DEFAULT}_moving\""  # noqa: S608
        )
        found = sorted(row[0] for row in cursor.fetchall())
        have = set(days())
        for day in found:
            if day not in have:
                _create(cursor, day)
        cursor.execute(f'INSERT INTO "{TABLE}" SELECT * FROM "{DEFAULT}_moving"')  # noqa: S608
        moved = cursor.rowcount
        _checked(cursor)
        cursor.execute(f'DROP TABLE "{DEFAULT}_moving"')
    skewed = [d for d in found if abs(start_of(d) - now) > SKEW]
    if skewed:
        log.error(
            "usage rows dated far from today (clock skew?) were in the ledger's default "
            "partition; moved to partitions of their own: %s",
            ", ".join(map(str, skewed)),
        )
    log.warning("moved %d usage rows out of the ledger's default partition", moved)
    return moved, [day for day in found if day not in have]


def drop_expired(cutoff: datetime) -> tuple[int, list[date]]:
    """Drop the partitions of days that ended at or before ``cutoff`` and whose every row's
    money is in the credit ledger; returns the rows they held and the days dropped."""
    if not partitioned():
        return 0, []
    move_default()
    dropped: list[date] = []
    rows = 0
    for day in days():
        if start_of(day + DAY) > cutoff:
            break
        name = name_of(day)
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT count(*) FROM "{name}"')  # noqa: S608 (name_of: a date)
            count = cursor.fetchone()[0]
        with transaction.atomic(), connection.cursor() as cursor:
            _locked(cursor)
            # Under the parent's lock no insert can land in the partition between the check
            # and the drop.
            cursor.execute(f'LOCK TABLE "{TABLE}" IN ACCESS EXCLUSIVE MODE')
            cursor.execute(
                f'SELECT 1 FROM "{name}" WHERE credit_entry_id IS NULL '  # noqa: S608
                "AND (cost IS NULL OR cost > 0) LIMIT 1"
            )
            if cursor.fetchone() is not None:
                log.info("ledger partition %s kept: usage in it is not debited yet", name)
                continue
            _checked(cursor)
            cursor.execute(f'DROP TABLE "{name}"')
        rows += count
        dropped.append(day)
    if dropped:
        log.info("ledger partitions dropped: %s (%d rows)", ", ".join(map(str, dropped)), rows)
    return rows, dropped
