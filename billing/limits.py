"""Editing limits: the team's, each API key's and each provider credential's.

Owners and admins change limits; everyone in the team sees them. Every
change is audited with its old and new values and reaches the relay within a
second (relay/signals.py bumps the team's cache version on save). A key's
requests and tokens per minute live on ``ApiKey`` itself and go through
``accounts.apikeys.update_api_key``; its other limits live in ``KeyLimits``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from accounts import apikeys, audit
from accounts.actions import TeamRuleError
from accounts.models import ApiKey, Membership, Role
from billing.models import CredentialLimits, KeyLimits, TeamLimits
from relay.models import ProviderCredential

TEAM_FIELDS = ("rpm_limit", "tpm_limit", "max_concurrent", "daily_budget", "monthly_budget")
KEY_FIELDS = (
    "rpm_limit",
    "tpm_limit",
    "max_concurrent",
    "daily_budget",
    "monthly_budget",
    "lifetime_budget",
)
KEY_OWN_FIELDS = ("rpm_limit", "tpm_limit")  # stored on ApiKey
CREDENTIAL_FIELDS = ("rpm_limit", "tpm_limit")


def can_edit(membership: Membership) -> bool:
    return membership.has_role(Role.ADMIN)


def _check_can_edit(actor: Membership) -> None:
    if not can_edit(actor):
        raise PermissionDenied(_("Only owners and admins can change limits."))


def jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _apply(instance: Any, values: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    unknown = set(values) - set(allowed)
    if unknown:
        raise TypeError(f"not editable: {sorted(unknown)}")
    changes = {
        name: {"old": jsonable(getattr(instance, name)), "new": jsonable(value)}
        for name, value in values.items()
        if getattr(instance, name) != value
    }
    for name in changes:
        setattr(instance, name, values[name])
    return changes


def team_limits(team_id: Any) -> TeamLimits:
    """The team's row, or an unsaved one with the defaults of a team without limits."""
    return TeamLimits.objects.filter(team_id=team_id).first() or TeamLimits(team_id=team_id)


def key_limits(api_key: ApiKey) -> KeyLimits:
    return KeyLimits.objects.filter(api_key=api_key).first() or KeyLimits(
        api_key=api_key, team_id=api_key.team_id
    )


def credential_limits(credential: ProviderCredential) -> CredentialLimits:
    return CredentialLimits.objects.filter(credential=credential).first() or CredentialLimits(
        credential=credential, team_id=credential.team_id
    )


def update_team_limits(
    actor: Membership, *, request: HttpRequest | None = None, **values: Any
) -> TeamLimits:
    _check_can_edit(actor)
    with transaction.atomic():
        limits = TeamLimits.objects.select_for_update().filter(team=actor.team).first()
        if limits is None:
            limits = TeamLimits(team=actor.team)
        changes = _apply(limits, values, TEAM_FIELDS)
        if changes:
            limits.full_clean()
            limits.save()
            audit.record(
                actor.team,
                actor.user,
                "limits.team_updated",
                actor.team,
                request=request,
                changes=changes,
            )
    return limits


def update_key_limits(
    actor: Membership, api_key: ApiKey, *, request: HttpRequest | None = None, **values: Any
) -> KeyLimits:
    _check_can_edit(actor)
    if api_key.team_id != actor.team_id:
        raise PermissionDenied
    if api_key.revoked_at is not None:
        raise TeamRuleError(_("This API key has been revoked and cannot be changed."))
    own = {name: values.pop(name) for name in KEY_OWN_FIELDS if name in values}
    with transaction.atomic():
        if own:
            apikeys.update_api_key(actor, api_key, request=request, **own)
        limits = KeyLimits.objects.select_for_update().filter(api_key=api_key).first()
        if limits is None:
            limits = KeyLimits(api_key=api_key, team_id=api_key.team_id)
        changes = _apply(limits, values, KEY_FIELDS)
        if changes:
            limits.full_clean()
            limits.save()
            audit.record(
                actor.team,
                actor.user,
                "limits.key_updated",
                api_key,
                request=request,
                changes=changes,
            )
    return limits


def update_credential_limits(
    actor: Membership,
    credential: ProviderCredential,
    *,
    request: HttpRequest | None = None,
    **values: Any,
) -> CredentialLimits:
    _check_can_edit(actor)
    if credential.team_id != actor.team_id:
        raise PermissionDenied
    with transaction.atomic():
        limits = CredentialLimits.objects.select_for_update().filter(credential=credential).first()
        if limits is None:
            limits = CredentialLimits(credential=credential, team_id=credential.team_id)
        changes = _apply(limits, values, CREDENTIAL_FIELDS)
        if changes:
            limits.full_clean()
            limits.save()
            audit.record(
                actor.team,
                actor.user,
                "limits.credential_updated",
                credential,
                request=request,
                changes=changes,
            )
    return limits
