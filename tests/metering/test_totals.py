"""A generated month of traffic: the ledger, the rollups and the billing
records agree to the nano (so to the cent), and stay in agreement when late
usage arrives after the month has closed."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db.models import Sum

from billing.ledger import ingest
from billing.models import BillingLineItem, BillingRecord, HourlyUsage, UsageRecord
from billing.records import bill
from billing.rollups import rollup
from tests.metering.conftest import (
    Metered,
    event,
    ledger_totals,
    record_totals,
    rollup_totals,
    traffic,
)


def test_ledger_rollups_and_records_agree_over_a_month(metered: Metered, month: tuple) -> None:
    start, end = month
    traffic(metered, start, end, 6000)
    after_close = end + timedelta(days=1, minutes=30)
    rollup(after_close)
    bill(after_close)

    for team in metered.teams:
        ledger = ledger_totals(team)
        assert ledger.requests > 500 and ledger.cost > 0 and ledger.written_1h > 0
        assert rollup_totals(team) == ledger
        assert record_totals(team) == ledger
        record = BillingRecord.objects.get(team=team, period_start=start)
        assert record.status == BillingRecord.Status.CLOSED
        assert (record.period_end, record.total) == (end, ledger.cost)
        assert record.total.quantize(Decimal("0.01")) == ledger.cost.quantize(Decimal("0.01"))
        by_model = {
            (line.provider, line.model): line.amount
            for line in BillingLineItem.objects.filter(record=record)
        }
        assert by_model[("openai", "meter-unpriced")] == 0  # served, recorded, charged nothing
        assert len(by_model) == 4
    # Each hour of the month is one rollup bucket per key and model at most.
    assert HourlyUsage.objects.filter(hour__gte=start, hour__lt=end).count() <= 31 * 24 * 4 * 4


def test_late_usage_goes_on_the_next_record_as_an_adjustment(
    metered: Metered, month: tuple
) -> None:
    start, end = month
    acme = metered.cast.acme
    key = metered.keys[str(acme.pk)][0]
    traffic(metered, start, end, 500)
    closing = end + timedelta(days=1, minutes=30)
    rollup(closing)
    bill(closing)
    closed = BillingRecord.objects.get(team=acme, period_start=start)
    billed_before = (closed.total, closed.updated_at)

    # A consumer that was down delivers usage of the closed month now.
    late = [
        event(
            acme.pk,
            key,
            end - timedelta(hours=2),
            model="meter-large",
            cache_write=300,
            cache_write_1h=100,
        )
        for _ in range(3)
    ]
    ingest(late)
    later = closing + timedelta(hours=1)
    rollup(later)
    bill(later)

    closed.refresh_from_db()
    assert (closed.total, closed.updated_at) == billed_before  # closed records never change
    current = BillingRecord.objects.get(team=acme, period_start=end)
    assert current.status == BillingRecord.Status.OPEN
    adjustment = BillingLineItem.objects.get(record=current, kind=BillingLineItem.Kind.ADJUSTMENT)
    assert (
        adjustment.for_period_start,
        adjustment.model,
        adjustment.requests,
        adjustment.cache_write_tokens,
        adjustment.cache_write_1h_tokens,
    ) == (start, "meter-large", 3, 900, 300)
    late_cost = UsageRecord.objects.filter(request_id__in=[e.request_id for e in late]).aggregate(
        total=Sum("cost")
    )["total"]
    assert adjustment.amount == late_cost > 0
    assert record_totals(acme) == ledger_totals(acme) == rollup_totals(acme)

    # Running everything again changes nothing.
    rollup(later)
    bill(later)
    assert BillingLineItem.objects.filter(kind=BillingLineItem.Kind.ADJUSTMENT).count() == 1
    assert record_totals(acme) == ledger_totals(acme)

    # When the next month closes the adjustment is frozen in it, and not repeated.
    next_end = (end + timedelta(days=32)).replace(day=1)
    rollup(next_end + timedelta(hours=1))
    bill(next_end + timedelta(hours=1))
    current.refresh_from_db()
    assert current.status == BillingRecord.Status.CLOSED
    assert current.adjustments == adjustment.amount
    assert not BillingRecord.objects.filter(team=acme, period_start=next_end).exists()
    assert record_totals(acme) == ledger_totals(acme)
