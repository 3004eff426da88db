"""Every periodic task, in one place. Periodic runs expire so a backlog after
an outage does not run the same housekeeping many times over."""

from __future__ import annotations

from celery.schedules import crontab
from django.conf import settings

BEAT_SCHEDULE = {
    "purge-expired-invitations": {
        "task": "accounts.purge_expired_invitations",
        "schedule": crontab(minute=17, hour=3),
        "options": {"expires": 3600},
    },
    "charge-usage": {
        "task": "billing.charge_usage",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Metering: the Redis usage stream into the ledger, the ledger into hourly
    # rollups, rollups into billing records, and the ledger's retention.
    "consume-usage": {
        "task": "billing.consume_usage",
        "schedule": 5.0,
        "options": {"expires": 5},
    },
    "rollup-usage": {
        "task": "billing.rollup_usage",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "update-billing-records": {
        "task": "billing.update_billing_records",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Daily ledger partitions a week ahead (PostgreSQL), and rows the DEFAULT one caught.
    "ensure-ledger-partitions": {
        "task": "billing.ensure_ledger_partitions",
        "schedule": crontab(minute=23),
        "options": {"expires": 3000},
    },
    # Limits (billing/quota/): requests whose relay process died billed from their
    # in-flight records, and spend counters raised to the ledger.
    "reap-inflight": {
        "task": "billing.reap_inflight",
        "schedule": 5.0,
        "options": {"expires": 5},
    },
    "reconcile-counters": {
        "task": "billing.reconcile_counters",
        "schedule": float(settings.BATON_RECONCILE_SECONDS),
        "options": {"expires": float(settings.BATON_RECONCILE_SECONDS)},
    },
    "prune-ledger": {
        "task": "billing.prune_ledger",
        "schedule": crontab(minute=41, hour=4),
        "options": {"expires": 3600},
    },
}
