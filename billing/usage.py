"""Spend in the ledger and in the limits store.

- ``price_records`` prices usage records at the price version in force when
  each request ran, in the team's currency.
- ``charge_usage`` (a Celery task) appends the usage debits to the credit
  ledger, one entry per team per run; each record points at the entry that
  covers it, so nothing is charged twice.
- ``seed_amounts`` is what the relay's admission step adds to a spend counter
  the limits store has never seen: the recorded spend of that period before
  the counter's first write (hourly rollups, then the ledger for the hours
  not rolled up yet, so ledger retention does not lose old spend).
- ``current_use`` reads the live counters (Redis, or the embedded default's
  in-process store) for the pages and the API.

The spend counters in the limits store are authoritative for limits and the
live credit balance; the ledger is the durable record. Usage reaches the
ledger through the metering sink (directly in the embedded default).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet, Sum

from billing import conf
from billing.models import CreditEntry, Currency, TeamLimits, UsageRecord
from billing.money import from_nanos, to_nanos
from billing.snapshots import Limits

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
    UsageRecord.objects.bulk_update(
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
            UsageRecord.objects.filter(pk__in=[r.pk for r in charged]).update(credit_entry=entry)
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


def seed_amounts(team_id: str, specs: Sequence[tuple[str | None, str, int | None]]) -> list[int]:
    """Nanos of ledger spend for each (key id or None for the team, period,
    first write ms of the counter or None): what the counter never counted."""
    now = datetime.now(UTC)
    amounts = []
    for key_id, period, first_ms in specs:
        end = datetime.fromtimestamp(first_ms / 1000, tz=UTC) if first_ms else now
        amounts.append(to_nanos(spend_between(team_id, key_id, period_start(period, now), end)))
    return amounts


# --- live use ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScopeUse:
    in_flight: int
    held: Decimal
    rpm_remaining: int | None
    tpm_remaining: int | None
    day: Decimal
    month: Decimal
    lifetime: Decimal


_sync_scripts: dict[str, Any] = {}  # limits Redis URL -> registered script


def _peek(pairs: Sequence[tuple[list[str], list[Any]]]) -> list[list[Any]]:
    url = conf.limits_redis_url()
    if not url:
        from relay.admission import LOCAL

        return [LOCAL.run(keys, args) for keys, args in pairs]
    script = _sync_scripts.get(url)
    if script is None:
        import redis

        from relay.admission import LUA

        timeout = max(0.5, conf.limits_redis_timeout())
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        script = _sync_scripts[url] = client.register_script(LUA)
    pipe = script.registered_client.pipeline(transaction=False)
    for keys, args in pairs:
        script(keys=keys, args=args, client=pipe)
    return [list(reply) for reply in pipe.execute()]


def _scope_use(values: Sequence[Any]) -> ScopeUse:
    def money(value: Any) -> Decimal:
        return from_nanos(int(value.decode() if isinstance(value, bytes) else value))

    return ScopeUse(
        in_flight=int(values[0]),
        held=money(values[1]),
        rpm_remaining=int(values[2]) if int(values[2]) >= 0 else None,
        tpm_remaining=int(values[3]) if int(values[3]) >= 0 else None,
        day=money(values[4]),
        month=money(values[5]),
        lifetime=money(values[6]),
    )


def current_use(
    team_id: Any, team_limits: Limits, keys: Sequence[tuple[Any, Limits]]
) -> tuple[ScopeUse, dict[str, ScopeUse]] | None:
    """Live use of the team and of each (key id, limits); None when the store is unreachable.
    With no keys the team is read together with a key that does not exist."""
    from relay.admission import periods, scope_keys

    day, month = periods(time.time())
    window = int(conf.rate_window_seconds() * 1000)
    team_keys = scope_keys(str(team_id), "t", day, month)
    requests = []
    for key_id, limits in keys or [("none", Limits())]:
        args = [
            "peek",
            window,
            team_limits.rpm or -1,
            team_limits.tpm or -1,
            limits.rpm or -1,
            limits.tpm or -1,
        ]
        requests.append((team_keys + scope_keys(str(team_id), f"k:{key_id}", day, month), args))
    try:
        replies = _peek(requests)
    except Exception:
        log.warning("limits store unreachable; pages show no live use", exc_info=True)
        return None
    team_use = _scope_use(replies[0][:7])
    by_key = {
        str(key_id): _scope_use(reply[7:14])
        for (key_id, _), reply in zip(keys, replies, strict=False)
    }
    return team_use, by_key


def ledger_spend(team_id: Any, currency: str) -> Decimal:
    """Usage already debited in the ledger (positive)."""
    total = CreditEntry.objects.filter(
        team_id=team_id, currency=currency, kind=CreditEntry.Kind.USAGE
    ).aggregate(total=Sum("amount"))["total"]
    return -(total or Decimal(0))
