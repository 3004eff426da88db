"""Editing limits: the team's, each API key's and each provider credential's.

Owners and admins change limits; everyone in the team sees them. Every
change is audited with its old and new values and reaches the relay within a
second (billing/signals.py bumps the team's cache version on save). A key's
requests and tokens per minute live on ``ApiKey`` itself and go through
``accounts.apikeys.update_api_key``; its other limits live in ``KeyLimits``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from accounts import apikeys, audit
from accounts.actions import TeamRuleError
from accounts.models import ApiKey, Membership, Role, Team
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

Row = TypeVar("Row", TeamLimits, KeyLimits, CredentialLimits)


def can_edit(membership: Membership) -> bool:
    return membership.has_role(Role.ADMIN)


def _check_can_edit(actor: Membership) -> None:
    if not can_edit(actor):
        raise PermissionDenied(_("Only owners and admins can change limits."))


def _apply(instance: Any, values: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    changes = audit.changes(instance, values, allowed)
    for name in changes:
        setattr(instance, name, values[name])
    return changes


@dataclass(frozen=True)
class _Kind(Generic[Row]):
    """One kind of limits row: what it belongs to and how a change is audited."""

    model: type[Row]
    owner: str  # the row's field naming the team, key or credential it belongs to
    fields: tuple[str, ...]
    action: str

    def row(self, owner: Any, *, lock: bool = False) -> Row:
        """``owner``'s row, or an unsaved one with the defaults of no limits."""
        rows = self.model.objects.filter(**{self.owner: owner})
        if lock:
            rows = rows.select_for_update()
        row = rows.first()
        if row is None:
            row = self.model(**{self.owner: owner})
            row.team_id = _team_id(owner)
        return row

    def update(
        self,
        actor: Membership,
        owner: Any,
        values: dict[str, Any],
        request: HttpRequest | None,
        before: Callable[[], None] | None = None,
    ) -> Row:
        """Change ``owner``'s row (``before`` runs first, in the same transaction) and audit
        what changed."""
        _check_can_edit(actor)
        if _team_id(owner) != actor.team_id:
            raise PermissionDenied
        with transaction.atomic():
            if before is not None:
                before()
            limits = self.row(owner, lock=True)
            changes = _apply(limits, values, self.fields)
            if changes:
                limits.full_clean()
                limits.save()
                audit.record(
                    actor.team, actor.user, self.action, owner, request=request, changes=changes
                )
        return limits


def _team_id(owner: Team | ApiKey | ProviderCredential) -> Any:
    return owner.pk if isinstance(owner, Team) else owner.team_id


TEAM = _Kind(TeamLimits, "team", TEAM_FIELDS, "limits.team_updated")
KEY = _Kind(KeyLimits, "api_key", KEY_FIELDS, "limits.key_updated")
CREDENTIAL = _Kind(CredentialLimits, "credential", CREDENTIAL_FIELDS, "limits.credential_updated")


def team_limits(team_id: Any) -> TeamLimits:
    """The team's row, or an unsaved one with the defaults of a team without limits."""
    return TeamLimits.objects.filter(team_id=team_id).first() or TeamLimits(team_id=team_id)


def key_limits(api_key: ApiKey) -> KeyLimits:
    return KEY.row(api_key)


def credential_limits(credential: ProviderCredential) -> CredentialLimits:
    return CREDENTIAL.row(credential)


def update_team_limits(
    actor: Membership, *, request: HttpRequest | None = None, **values: Any
) -> TeamLimits:
    return TEAM.update(actor, actor.team, values, request)


def update_key_limits(
    actor: Membership, api_key: ApiKey, *, request: HttpRequest | None = None, **values: Any
) -> KeyLimits:
    own = {name: values.pop(name) for name in KEY_OWN_FIELDS if name in values}

    def own_fields_first() -> None:
        if api_key.revoked_at is not None:
            raise TeamRuleError(_("This API key has been revoked and cannot be changed."))
        if own:
            apikeys.update_api_key(actor, api_key, request=request, **own)

    return KEY.update(actor, api_key, values, request, before=own_fields_first)


def update_credential_limits(
    actor: Membership,
    credential: ProviderCredential,
    *,
    request: HttpRequest | None = None,
    **values: Any,
) -> CredentialLimits:
    return CREDENTIAL.update(actor, credential, values, request)
