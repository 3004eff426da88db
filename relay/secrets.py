"""Team data keys and provider secrets, on top of relay/envelope.py.

Each team's data key is created on first use and stored wrapped by the primary
master key. Secrets are encrypted under it with associated data that binds the
ciphertext to its team and credential, so a ciphertext copied into another
row cannot be decrypted. Failures are loud: the credential is marked broken,
the team's audit log records it, and the caller gets ``CredentialBroken``.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from django.conf import settings
from django.db import transaction

from accounts import audit
from accounts.models import Team
from relay import envelope
from relay.models import CredentialStatus, ProviderCredential

log = logging.getLogger("baton.secrets")

MAX_SECRET_LENGTH = 4096


class CredentialBroken(Exception):
    """A stored secret could not be decrypted. The message names the credential only."""


@lru_cache(maxsize=1)
def keyring() -> envelope.MasterKeyring:
    return envelope.MasterKeyring.parse(settings.BATON_MASTER_KEYS)


def team_data_key(team: Team) -> bytes:
    """The team's data key, creating and storing it (wrapped) on first use."""
    if not team.wrapped_data_key:
        with transaction.atomic():
            locked = Team.objects.select_for_update().get(pk=team.pk)
            if not locked.wrapped_data_key:
                locked.wrapped_data_key = envelope.wrap_data_key(
                    keyring(), envelope.generate_data_key(), team_id=str(team.pk)
                )
                locked.save(update_fields=["wrapped_data_key"])
            team.wrapped_data_key = locked.wrapped_data_key
    return envelope.unwrap_data_key(keyring(), team.wrapped_data_key, team_id=str(team.pk))


def store_secret(credential: ProviderCredential, plaintext: str) -> None:
    """Encrypt ``plaintext`` into the credential (the caller saves it)."""
    dek = team_data_key(credential.team)
    credential.secret_ciphertext = envelope.encrypt_secret(
        dek, plaintext, team_id=str(credential.team_id), credential_id=str(credential.pk)
    )
    credential.secret_last4 = plaintext[-4:] if len(plaintext) >= 8 else ""


def reveal_secret(credential: ProviderCredential) -> str:
    try:
        dek = team_data_key(credential.team)
        return envelope.decrypt_secret(
            dek,
            credential.secret_ciphertext,
            team_id=str(credential.team_id),
            credential_id=str(credential.pk),
        )
    except envelope.DecryptionError as exc:
        _mark_broken(credential, str(exc))
        raise CredentialBroken(
            f"The secret of provider credential {credential.name!r} ({credential.pk}) cannot be decrypted"
        ) from exc


def _mark_broken(credential: ProviderCredential, reason: str) -> None:
    log.error(
        "decryption failed for provider credential %s (%s) of team %s: %s",
        credential.pk,
        credential.name,
        credential.team_id,
        reason,
    )
    with transaction.atomic():
        ProviderCredential.objects.filter(pk=credential.pk).update(
            status=CredentialStatus.BROKEN, status_reason="decryption failed"
        )
        audit.record(credential.team, None, "credential.decrypt_failed", credential, reason=reason)
    credential.status = CredentialStatus.BROKEN
