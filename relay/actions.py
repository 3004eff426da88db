"""Provider credential actions: create, edit, replace the secret, test, delete.

Pages and API endpoints validate input with the rules in ``relay.forms`` and
then call these. Each action checks the caller's role, changes rows in one
transaction, writes its audit event (never with the secret in it) and tells
the relay's caches about the change once the transaction commits.
"""

from __future__ import annotations

import uuid
from typing import Any

from asgiref.sync import async_to_sync
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from accounts import audit
from accounts.actions import TeamRuleError
from accounts.invalidation import bump_team
from accounts.models import Membership, Role
from relay import credential_test
from relay.forms import address_policy
from relay.models import CredentialStatus, Provider, ProviderCredential
from relay.secrets import CredentialBroken, reveal_secret, store_secret


def can_manage_credentials(membership: Membership) -> bool:
    return membership.has_role(Role.ADMIN)


def _check_can_manage(actor: Membership) -> None:
    if not can_manage_credentials(actor):
        raise TeamRuleError(_("Only owners and admins can manage provider keys."))


def _duplicate_name() -> TeamRuleError:
    return TeamRuleError(_("This team already has a provider key with that name."))


@sensitive_variables("secret")
def create_credential(
    actor: Membership,
    *,
    name: str,
    provider: Provider,
    secret: str,
    region: str = "",
    base_url: str = "",
    extras: dict[str, Any] | None = None,
    enabled: bool = True,
    request: HttpRequest | None = None,
) -> ProviderCredential:
    """Store a new credential; arguments are already cleaned (relay.forms)."""
    _check_can_manage(actor)
    team = actor.team
    # The id is part of the ciphertext's associated data, so it must exist
    # before the secret is encrypted.
    credential = ProviderCredential(
        id=uuid.uuid4(),
        team=team,
        name=name,
        provider=provider,
        region=region,
        base_url=base_url,
        extras=extras or {},
        enabled=enabled,
        created_by=actor.user,
    )
    try:
        with transaction.atomic():
            store_secret(credential, secret)
            credential.save(force_insert=True)
            audit.record(
                team,
                actor.user,
                "credential.created",
                credential,
                request=request,
                provider=provider.slug,
                region=region,
                base_url=base_url,
                secret=credential.masked_secret,
            )
            bump_team(team.pk)
    except IntegrityError as exc:
        raise _duplicate_name() from exc
    return credential


def update_credential(
    actor: Membership,
    credential: ProviderCredential,
    *,
    name: str,
    region: str,
    base_url: str,
    extras: dict[str, Any],
    enabled: bool,
    request: HttpRequest | None = None,
) -> ProviderCredential:
    _check_can_manage(actor)
    new = {
        "name": name,
        "region": region,
        "base_url": base_url,
        "extras": extras,
        "enabled": enabled,
    }
    changes = {
        field: {"old": getattr(credential, field), "new": value}
        for field, value in new.items()
        if getattr(credential, field) != value
    }
    if not changes:
        return credential
    try:
        with transaction.atomic():
            for field, value in new.items():
                setattr(credential, field, value)
            credential.save(update_fields=[*new, "updated_at"])
            audit.record(
                actor.team,
                actor.user,
                "credential.updated",
                credential,
                request=request,
                changes=changes,
            )
            bump_team(credential.team_id)
    except IntegrityError as exc:
        credential.refresh_from_db()
        raise _duplicate_name() from exc
    return credential


@sensitive_variables("secret")
def replace_secret(
    actor: Membership,
    credential: ProviderCredential,
    secret: str,
    *,
    request: HttpRequest | None = None,
) -> ProviderCredential:
    """Encrypt a new secret into the credential; a broken credential is repaired."""
    _check_can_manage(actor)
    old = credential.masked_secret
    with transaction.atomic():
        store_secret(credential, secret)
        credential.status = CredentialStatus.OK
        credential.status_reason = ""
        # The last test said something about the old key, not this one.
        credential.last_test_ok = None
        credential.last_test_message = ""
        credential.save(
            update_fields=[
                "secret_ciphertext",
                "secret_last4",
                "status",
                "status_reason",
                "last_test_ok",
                "last_test_message",
                "updated_at",
            ]
        )
        audit.record(
            actor.team,
            actor.user,
            "credential.secret_replaced",
            credential,
            request=request,
            old=old,
            new=credential.masked_secret,
        )
        bump_team(credential.team_id)
    return credential


def delete_credential(
    actor: Membership, credential: ProviderCredential, *, request: HttpRequest | None = None
) -> None:
    _check_can_manage(actor)
    with transaction.atomic():
        targets = credential.targets.count()
        audit.record(
            actor.team,
            actor.user,
            "credential.deleted",
            credential,
            request=request,
            provider=credential.provider_id,
            route_targets_removed=targets,
        )
        credential.delete()
        bump_team(actor.team_id)


@sensitive_variables("secret", "job")
def run_credential_test(
    actor: Membership, credential: ProviderCredential, *, request: HttpRequest | None = None
) -> credential_test.ProbeResult:
    """Send a minimal request with the credential and record what happened."""
    _check_can_manage(actor)
    try:
        secret = reveal_secret(credential)
    except CredentialBroken:
        # reveal_secret already logged, marked the credential and audited it.
        result = credential_test.ProbeResult(
            ok=False,
            decrypted=False,
            message=_(
                "The stored key cannot be decrypted. Replace the key to repair this credential."
            ),
        )
    else:
        job = credential_test.plan(credential, secret)
        del secret
        result = async_to_sync(credential_test.probe)(job, policy=address_policy())
    fields = ["last_tested_at", "last_test_ok", "last_test_message"]
    with transaction.atomic():
        credential.last_tested_at = timezone.now()
        credential.last_test_ok = result.ok
        credential.last_test_message = result.message[:500]
        if result.decrypted and credential.status == CredentialStatus.BROKEN:
            # The key decrypts again (e.g. a master key was restored).
            credential.status, credential.status_reason = CredentialStatus.OK, ""
            fields += ["status", "status_reason"]
            bump_team(credential.team_id)
        credential.save(update_fields=fields)
        audit.record(
            actor.team,
            actor.user,
            "credential.tested",
            credential,
            request=request,
            ok=result.ok,
            message=credential.last_test_message,
            latency_ms=result.latency_ms,
        )
    return result
