"""Raw usage past ``BATON_LEDGER_RETENTION_DAYS`` is pruned; rollups, billing
records and the spend the limits store is seeded with all survive it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from billing import fillstate
from billing.ledger import ingest, prune
from billing.models import HourlyUsage, UsageRecord
from billing.rollups import rollup
from billing.usage import charge_usage, spend_between
from tests.metering.conftest import Metered, event, ledger_totals, rollup_totals


def test_pruning_keeps_every_total(metered: Metered, settings: Any) -> None:
    settings.BATON_LEDGER_RETENTION_DAYS = 30
    acme = metered.cast.acme
    key = metered.keys[str(acme.pk)][0]
    now = timezone.now()
    old = [event(acme.pk, key, now - timedelta(days=60, minutes=n)) for n in range(20)]
    recent = [event(acme.pk, key, now - timedelta(days=3, minutes=n)) for n in range(10)]
    ingest(old + recent)
    charge_usage()
    uncharged = event(acme.pk, key, now - timedelta(days=50))
    ingest([uncharged])  # not yet debited from credit: kept whatever its age
    rollup()
    before = ledger_totals(acme)
    month_spend = spend_between(acme.pk, None, None, None)
    key_spend = spend_between(acme.pk, key, None, None)
    assert rollup_totals(acme) == before

    assert prune() == 20
    assert UsageRecord.objects.filter(team=acme).count() == 11
    assert UsageRecord.objects.filter(request_id=uncharged.request_id).exists()
    assert rollup_totals(acme) == before  # rollups stay
    rollup()
    assert rollup_totals(acme) == before  # and are not rebuilt from the pruned ledger
    assert spend_between(acme.pk, None, None, None) == month_spend == before.cost
    assert spend_between(acme.pk, key, None, None) == key_spend
    assert prune() == 0


def test_usage_older_than_the_pruned_ledger_is_booked_at_its_horizon(
    metered: Metered, settings: Any
) -> None:
    settings.BATON_LEDGER_RETENTION_DAYS = 7
    acme = metered.cast.acme
    now = timezone.now()
    ingest([event(acme.pk, None, now - timedelta(days=1))])
    rollup()
    prune()
    horizon = fillstate.end_time(fillstate.PRUNED)
    assert horizon is not None
    ancient = event(acme.pk, None, now - timedelta(days=30), prompt=1_000_000, completion=0)
    ingest([ancient])
    assert UsageRecord.objects.get(request_id=ancient.request_id).created_at == horizon
    rollup()
    assert rollup_totals(acme) == ledger_totals(acme)
    assert HourlyUsage.objects.filter(hour=horizon).exists()
    assert ledger_totals(acme).cost > Decimal(1)
