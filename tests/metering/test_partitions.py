"""The ledger's daily partitions on PostgreSQL (billing/partitions.py, billing migration 0011):
made ahead, a row without a partition caught and moved, retention by whole partitions, the
unique key (request id, time) deduplicating across batches and partitions, bulk
ingestion, and query plans that read one partition."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import Team
from billing import partitions, rollups
from billing.ledger import ingest, prune
from billing.models import HourlyUsage, UsageRecord
from billing.periods import HOUR, floor_hour
from billing.rollups import rollup
from billing.usage import charge_usage
from billing.usage_views import log_records
from tests.metering.conftest import Metered, event

PARTITION = re.compile(r"billing_usagerecord_(?:p\d{8}|default)")


def sql(query: str, *params: Any) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def partition_of(request_id: str) -> list[str]:
    return [
        row[0]
        for row in sql(
            "SELECT tableoid::regclass::text FROM billing_usagerecord WHERE request_id = %s",
            request_id,
        )
    ]


def today() -> datetime:
    return partitions.start_of(partitions.day_of(timezone.now()))


def test_the_ledger_is_partitioned_by_day_a_week_ahead_with_the_trigger_on_each(
    metered: Metered,
) -> None:
    partitions.ensure()
    assert partitions.partitioned()
    day = partitions.day_of(timezone.now())
    have = partitions.days()
    assert all(day + timedelta(days=n) in have for n in range(partitions.AHEAD_DAYS + 1))
    children = [
        row[0]
        for row in sql(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'billing_usagerecord'::regclass"
        )
    ]
    assert partitions.DEFAULT in children
    assert len(children) == len(have) + 1
    untriggered = sql(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'billing_usagerecord'::regclass AND NOT EXISTS ("
        "  SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid "
        "  AND t.tgname = 'billing_usagerecord_append_only')"
    )
    assert untriggered == []


def test_a_partition_made_later_is_append_only_too(metered: Metered) -> None:
    later = partitions.day_of(timezone.now()) + timedelta(days=40)
    assert partitions.create_days([later]) == [later]
    acme = metered.cast.acme
    row = event(acme.pk, None, partitions.start_of(later) + timedelta(hours=5))
    ingest([row])
    assert partition_of(row.request_id) == [partitions.name_of(later)]
    for statement in (
        "UPDATE billing_usagerecord SET status = 500 WHERE request_id = %s",
        "DELETE FROM billing_usagerecord WHERE request_id = %s",
    ):
        with (
            pytest.raises(IntegrityError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [row.request_id])


def test_a_replayed_event_is_ignored_and_the_first_copy_kept(metered: Metered) -> None:
    acme = metered.cast.acme
    first = event(acme.pk, None, timezone.now() - timedelta(minutes=3), prompt=100)
    # The same request again with other counts (a late settle after an estimate, say).
    again = event(
        acme.pk,
        None,
        datetime.fromtimestamp(first.created_at, UTC),
        prompt=999,
        request_id=first.request_id,
    )
    assert again.created_at == first.created_at
    ingest([first])
    ingest([again])
    ingest([first, again])
    rows = UsageRecord.objects.filter(request_id=first.request_id)
    assert rows.count() == 1
    assert rows.get().prompt_tokens == 100


def test_a_bulk_batch_with_duplicates_writes_each_request_once(metered: Metered) -> None:
    acme, globex = metered.cast.acme, metered.cast.globex
    at = timezone.now() - timedelta(hours=2)
    earlier = [event(acme.pk, None, at - timedelta(seconds=n)) for n in range(100)]
    ingest(earlier)
    fresh = [
        event((acme if n % 3 else globex).pk, None, at + timedelta(seconds=n)) for n in range(400)
    ]
    batch = fresh + fresh[:150] + earlier[:50]  # repeats inside the batch and of the ledger
    assert ingest(batch) == len(batch)
    assert UsageRecord.objects.count() == 500
    wanted = {e.request_id for e in earlier + fresh}
    assert set(UsageRecord.objects.values_list("request_id", flat=True)) == wanted
    # Every column made it through COPY as the ORM would have written it.
    sample = fresh[7]
    row = UsageRecord.objects.get(request_id=sample.request_id)
    assert (str(row.team_id), row.prompt_tokens, row.completion_tokens, row.status) == (
        sample.team_id,
        sample.prompt_tokens,
        sample.completion_tokens,
        sample.status,
    )
    assert row.created_at == datetime.fromtimestamp(sample.created_at, UTC)
    assert row.cost is not None and row.cost > 0 and row.currency == "USD"


def test_the_default_partition_catches_a_row_and_ensure_moves_it(
    metered: Metered, caplog: pytest.LogCaptureFixture
) -> None:
    acme = metered.cast.acme
    partitions.ensure()
    stray_day = partitions.day_of(timezone.now()) + timedelta(days=partitions.AHEAD_DAYS + 30)
    stray = event(acme.pk, None, partitions.start_of(stray_day) + timedelta(hours=1))
    ingest([stray])
    assert partition_of(stray.request_id) == [partitions.DEFAULT]
    before = UsageRecord.objects.get(request_id=stray.request_id)

    with caplog.at_level(logging.WARNING, logger="baton.billing"):
        run = partitions.ensure()
    assert run.moved == 1
    assert run.moved_days == [stray_day]
    assert partition_of(stray.request_id) == [partitions.name_of(stray_day)]
    after = UsageRecord.objects.get(request_id=stray.request_id)
    assert (after.pk, after.cost, after.created_at) == (before.pk, before.cost, before.created_at)
    assert sql(f'SELECT count(*) FROM "{partitions.DEFAULT}"') == [(0,)]  # noqa: S608
    assert "clock skew" in caplog.text
    # Redelivered now that its day has a partition of its own: still the same one row.
    ingest([stray])
    assert partition_of(stray.request_id) == [partitions.name_of(stray_day)]
    # And the moved row is as append-only as any.
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        UsageRecord.objects.filter(pk=after.pk).update(status=599)


def test_a_request_written_twice_at_different_times_is_one_row(metered: Metered) -> None:
    """The reaper bills a request whose relay stopped renewing its lease, at the reaper's
    time; the relay, only frozen, settles it later at its own, possibly in another day's
    partition. One row, the first."""
    acme = metered.cast.acme
    reaped = event(acme.pk, None, timezone.now() - timedelta(minutes=30), prompt=100)
    for later in (timedelta(seconds=20), timedelta(hours=23)):
        settled = event(
            acme.pk,
            None,
            datetime.fromtimestamp(reaped.created_at, UTC) + later,
            prompt=999,
            request_id=reaped.request_id,
        )
        ingest([reaped])
        ingest([settled])
        ingest([settled, reaped])
        rows = UsageRecord.objects.filter(request_id=reaped.request_id)
        assert [r.prompt_tokens for r in rows] == [100]
    other = event(acme.pk, None, timezone.now(), prompt=7)
    ingest([other])  # another request of the team is not held back
    assert UsageRecord.objects.filter(request_id=other.request_id).count() == 1


def test_an_event_redelivered_across_midnight_stays_in_its_day(metered: Metered) -> None:
    """The partition is the event's day, from the event, whenever it is ingested."""
    acme = metered.cast.acme
    midnight = today()
    partitions.create_days([partitions.day_of(midnight - HOUR)])
    late = event(acme.pk, None, midnight - timedelta(microseconds=1))
    ingest([late])
    ingest([late])
    assert partition_of(late.request_id) == [partitions.name_of(partitions.day_of(midnight - HOUR))]


def test_retention_drops_whole_partitions_and_keeps_the_rest(
    metered: Metered, settings: Any
) -> None:
    settings.BATON_LEDGER_RETENTION_DAYS = 30
    acme = metered.cast.acme
    key = metered.keys[str(acme.pk)][0]
    noon = today() + timedelta(hours=12)
    old_day, undebited_day, recent_day = (
        partitions.day_of(noon - timedelta(days=n)) for n in (60, 45, 2)
    )
    old = [event(acme.pk, key, noon - timedelta(days=60, minutes=n)) for n in range(12)]
    recent = [event(acme.pk, key, noon - timedelta(days=2, minutes=n)) for n in range(5)]
    ingest(old + recent)
    charge_usage()
    undebited = event(acme.pk, key, noon - timedelta(days=45))
    ingest([undebited])
    rollup()
    partitions.ensure()
    assert {old_day, undebited_day, recent_day} <= set(partitions.days())

    assert prune() == len(old)
    have = set(partitions.days())
    assert old_day not in have
    assert {undebited_day, recent_day} <= have  # kept: not debited yet; within retention
    assert not sql("SELECT 1 FROM pg_class WHERE relname = %s", partitions.name_of(old_day))
    assert UsageRecord.objects.filter(team=acme).count() == len(recent) + 1
    assert HourlyUsage.objects.filter(team=acme, hour__lt=noon - timedelta(days=59)).exists()

    charge_usage()
    assert prune() == 1
    assert undebited_day not in partitions.days()
    assert recent_day in partitions.days()


def hour_of_traffic(metered: Metered, hour: datetime) -> None:
    acme = metered.cast.acme
    for back in (0, 1, 3):  # rows in today's partition and in older ones
        at = hour - timedelta(days=back)
        ingest([event(acme.pk, None, at + timedelta(minutes=m)) for m in range(0, 60, 1)])


def test_the_rollup_of_an_hour_plans_one_partition(metered: Metered) -> None:
    day = partitions.day_of(timezone.now())
    partitions.create_days([day - timedelta(days=n) for n in range(4)])
    hour = floor_hour(timezone.now())
    hour_of_traffic(metered, hour)
    plan = rollups.grouped(hour, hour + HOUR).explain()
    assert set(PARTITION.findall(plan)) == {partitions.name_of(day)}
    assert rollups.rebuild(hour, hour + HOUR) > 0


def test_the_request_log_reads_the_newest_partitions_only(metered: Metered) -> None:
    day = partitions.day_of(timezone.now())
    partitions.create_days([day - timedelta(days=n) for n in range(4)])
    hour_of_traffic(metered, floor_hour(timezone.now()))
    query = log_records(metered.cast.acme.pk, timezone.now() - timedelta(days=90)).order_by(
        "-created_at", "-pk"
    )[:51]
    assert len(list(query)) == 51
    plan = query.explain(analyze=True, costs=False, timing=False)
    planned = set(PARTITION.findall(plan))
    assert partitions.DEFAULT not in planned  # pruned at plan time by the window's bounds
    older = {partitions.name_of(day - timedelta(days=n)) for n in (1, 2, 3)}
    assert older <= planned
    # Scanned newest first: the page is full before an older partition is opened.
    for name in older:
        scan = re.search(rf"Index Scan Backward using \S+ on {name}\b.*", plan)
        assert scan is not None, plan
        assert "never executed" in scan.group(0), plan


def test_generate_ledger_writes_the_rows_asked_for(db: None) -> None:
    call_command("generate_ledger", rows=1000, teams=2, days=3, rollup_days=2, verbosity=0)
    teams = Team.objects.filter(name__startswith="ledger-bench-")
    assert teams.count() == 2
    assert UsageRecord.objects.filter(team__in=teams).count() == 1000
    assert sql(f'SELECT count(*) FROM "{partitions.DEFAULT}"') == [(0,)]  # noqa: S608
    spread = sql(
        "SELECT tableoid::regclass::text, count(*) FROM billing_usagerecord GROUP BY 1 ORDER BY 1"
    )
    assert len(spread) == 3 and sum(count for _, count in spread) == 1000
    assert HourlyUsage.objects.filter(team__in=teams).count() == 2 * 24 * 2 * 3 * 4
