"""Model route actions: create, change and delete a team's model aliases.

Pages and API endpoints validate input with the rules in ``relay.route_forms``
and then call these. Each action checks the caller's role, checks again that
every target's credential belongs to the team, changes the route and its
targets in one transaction together with its audit event, and tells the
relay's caches once the transaction commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from accounts import audit
from accounts.actions import TeamRuleError
from accounts.invalidation import bump_team
from accounts.models import Membership, Role, Team
from relay.models import ModelRoute, RouteTarget
from relay.route_forms import TargetSpec, check_targets

_UNSET: Any = object()


def can_manage_routes(membership: Membership) -> bool:
    return membership.has_role(Role.ADMIN)


def check_can_manage(actor: Membership) -> None:
    if not can_manage_routes(actor):
        raise TeamRuleError(_("Only owners and admins can change model routes."))


def _duplicate_alias(alias: str) -> TeamRuleError:
    return TeamRuleError(
        _("This team already has a model alias named “%(alias)s”.") % {"alias": alias}
    )


def _checked(team: Team, targets: Iterable[TargetSpec]) -> list[TargetSpec]:
    """The rules again, at the last step: nothing from another team gets saved."""
    try:
        return check_targets(team, targets)
    except ValidationError as exc:
        raise TeamRuleError(" ".join(exc.messages)) from None


def describe_targets(route: ModelRoute) -> list[dict[str, Any]]:
    return [
        {
            "credential": str(t.credential_id),
            "credential_name": t.credential.name,
            "upstream_model": t.upstream_model,
            "priority": t.priority,
            "weight": t.weight,
        }
        for t in route.targets.select_related("credential").order_by("priority", "-weight", "id")
    ]


def _replace_targets(route: ModelRoute, targets: list[TargetSpec]) -> None:
    route.targets.all().delete()
    RouteTarget.objects.bulk_create(
        RouteTarget(
            team_id=route.team_id,
            route=route,
            credential=t.credential,
            upstream_model=t.upstream_model,
            priority=t.priority,
            weight=t.weight,
        )
        for t in targets
    )


def create_route(
    actor: Membership,
    *,
    alias: str,
    targets: Iterable[TargetSpec],
    description: str = "",
    request: HttpRequest | None = None,
    via: str = "",
) -> ModelRoute:
    """A new alias with its targets; arguments are already cleaned."""
    check_can_manage(actor)
    team = actor.team
    checked = _checked(team, targets)
    try:
        with transaction.atomic():
            route = ModelRoute.objects.create(team=team, alias=alias, description=description)
            _replace_targets(route, checked)
            details: dict[str, Any] = {"targets": [t.describe() for t in checked]}
            if via:
                details["via"] = via
            audit.record(team, actor.user, "route.created", route, request=request, **details)
            bump_team(team.pk)
    except IntegrityError as exc:
        raise _duplicate_alias(alias) from exc
    return route


def update_route(
    actor: Membership,
    route: ModelRoute,
    *,
    alias: str = _UNSET,
    description: str = _UNSET,
    targets: Iterable[TargetSpec] | None = None,
    request: HttpRequest | None = None,
    via: str = "",
) -> ModelRoute:
    """Change an alias; ``targets`` (when given) replace the current ones."""
    check_can_manage(actor)
    team = actor.team
    if route.team_id != team.pk:  # callers fetch through get_for_team; belt and braces
        raise TeamRuleError(_("This model alias belongs to another team."))
    checked = _checked(team, targets) if targets is not None else None
    alias = route.alias if alias is _UNSET else alias
    description = route.description if description is _UNSET else description
    try:
        with transaction.atomic():
            ModelRoute.objects.select_for_update().filter(pk=route.pk).first()
            old_targets = describe_targets(route)
            changes: dict[str, Any] = {}
            if alias != route.alias:
                changes["alias"] = {"old": route.alias, "new": alias}
            if description != route.description:
                changes["description"] = {"old": route.description, "new": description}
            if checked is not None:
                new_targets = [t.describe() for t in checked]
                if new_targets != old_targets:
                    changes["targets"] = {"old": old_targets, "new": new_targets}
            if not changes:
                return route
            route.alias, route.description = alias, description
            route.save(update_fields=["alias", "description"])
            if checked is not None and "targets" in changes:
                _replace_targets(route, checked)
            details: dict[str, Any] = {"changes": changes}
            if via:
                details["via"] = via
            audit.record(team, actor.user, "route.updated", route, request=request, **details)
            bump_team(team.pk)
    except IntegrityError as exc:
        route.refresh_from_db()
        raise _duplicate_alias(alias) from exc
    return route


def delete_route(
    actor: Membership, route: ModelRoute, *, request: HttpRequest | None = None
) -> None:
    check_can_manage(actor)
    team = actor.team
    if route.team_id != team.pk:
        raise TeamRuleError(_("This model alias belongs to another team."))
    with transaction.atomic():
        audit.record(
            team,
            actor.user,
            "route.deleted",
            route,
            request=request,
            targets=describe_targets(route),
        )
        route.delete()
        bump_team(team.pk)
