from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from accounts import actions
from accounts.models import Invitation, Role
from accounts.tasks import purge_expired_invitations
from config.celery import app
from tests.conftest import Cast


def test_purge_removes_only_long_expired_invitations(cast: Cast) -> None:
    alice = cast.membership(cast.alice)
    old = actions.invite(alice, email="old@example.com", role=Role.MEMBER).invitation
    fresh = actions.invite(alice, email="fresh@example.com", role=Role.MEMBER).invitation
    Invitation.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(days=31))
    Invitation.objects.filter(pk=fresh.pk).update(expires_at=timezone.now() - timedelta(days=1))
    assert purge_expired_invitations() == 1
    assert list(Invitation.objects.values_list("email", flat=True)) == ["fresh@example.com"]


def test_beat_schedule_names_registered_tasks() -> None:
    app.loader.import_default_modules()
    scheduled = [entry["task"] for entry in app.conf.beat_schedule.values()]
    # Every periodic job Baton relies on is scheduled (a schedule that lost them, or an empty
    # one, fails here), and each names a task that exists.
    assert set(scheduled) >= {
        "accounts.purge_expired_invitations",
        "billing.consume_usage",
        "billing.charge_usage",
        "billing.rollup_usage",
        "billing.update_billing_records",
        "billing.prune_ledger",
    }
    assert [task for task in scheduled if task not in app.tasks] == []
