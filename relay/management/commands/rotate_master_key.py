"""Re-wrap every team data key under the primary (first) master key.

Each team is re-wrapped in its own transaction and teams already wrapped by
the primary key are skipped, so an interrupted run is finished by running it
again. Once it reports nothing left, the old master key can be removed from
BATON_MASTER_KEYS.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts import audit
from accounts.models import Team
from relay import envelope
from relay.secrets import keyring


class Command(BaseCommand):
    help = "Re-wrap all team data keys under the first key in BATON_MASTER_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        ring = keyring()
        primary = ring.primary_id
        rewrapped = skipped = 0
        for team_id in (
            Team.objects.exclude(wrapped_data_key="").values_list("pk", flat=True).iterator()
        ):
            with transaction.atomic():
                team = Team.objects.select_for_update().get(pk=team_id)
                old_id = envelope.wrapped_key_master_id(team.wrapped_data_key)
                if old_id == primary:
                    skipped += 1
                    continue
                team.wrapped_data_key = envelope.rewrap_data_key(
                    ring, team.wrapped_data_key, team_id=str(team.pk)
                )
                team.save(update_fields=["wrapped_data_key"])
                audit.record(team, None, "team.master_key_rotated", team, old=old_id, new=primary)
                rewrapped += 1
        self.stdout.write(
            f"Re-wrapped {rewrapped} team data key(s) under {primary}; {skipped} already used it."
        )
