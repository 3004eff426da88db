"""The Celery app. Tasks live in each app's ``tasks.py``; the beat schedule in
``billing/schedule.py`` once metering lands."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("baton")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
