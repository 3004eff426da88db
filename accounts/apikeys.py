"""Team API key actions: issue, edit and revoke keys for the /v1 relay.

Members issue keys and edit or revoke their own; owners and admins edit and
revoke anyone's; viewers only look. A key is ``ApiKey.PREFIX`` plus 32 random
base62 characters (``accounts.tokens``); only its HMAC, a lookup prefix and
its last four characters are stored, and the key itself is handed back once.
Every change is audited (never with the key) and reaches the relay's caches
through ``accounts.invalidation`` as soon as the transaction commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from accounts import audit, tokens
from accounts.actions import TeamRuleError
from accounts.invalidation import bump_team
from accounts.models import ApiKey, Membership, Role

EDITABLE_FIELDS = (
    "name",
    "allowed_models",
    "expires_at",
    "ip_allowlist",
    "rpm_limit",
    "tpm_limit",
    "budget_limit",
    "budget_period",
)


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKey
    key: str  # the only copy; shown once, never stored


def can_create(membership: Membership) -> bool:
    return membership.has_role(Role.MEMBER)


def can_manage(membership: Membership, api_key: ApiKey) -> bool:
    """Whether the member may edit or revoke this key."""
    if membership.has_role(Role.ADMIN):
        return True
    return membership.has_role(Role.MEMBER) and api_key.created_by_id == membership.user_id


def _check_can_manage(actor: Membership, api_key: ApiKey) -> None:
    if not can_manage(actor, api_key):
        raise PermissionDenied(_("Members can only change their own API keys."))


def _duplicate_name() -> TeamRuleError:
    return TeamRuleError(_("This team already has an active API key with that name."))


@sensitive_variables("issued")
def create_api_key(
    actor: Membership,
    *,
    name: str,
    allowed_models: list[str] | None = None,
    expires_at: datetime | None = None,
    ip_allowlist: list[str] | None = None,
    rpm_limit: int | None = None,
    tpm_limit: int | None = None,
    budget_limit: Decimal | None = None,
    budget_period: str = "month",
    request: HttpRequest | None = None,
) -> IssuedApiKey:
    """Issue a key; arguments are already cleaned (accounts.apikey_rules)."""
    if not can_create(actor):
        raise PermissionDenied(_("Viewers cannot create API keys."))
    issued = tokens.issue(ApiKey.PREFIX)
    try:
        with transaction.atomic():
            api_key = ApiKey.objects.create(
                team=actor.team,
                name=name,
                created_by=actor.user,
                lookup=issued.lookup,
                digest=issued.digest,
                last4=issued.last4,
                allowed_models=allowed_models or [],
                expires_at=expires_at,
                ip_allowlist=ip_allowlist or [],
                rpm_limit=rpm_limit,
                tpm_limit=tpm_limit,
                budget_limit=budget_limit,
                budget_period=budget_period,
            )
            audit.record(
                actor.team,
                actor.user,
                "api_key.created",
                api_key,
                request=request,
                **{
                    field: audit.jsonable(getattr(api_key, field))
                    for field in EDITABLE_FIELDS
                    if field != "name"
                },
            )
            bump_team(actor.team_id)
    except IntegrityError as exc:
        raise _duplicate_name() from exc
    return IssuedApiKey(api_key=api_key, key=issued.token)


def update_api_key(
    actor: Membership, api_key: ApiKey, *, request: HttpRequest | None = None, **values: Any
) -> ApiKey:
    """Change any of ``EDITABLE_FIELDS``; a revoked key cannot be changed."""
    _check_can_manage(actor, api_key)
    if api_key.revoked_at is not None:
        raise TeamRuleError(_("This API key has been revoked and cannot be changed."))
    changes = audit.changes(api_key, values, EDITABLE_FIELDS)
    if not changes:
        return api_key
    try:
        with transaction.atomic():
            for field in changes:
                setattr(api_key, field, values[field])
            api_key.save(update_fields=list(changes))
            audit.record(
                actor.team, actor.user, "api_key.updated", api_key, request=request, changes=changes
            )
            bump_team(api_key.team_id)
    except IntegrityError as exc:
        api_key.refresh_from_db()
        raise _duplicate_name() from exc
    return api_key


def revoke_api_key(
    actor: Membership, api_key: ApiKey, *, request: HttpRequest | None = None
) -> ApiKey:
    _check_can_manage(actor, api_key)
    with transaction.atomic():
        locked = ApiKey.objects.select_for_update().get(pk=api_key.pk)
        if locked.revoked_at is not None:
            raise TeamRuleError(_("This API key is already revoked."))
        api_key.revoked_at = timezone.now()
        api_key.revoked_by = actor.user
        api_key.save(update_fields=["revoked_at", "revoked_by"])
        audit.record(actor.team, actor.user, "api_key.revoked", api_key, request=request)
        bump_team(api_key.team_id)
    return api_key
