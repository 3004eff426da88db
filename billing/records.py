"""Billing records: what each team owes per billing period.

One ``BillingRecord`` per team and period, with a line item per provider and
model, built from the hourly rollups (never the ledger). While its period
runs a record is open and kept up to date; once the period has ended, its
hours are all rolled up and ``CLOSE_AFTER`` has passed, it is closed and
never changes again. The ``billing-closed`` fill state is the boundary up
to which periods are closed; each period closes in one transaction.

Usage that reaches the ledger after its period closed (a consumer that was
down, a late retry) changes that period's rollups, not its record: the
difference between the rollups and everything already billed for the period
goes on an adjustment line of the team's oldest open record. Rollups rebuilt
since the last run (``HourlyUsage.computed_at``, the ``billing-seen`` fill
state) say which teams and periods to look at. Every step recomputes from
the rollups and replaces what it wrote before, so running it again never
changes a total.

Credit: a record's total is paid from the team's prepaid credit first
(credit added up to the period's end, less what earlier records used);
the rest is the amount due.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Max, Min, Q, QuerySet, Sum
from django.utils import timezone

from billing import conf, fillstate
from billing.models import (
    BillingLineItem,
    BillingRecord,
    CreditEntry,
    Currency,
    HourlyUsage,
    TeamLimits,
)
from billing.periods import HOUR, Period, period_from, period_of, periods_between

CLOSE_AFTER = timedelta(minutes=15)
# Rollups are stamped with the time they were computed at; one in a
# transaction that had not committed when a run looked shows up later.
SEEN_MARGIN = timedelta(minutes=5)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

LINE_SUMS = (
    "requests",
    "prompt_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "completion_tokens",
    "reasoning_tokens",
)
Sums = dict[str, Any]  # LINE_SUMS and "amount"
ByModel = dict[tuple[str, str], Sums]


def _empty() -> Sums:
    return {**dict.fromkeys(LINE_SUMS, 0), "amount": Decimal(0)}


def _by_model(rows: QuerySet[Any], amount: str) -> dict[str, ByModel]:
    """The sums of ``rows`` (``amount`` and LINE_SUMS) per team, provider and model."""
    out: dict[str, ByModel] = defaultdict(dict)
    for row in (
        rows.values("team_id", "provider", "model")
        .annotate(x_amount=Sum(amount), **{f"x_{name}": Sum(name) for name in LINE_SUMS})
        .order_by()
    ):
        sums = {name: row[f"x_{name}"] or 0 for name in LINE_SUMS}
        sums["amount"] = row["x_amount"] or Decimal(0)
        out[str(row["team_id"])][(row["provider"], row["model"])] = sums
    return out


def usage_by_model(period: Period, team_ids: Iterable[Any] | None = None) -> dict[str, ByModel]:
    """Rollup sums of a period per team, provider and model (one query)."""
    hours = HourlyUsage.objects.filter(hour__gte=period.start, hour__lt=period.end)
    if team_ids is not None:
        hours = hours.filter(team_id__in=list(team_ids))
    return _by_model(hours, "cost")


def billed_by_model(period: Period, team_ids: Iterable[Any]) -> dict[str, ByModel]:
    """What closed records already billed for a period (its own usage lines
    and adjustments on later records), per team, provider and model."""
    lines = BillingLineItem.objects.filter(
        team_id__in=list(team_ids),
        for_period_start=period.start,
        record__status=BillingRecord.Status.CLOSED,
    )
    return _by_model(lines, "amount")


def _line(
    record: BillingRecord, kind: str, key: tuple[str, str], sums: Sums, period: Period
) -> BillingLineItem:
    return BillingLineItem(
        record=record,
        team_id=record.team_id,
        kind=kind,
        provider=key[0],
        model=key[1],
        for_period_start=period.start,
        for_period_end=period.end,
        amount=sums["amount"],
        **{name: sums[name] for name in LINE_SUMS},
    )


@dataclass
class BillingRun:
    closed: int = 0
    refreshed: int = 0
    adjusted: int = 0


def _dirty(since: datetime) -> dict[str, tuple[datetime, datetime]]:
    """Teams whose rollups were rebuilt since ``since``: first and last hour touched."""
    rows = (
        HourlyUsage.objects.filter(computed_at__gte=since)
        .values("team_id")
        .annotate(first=Min("hour"), last=Max("hour"))
        .order_by()
    )
    return {str(row["team_id"]): (row["first"], row["last"]) for row in rows}


def _closed_dirty_periods(
    dirty: dict[str, tuple[datetime, datetime]], closed_until: datetime, kind: str
) -> dict[Period, set[str]]:
    """Closed periods whose rollups changed, with the teams they changed for."""
    out: dict[Period, set[str]] = defaultdict(set)
    for team_id, (first, last) in dirty.items():
        for period in periods_between(first, min(last + HOUR, closed_until), kind):
            if period.end <= closed_until:
                out[period].add(team_id)
    return out


class _Refresh:
    """Brings the records of one period up to date for some teams."""

    def __init__(self, period: Period, now: datetime) -> None:
        self.period = period
        self.now = now

    def run(
        self,
        team_ids: set[str] | None,
        adjust: dict[Period, set[str]],
        close: bool,
    ) -> tuple[int, int]:
        usage = usage_by_model(self.period, team_ids)
        adjustments: dict[str, dict[Period, ByModel]] = defaultdict(dict)
        for earlier, teams in sorted(adjust.items(), key=lambda item: item[0].start):
            expected = usage_by_model(earlier, teams)
            billed = billed_by_model(earlier, teams)
            for team_id in teams:
                diff: ByModel = {}
                keys = set(expected.get(team_id, {})) | set(billed.get(team_id, {}))
                for key in keys:
                    want = expected.get(team_id, {}).get(key, _empty())
                    have = billed.get(team_id, {}).get(key, _empty())
                    delta = {name: want[name] - have[name] for name in (*LINE_SUMS, "amount")}
                    if any(delta.values()):
                        diff[key] = delta
                adjustments[team_id][earlier] = diff

        scope = set(usage) | set(adjustments) | set(team_ids or ())
        existing = {
            str(record.team_id): record
            for record in BillingRecord.objects.filter(
                period_start=self.period.start, period_end=self.period.end
            ).filter(**({} if team_ids is None else {"team_id__in": list(scope)}))
        }
        if team_ids is None:
            scope |= set(existing)
        wanted = {
            team_id
            for team_id in scope
            if team_id in existing
            or usage.get(team_id)
            or any(adjustments.get(team_id, {}).values())
        }
        if not wanted:
            return 0, 0
        currencies = {
            str(team_id): currency
            for team_id, currency in TeamLimits.objects.filter(team_id__in=wanted).values_list(
                "team_id", "currency"
            )
        }
        created = [
            BillingRecord(
                team_id=team_id,
                period_start=self.period.start,
                period_end=self.period.end,
                currency=currencies.get(team_id, Currency.USD),
            )
            for team_id in wanted - set(existing)
        ]
        BillingRecord.objects.bulk_create(created)
        records = {
            str(record.team_id): record
            for record in BillingRecord.objects.filter(
                period_start=self.period.start,
                period_end=self.period.end,
                team_id__in=list(wanted),
                status=BillingRecord.Status.OPEN,
            )
        }

        # Usage lines: replaced whole.
        BillingLineItem.objects.filter(
            record__in=list(records.values()), kind=BillingLineItem.Kind.USAGE
        ).delete()
        lines = [
            _line(record, BillingLineItem.Kind.USAGE, key, sums, self.period)
            for team_id, record in records.items()
            for key, sums in sorted(usage.get(team_id, {}).items())
        ]
        # Adjustment lines: replaced for the earlier periods looked at, kept for the others.
        stale = Q(pk__in=[])
        adjusted = 0
        for team_id, by_period in adjustments.items():
            record = records.get(team_id)
            if record is None:
                continue
            for earlier, diff in by_period.items():
                stale |= Q(record=record, for_period_start=earlier.start)
                for key, sums in sorted(diff.items()):
                    lines.append(_line(record, BillingLineItem.Kind.ADJUSTMENT, key, sums, earlier))
                    adjusted += 1
        BillingLineItem.objects.filter(stale, kind=BillingLineItem.Kind.ADJUSTMENT).delete()
        BillingLineItem.objects.bulk_create(lines, batch_size=1000)

        self.totals(records, close)
        return len(records), adjusted

    def totals(self, records: dict[str, BillingRecord], close: bool) -> None:
        sums = defaultdict(Decimal)
        for row in (
            BillingLineItem.objects.filter(record__in=list(records.values()))
            .values("record_id", "kind")
            .annotate(total=Sum("amount"))
            .order_by()
        ):
            sums[(row["record_id"], row["kind"])] = row["total"] or Decimal(0)
        available = available_credit(records.values(), self.period, min(self.period.end, self.now))
        for team_id, record in records.items():
            record.usage = sums[(record.pk, BillingLineItem.Kind.USAGE)]
            record.adjustments = sums[(record.pk, BillingLineItem.Kind.ADJUSTMENT)]
            record.total = record.usage + record.adjustments
            credit = max(Decimal(0), available.get(team_id, Decimal(0)))
            record.credits_applied = min(max(record.total, Decimal(0)), credit)
            record.amount_due = record.total - record.credits_applied
            if close:
                record.status = BillingRecord.Status.CLOSED
                record.closed_at = self.now
        BillingRecord.objects.bulk_update(
            list(records.values()),
            [
                "usage",
                "adjustments",
                "total",
                "credits_applied",
                "amount_due",
                "status",
                "closed_at",
                "updated_at",
            ],
        )


def available_credit(
    records: Iterable[BillingRecord], period: Period, until: datetime
) -> dict[str, Decimal]:
    """Prepaid credit each record's team can still apply: credit added before
    ``until`` in the record's currency, less what earlier records applied."""
    records = list(records)
    if not records:
        return {}
    team_ids = [record.team_id for record in records]
    currency = {str(record.team_id): record.currency for record in records}
    granted: dict[str, Decimal] = defaultdict(Decimal)
    for team_id, entry_currency, total in (
        CreditEntry.objects.filter(team_id__in=team_ids, created_at__lt=until)
        .exclude(kind=CreditEntry.Kind.USAGE)
        .values_list("team_id", "currency")
        .annotate(total=Sum("amount"))
        .order_by()
    ):
        if currency[str(team_id)] == entry_currency:
            granted[str(team_id)] += total or Decimal(0)
    for team_id, record_currency, used in (
        BillingRecord.objects.filter(team_id__in=team_ids, period_start__lt=period.start)
        .values_list("team_id", "currency")
        .annotate(used=Sum("credits_applied"))
        .order_by()
    ):
        if currency[str(team_id)] == record_currency:
            granted[str(team_id)] -= used or Decimal(0)
    return granted


def bill(now: datetime | None = None) -> BillingRun:
    """Close the periods that have ended and bring open records up to date."""
    started = timezone.now()
    now = now or started
    kind = conf.billing_period()
    run = BillingRun()
    rolled = fillstate.end_time(fillstate.HOURLY)
    if rolled is None:
        return run
    first_hour = HourlyUsage.objects.order_by("hour").values_list("hour", flat=True).first()
    state = fillstate.get_or_start(
        fillstate.BILLED, lambda: period_of(first_hour or now, kind).start
    )
    seen = fillstate.get_or_start(fillstate.BILLING_SEEN, lambda: EPOCH)
    dirty = _dirty(seen.end_time - SEEN_MARGIN)

    # Periods that have ended, oldest first, each closed in one transaction.
    while True:
        period = period_from(state.end_time, kind)
        if period.end > rolled or period.end + CLOSE_AFTER > now:
            break
        with transaction.atomic():
            locked = fillstate.lock(fillstate.BILLED)
            if locked is not None and locked.end_time != state.end_time:
                state = locked  # another run closed it meanwhile
                continue
            adjust = _closed_dirty_periods(dirty, period.start, kind)
            closed, adjusted = _Refresh(period, now).run(None, adjust, close=True)
            fillstate.mark(state, period.end, done=True)
        run.closed += closed
        run.adjusted += adjusted

    # Open periods: the oldest takes adjustments, each takes its own usage.
    adjust = _closed_dirty_periods(dirty, state.end_time, kind)
    for period in periods_between(state.end_time, now + timedelta(microseconds=1), kind):
        if period.start < state.end_time:
            period = Period(state.end_time, period.end)
        oldest = period.start == state.end_time
        teams = {
            team_id
            for team_id, (first, last) in dirty.items()
            if first < period.end and last >= period.start
        }
        if oldest:
            teams |= {team_id for team_ids in adjust.values() for team_id in team_ids}
        if not teams:
            continue
        with transaction.atomic():
            fillstate.lock(fillstate.BILLED)
            refreshed, adjusted = _Refresh(period, now).run(
                teams, adjust if oldest else {}, close=False
            )
        run.refreshed += refreshed
        run.adjusted += adjusted

    fillstate.mark(seen, max(seen.end_time, started), done=True)
    return run
