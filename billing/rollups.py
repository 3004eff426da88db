"""Hourly rollups of the ledger, after zulip's ``analytics/lib/counts.py``.

``HourlyUsage`` has one row per hour, team, API key, provider, model and
currency. An hour is always rebuilt whole from the ledger: its rows are
deleted and inserted again in one transaction, so rebuilding is idempotent
and a crash mid-way leaves the old rows or the new ones, never half. The
``usage-hourly`` fill state records how far complete hours are done; it is
marked STARTED before a step and DONE after, so a run that died is visible
and the next run simply rebuilds from the last DONE boundary.

Each run (``billing.rollup_usage``, every minute):

1. rebuilds hours that received late rows: rows ingested since the last run
   (less a margin for transactions still in flight) whose request ran in an
   hour already done;
2. rolls up complete hours from the DONE boundary to now, a day at a time
   (midnight to midnight, so each step reads one daily partition of the ledger);
3. rebuilds the current, still open hour, so dashboards lag by one run.

Hours before the pruned horizon (``billing.ledger.prune``) are never
rebuilt: their ledger rows are gone and their rollups are the record.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncHour
from django.utils import timezone

from billing import fillstate
from billing.models import LATENCY_BUCKETS_MS, LATENCY_FIELDS, HourlyUsage, UsageRecord
from billing.periods import HOUR, ceil_day, floor_hour
from billing.usage import price_records

log = logging.getLogger("baton.billing")

CATCH_UP_STEP = timedelta(days=1)
SPAN_GAP = timedelta(hours=6)
# Rows carry the time they were ingested at; one still in an uncommitted
# transaction when a run looks can show up this much later with an older time.
LATE_MARGIN = timedelta(minutes=5)

SUMS = (
    "prompt_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "completion_tokens",
    "reasoning_tokens",
)


def _latency_counts() -> dict[str, Any]:
    counts: dict[str, Any] = {}
    lower: float | None = None
    for name, upper in zip(LATENCY_FIELDS, (*LATENCY_BUCKETS_MS, None), strict=True):
        condition = Q()
        if lower is not None:
            condition &= Q(latency_ms__gte=lower)
        if upper is not None:
            condition &= Q(latency_ms__lt=upper)
        counts[f"x_{name}"] = Count("id", filter=condition)
        lower = upper
    return counts


def grouped(start: datetime, end: datetime) -> QuerySet[UsageRecord, dict[str, Any]]:
    """The rollup query: the ledger rows of [start, end) summed per hour, team, key, provider,
    model and currency. Bounded by ``created_at`` alone, so on PostgreSQL it reads the
    partition of that day and no other (``tests/metering/test_partitions.py`` checks the plan)."""
    return (
        UsageRecord.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(x_hour=TruncHour("created_at", tzinfo=UTC))
        .values("x_hour", "team_id", "api_key_id", "provider", "upstream_model", "currency")
        .annotate(
            x_requests=Count("id"),
            x_errors=Count("id", filter=Q(status__gte=400)),
            x_estimated=Count("id", filter=Q(estimated=True)),
            x_unpriced=Count("id", filter=Q(unpriced=True)),
            x_cost=Coalesce(Sum("cost"), Decimal(0)),
            x_latency=Coalesce(Sum("latency_ms"), 0.0),
            **{f"x_{name}": Coalesce(Sum(name), 0) for name in SUMS},
            **_latency_counts(),
        )
        .order_by()
    )


def aggregate(start: datetime, end: datetime) -> list[HourlyUsage]:
    """Fresh rollup rows for the hours in [start, end), from the ledger."""
    price_records(UsageRecord.objects.filter(created_at__gte=start, created_at__lt=end, cost=None))
    now = timezone.now()
    out = []
    for row in grouped(start, end):
        values: dict[str, Any] = {
            "team_id": row["team_id"],
            "hour": row["x_hour"],
            "api_key_id": row["api_key_id"],
            "provider": row["provider"],
            "model": row["upstream_model"],
            "currency": row["currency"],
            "requests": row["x_requests"],
            "errors": row["x_errors"],
            "estimated": row["x_estimated"],
            "unpriced": row["x_unpriced"],
            "cost": row["x_cost"],
            "latency_ms_sum": row["x_latency"],
            "computed_at": now,
        }
        values |= {name: row[f"x_{name}"] for name in SUMS}
        values |= {name: row[f"x_{name}"] for name in LATENCY_FIELDS}
        out.append(HourlyUsage(**values))
    return out


def rebuild(start: datetime, end: datetime) -> int:
    """Replace the rollups of [start, end) (whole hours) with fresh ones; returns rows written."""
    horizon = fillstate.end_time(fillstate.PRUNED)
    if horizon is not None and start < horizon:
        if end <= horizon:
            log.warning("not rebuilding %s-%s: the ledger before %s is pruned", start, end, horizon)
            return 0
        start = horizon
    with transaction.atomic():
        # Rebuilds of the same hours queue here instead of interleaving.
        fillstate.lock(fillstate.HOURLY)
        HourlyUsage.objects.filter(hour__gte=start, hour__lt=end).delete()
        rows = aggregate(start, end)
        HourlyUsage.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


@dataclass
class RollupRun:
    late_hours: list[datetime] = field(default_factory=list)
    hours: int = 0
    rows: int = 0


def _first_hour(now: datetime) -> datetime:
    first = UsageRecord.objects.order_by("created_at").values_list("created_at", flat=True).first()
    return floor_hour(first) if first is not None else floor_hour(now)


def late_hours(since: datetime, before: datetime) -> list[datetime]:
    """Hours before ``before`` that received ledger rows ingested since ``since``."""
    hours = (
        UsageRecord.objects.filter(ingested_at__gte=since, created_at__lt=before)
        .annotate(x_hour=TruncHour("created_at", tzinfo=UTC))
        .values_list("x_hour", flat=True)
        .distinct()
        .order_by()
    )
    return sorted(set(hours))


def spans(hours: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Sorted hours as a few spans to rebuild: hours a short gap apart share
    one (rebuilding an empty hour costs next to nothing), up to a day long."""
    out: list[tuple[datetime, datetime]] = []
    for hour in hours:
        if out and hour - out[-1][1] < SPAN_GAP and hour - out[-1][0] < CATCH_UP_STEP:
            out[-1] = (out[-1][0], hour + HOUR)
        else:
            out.append((hour, hour + HOUR))
    return out


def rollup(now: datetime | None = None) -> RollupRun:
    """One run; see the module docstring. ``now`` is for tests replaying the past."""
    started = timezone.now()
    now = now or started
    current = floor_hour(now)
    run = RollupRun()
    state = fillstate.get_or_start(fillstate.HOURLY, lambda: _first_hour(now))
    checked = fillstate.get_or_start(fillstate.LATE, lambda: started)

    # 1. Hours already done that received rows since the last run.
    late = late_hours(checked.end_time - LATE_MARGIN, state.end_time)
    for start, end in spans(late):
        run.rows += rebuild(start, end)
    run.late_hours = late

    # 2. Complete hours, a day at a time, each step marked before and after.
    while state.end_time < current:
        # Up to the next midnight: a step reads one of the ledger's daily partitions.
        end = min(ceil_day(state.end_time + HOUR), current)
        fillstate.mark(state, state.end_time, done=False)
        run.rows += rebuild(state.end_time, end)
        run.hours += int((end - state.end_time) / HOUR)
        fillstate.mark(state, end, done=True)
    if state.state != state.State.DONE:  # a run died in a step that is now behind us
        fillstate.mark(state, state.end_time, done=True)

    # 3. The hour in progress.
    run.rows += rebuild(current, current + HOUR)
    run.hours += 1

    fillstate.mark(checked, max(checked.end_time, started), done=True)
    return run


def totals(**filters: Any) -> dict[str, Any]:
    """Sums over rollups (for tests and checks)."""
    return HourlyUsage.objects.filter(**filters).aggregate(
        requests=Coalesce(Sum("requests"), 0),
        cost=Coalesce(Sum("cost"), Decimal(0)),
        tokens=Coalesce(Sum(F("prompt_tokens") + F("completion_tokens")), 0),
    )
