"""Spend in the ledger and in the limits store.

- ``price_records`` prices usage records at the price version in force when
  each request ran, in the team's currency.
- ``charge_usage`` (a Celery task) appends the usage debits to the credit
  ledger, one entry per team per run; each record points at the entry that
  covers it, so nothing is charged twice.
- ``spend_between`` is the recorded spend of a team or key over a period
  (hourly rollups, then the ledger for the hours not rolled up yet).

The spend counters in the limits store (billing/quota/) are authoritative for
limits and the live credit balance; the ledger is the durable record. Usage
reaches the ledger through the metering sink (directly in the embedded default).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet, Sum

from billing.models import CreditEntry, Currency, TeamLimits, UsageRecord

log = logging.getLogger("baton.billing")

CHARGE_BATCH = 5000


def period_start(period: str, now: datetime | None = None) -> datetime | None:
    now = now or datetime.now(UTC)
    if period == "day":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "month":
        return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return None


def period_end(period: str, now: datetime | None = None) -> datetime | None:
    """When the period containing ``now`` ends (its budget resets)."""
    now = now or datetime.now(UTC)
    if period == "day":
        return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    if period == "month":
        year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
        return datetime(year, month, 1, tzinfo=UTC)
    return None


def team_currency(team_id: Any) -> str:
    row = TeamLimits.objects.filter(team_id=team_id).only("currency").first()
    return row.currency if row else Currency.USD


# --- pricing the ledger ------------------------------------------------------------------
def price_records(records: Iterable[UsageRecord]) -> int:
    """Fill in ``cost`` of unpriced records (``billing.ledger.Pricer``, which
    prices new rows at ingestion); returns how many were priced."""
    from billing.ledger import Pricer

    pending = [r for r in records if r.cost is None]
    if not pending:
        return 0
    Pricer().price_all(pending)
    # Bounded by time too, so PostgreSQL looks only in the partitions these rows are in.
    UsageRecord.objects.filter(
        created_at__gte=min(r.created_at for r in pending),
        created_at__lte=max(r.created_at for r in pending),
    ).bulk_update(
        pending,
        ["cost", "currency", "price", "exchange_rate", "markup", "unpriced"],
        batch_size=500,
    )
    return len(pending)


def charge_usage(limit: int = CHARGE_BATCH) -> int:
    """Debit the credit ledger for usage not yet charged; returns the records
    looked at (fewer than ``limit``: nothing is left)."""
    with transaction.atomic():
        records = list(
            UsageRecord.objects.select_for_update(skip_locked=True)
            .filter(Q(cost=None) | Q(cost__gt=0), credit_entry=None)
            .order_by("id")[:limit]
        )
        if not records:
            return 0
        price_records(records)
        by_team: dict[tuple[Any, str], list[UsageRecord]] = defaultdict(list)
        for record in records:
            if record.cost:
                by_team[(record.team_id, record.currency)].append(record)
        for (team_id, currency), charged in by_team.items():
            total = sum((r.cost or Decimal(0) for r in charged), Decimal(0))
            entry = CreditEntry.objects.create(
                team_id=team_id,
                kind=CreditEntry.Kind.USAGE,
                amount=-total,
                currency=currency,
                note=f"{len(charged)} requests until {max(r.created_at for r in charged):%Y-%m-%d %H:%M:%S} UTC",
            )
            UsageRecord.objects.filter(
                pk__in=[r.pk for r in charged],
                # Bounded by time too, so PostgreSQL looks only in these rows' partitions.
                created_at__gte=min(r.created_at for r in charged),
                created_at__lte=max(r.created_at for r in charged),
            ).update(credit_entry=entry)
    return len(records)


def spend_between(
    team_id: Any, key_id: Any | None, start: datetime | None, end: datetime | None
) -> Decimal:
    """Spend in [start, end): whole hours already rolled up come from the
    hourly rollups (they outlive the ledger's retention), the rest from the
    ledger."""
    from billing import fillstate
    from billing.models import HourlyUsage
    from billing.periods import floor_hour

    split = fillstate.end_time(fillstate.HOURLY)
    if split is not None:
        split = min(split, floor_hour(end or datetime.now(UTC)))
        if start is not None:
            split = max(split, start)
    total = Decimal(0)
    if split is not None:
        hours = HourlyUsage.objects.filter(team_id=team_id, hour__lt=split)
        if key_id is not None:
            hours = hours.filter(api_key_id=key_id)
        if start is not None:
            hours = hours.filter(hour__gte=start)
        total += hours.aggregate(total=Sum("cost"))["total"] or Decimal(0)
        start = split
    records: QuerySet[UsageRecord] = UsageRecord.objects.filter(team_id=team_id)
    if key_id is not None:
        records = records.filter(api_key_id=key_id)
    if start is not None:
        records = records.filter(created_at__gte=start)
    if end is not None:
        records = records.filter(created_at__lt=end)
    price_records(records.filter(cost=None))
    return total + (records.aggregate(total=Sum("cost"))["total"] or Decimal(0))


def ledger_spend(team_id: Any, currency: str) -> Decimal:
    """Usage already debited in the ledger (positive)."""
    total = CreditEntry.objects.filter(
        team_id=team_id, currency=currency, kind=CreditEntry.Kind.USAGE
    ).aggregate(total=Sum("amount"))["total"]
    return -(total or Decimal(0))
