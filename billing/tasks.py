"""Billing housekeeping: thin Celery wrappers, each with an explicit name;
the schedule is in ``config/schedule.py``."""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from billing.usage import CHARGE_BATCH, charge_usage

log = logging.getLogger("baton.billing")

# Seconds one run of the stream consumer drains for.
CONSUME_SECONDS = 10.0

# Only these are worth retrying: the database or Redis was briefly away.
TRANSIENT: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    redis.ConnectionError,
    redis.TimeoutError,
)


@shared_task(name="billing.charge_usage")
def charge_usage_task() -> int:
    """Debit the credit ledger for usage recorded since the last run."""
    total = 0
    while True:
        seen = charge_usage()
        total += seen
        if seen < CHARGE_BATCH:
            return total


@shared_task(name="billing.consume_usage")
def consume_usage_task() -> dict[str, Any] | None:
    """Move usage events from the Redis streams into the ledger (none without Redis).
    Runs every few seconds; a run that finds every stream leased by other consumers
    returns at once. No retries: the next run picks up whatever this one left pending."""
    if not settings.REDIS_URL:
        return None
    from billing.consumer import client, consume

    result = consume(client(settings.REDIS_URL), CONSUME_SECONDS)
    if result is None:
        return None
    if result.dead:
        log.error("%d usage stream entries were not usage events", result.dead)
    return {"read": result.read, "claimed": result.claimed, "written": result.written}


@shared_task(
    name="billing.rollup_usage",
    autoretry_for=TRANSIENT,
    retry_backoff=5,
    max_retries=3,
)
def rollup_usage_task() -> dict[str, int]:
    """Roll the ledger up into hourly rollups (late rows included)."""
    from billing.rollups import rollup

    run = rollup()
    return {"hours": run.hours, "late_hours": len(run.late_hours), "rows": run.rows}


@shared_task(
    name="billing.update_billing_records",
    autoretry_for=TRANSIENT,
    retry_backoff=5,
    max_retries=3,
)
def update_billing_records_task() -> dict[str, int]:
    """Close ended billing periods into records and keep open records current."""
    from billing.records import bill

    run = bill()
    return {"closed": run.closed, "refreshed": run.refreshed, "adjusted": run.adjusted}


@shared_task(name="billing.prune_ledger", autoretry_for=TRANSIENT, retry_backoff=60, max_retries=3)
def prune_ledger_task() -> int:
    """Remove raw usage records past ``BATON_LEDGER_RETENTION_DAYS`` (PostgreSQL: drop whole
    daily partitions; SQLite: delete rows)."""
    from billing.ledger import prune

    return prune()


@shared_task(name="billing.ensure_ledger_partitions", autoretry_for=TRANSIENT, max_retries=0)
def ensure_ledger_partitions_task() -> dict[str, int]:
    """Create the ledger's daily partitions ahead, and move rows out of its DEFAULT partition
    (PostgreSQL; nothing to do on SQLite)."""
    from billing.partitions import ensure

    run = ensure()
    return {"created": len(run.created), "moved": run.moved}


@shared_task(name="billing.reap_inflight")
def reap_inflight_task() -> dict[str, int] | None:
    """Bill the requests whose relay process died, from their durable records
    (billing/quota/reaper.py). Only with a limits Redis: the embedded default keeps its
    records in the relay process, which reaps them itself."""
    from billing import conf

    if not conf.limits_redis_url():
        return None
    from billing.quota.reaper import reap

    run = reap()
    return {"teams": run.teams, "claimed": run.claimed, "written": run.written}


@shared_task(name="billing.reconcile_counters")
def reconcile_counters_task() -> dict[str, int] | None:
    """Raise the limits store's spend counters to the ledger for every scope with recent
    spend (billing/quota/reconcile.py). Only with a limits Redis, as above."""
    from billing import conf

    if not conf.limits_redis_url():
        return None
    from billing.quota.reconcile import reconcile_recent

    run = reconcile_recent()
    if run.raised:
        log.info("raised the spend counters of %d scopes to the ledger", run.raised)
    return {"scopes": run.scopes, "raised": run.raised, "nanos": run.nanos}
