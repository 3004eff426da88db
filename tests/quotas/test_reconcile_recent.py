"""Celery beat's pass over recent spend (``reconcile_recent``) catches a row that reached the
ledger late: a usage event written minutes ago whose settle never counted it (its process was
killed after the event, or the settle was skipped for a watermark and the process died before
its own reconciliation) and that the consumer ingested only now, after an outage."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

from django.core.cache import cache
from django.utils import timezone

from billing.ledger import ingest
from billing.models import Price, UsageRecord
from billing.money import to_nanos
from billing.quota.reconcile import LAST_RUN, reconcile, reconcile_recent
from tests.metering.conftest import event
from tests.quotas.conftest import Quota


def test_a_row_ingested_late_is_reconciled_by_the_next_pass(quota: Quota) -> None:
    quota.limits(daily_budget=Decimal(100))
    Price.objects.filter(provider_id="openai", model="demo-chat").update(
        effective_from=timezone.now() - timedelta(days=1)  # priced back then
    )
    team_id, key_id = str(quota.team.pk), str(quota.api_key.pk)
    for scope in (None, key_id):
        reconcile(team_id, scope)  # seeded, at zero: the ledger is empty
    assert quota.counter("lifetime") == 0

    # Written ten minutes ago, in the ledger only now (the consumer was away meanwhile).
    late = event(team_id, key_id, timezone.now() - timedelta(minutes=10), model="demo-chat")
    ingest([late])
    cost = UsageRecord.objects.get(request_id=late.request_id).cost
    assert cost is not None and cost > 0

    reconcile_recent()

    assert quota.counter("lifetime") == to_nanos(cost)
    assert quota.counter("lifetime", f"k:{key_id}") == to_nanos(cost)


def test_rows_that_arrived_while_the_passes_stopped_are_reconciled_by_the_next(
    quota: Quota,
) -> None:
    """Celery was down for a minute: the first pass after it looks back to where the last
    complete one began, not just over its usual interval."""
    quota.limits(daily_budget=Decimal(100))
    team_id, key_id = str(quota.team.pk), str(quota.api_key.pk)
    for scope in (None, key_id):
        reconcile(team_id, scope)
    now = time.time()
    cache.set(LAST_RUN, now - 5)  # the last pass, just before the row arrived
    arrived = event(team_id, key_id, timezone.now(), model="demo-chat")
    ingest([arrived])
    cost = UsageRecord.objects.get(request_id=arrived.request_id).cost
    assert cost is not None and cost > 0

    reconcile_recent(now=now + 60)  # the next pass, a minute later

    assert quota.counter("lifetime") == to_nanos(cost)
    assert cache.get(LAST_RUN) == now + 60
