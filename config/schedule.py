"""Every periodic task, in one place. Periodic runs expire so a backlog after
an outage does not run the same housekeeping many times over."""

from __future__ import annotations

from celery.schedules import crontab

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
}
