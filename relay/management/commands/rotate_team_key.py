"""Give one team a fresh data key and re-encrypt its secrets under it.

Everything happens in one transaction with the team row locked: an interrupted
run leaves the old key and ciphertexts untouched, and running it again starts
over cleanly. Relay processes keep serving from their decrypted cache and pick
up the new ciphertexts through the normal invalidation.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts import audit
from accounts.models import Team
from relay import envelope
from relay.models import ProviderCredential
from relay.secrets import keyring, reveal_secret


class Command(BaseCommand):
    help = "Re-encrypt a team's provider secrets under a new team data key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("team", help="the team's id")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            team = Team.objects.get(pk=options["team"])
        except (Team.DoesNotExist, ValueError) as exc:
            raise CommandError(f"No team with id {options['team']!r}") from exc
        except Exception as exc:  # invalid UUID spellings raise ValidationError
            raise CommandError(f"No team with id {options['team']!r}") from exc
        with transaction.atomic():
            team = Team.objects.select_for_update().get(pk=team.pk)
            credentials = list(ProviderCredential.objects.select_for_update().filter(team=team))
            plaintexts = {c.pk: reveal_secret(c) for c in credentials}
            new_dek = envelope.generate_data_key()
            for credential in credentials:
                credential.secret_ciphertext = envelope.encrypt_secret(
                    new_dek,
                    plaintexts[credential.pk],
                    team_id=str(team.pk),
                    credential_id=str(credential.pk),
                )
                credential.save(update_fields=["secret_ciphertext", "updated_at"])
            team.wrapped_data_key = envelope.wrap_data_key(keyring(), new_dek, team_id=str(team.pk))
            team.save(update_fields=["wrapped_data_key"])
            audit.record(team, None, "team.data_key_rotated", team, credentials=len(credentials))
        self.stdout.write(
            f"Re-encrypted {len(credentials)} secret(s) of team {team.pk} under a new data key."
        )
