"""Billing housekeeping."""

from __future__ import annotations

from celery import shared_task

from billing.usage import CHARGE_BATCH, charge_usage


@shared_task(name="billing.charge_usage")
def charge_usage_task() -> int:
    """Debit the credit ledger for usage recorded since the last run."""
    total = 0
    while True:
        seen = charge_usage()
        total += seen
        if seen < CHARGE_BATCH:
            return total
