"""Housekeeping for accounts."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from accounts.models import Invitation

# Expired invitations are kept a while so an invitee who clicks late is told
# "expired" rather than "not valid".
KEEP_EXPIRED = timedelta(days=30)


@shared_task(name="accounts.purge_expired_invitations")
def purge_expired_invitations() -> int:
    cutoff = timezone.now() - KEEP_EXPIRED
    deleted, _ = Invitation.objects.filter(accepted_at=None, expires_at__lt=cutoff).delete()
    return deleted
