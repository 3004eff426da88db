"""The one way views and API endpoints reach team-owned data.

Every team-scoped URL carries ``team_id``. The helpers here resolve the
caller's membership for that team once, and answer 404 to anyone who is not a
member, so an outsider cannot even learn that the team exists. A member whose
role is too low for an action gets 403: they already know the team.

Objects are fetched through ``get_for_team``, which filters by the team first.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse

from accounts.models import Membership, Role, User

M = TypeVar("M", bound=models.Model)

SESSION_TEAM_KEY = "current_team_id"

TeamView = Callable[..., HttpResponse]


def current_user(request: HttpRequest) -> User:
    """The logged-in user (views using this are behind login_required / IsAuthenticated)."""
    user = request.user
    if not user.is_authenticated:
        raise PermissionDenied
    return cast(User, user)


def get_membership(request: HttpRequest, team_id: uuid.UUID | str) -> Membership:
    """The requesting user's membership in the team, or 404."""
    user = request.user
    if not user.is_authenticated:
        raise Http404
    try:
        return Membership.objects.select_related("team", "user").get(team_id=team_id, user=user)
    except (Membership.DoesNotExist, ValidationError, ValueError, TypeError) as exc:
        raise Http404 from exc


def require_role(membership: Membership, minimum: str) -> None:
    if not membership.has_role(minimum):
        raise PermissionDenied


def get_for_team(model_or_qs: type[M] | models.QuerySet[M], team_id: Any, **lookup: Any) -> M:
    """One team-owned object, or 404 when it is missing or belongs to another team."""
    queryset = (
        model_or_qs
        if isinstance(model_or_qs, models.QuerySet)
        else model_or_qs._default_manager.all()
    )
    try:
        return queryset.get(team_id=team_id, **lookup)
    except (ObjectDoesNotExist, ValidationError, ValueError, TypeError) as exc:
        raise Http404 from exc


def team_view(
    min_role: str = Role.VIEWER, write_role: str | None = None
) -> Callable[[TeamView], Callable[..., HttpResponse]]:
    """Decorate a page under ``/t/<team_id>/``.

    The view receives the caller's ``Membership`` instead of ``team_id``.
    Non-members get 404; members below ``min_role`` (or below ``write_role``
    for unsafe methods) get 403. The team becomes the session's current team.
    """

    def decorate(view: TeamView) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def wrapper(
            request: HttpRequest, team_id: uuid.UUID, *args: Any, **kwargs: Any
        ) -> HttpResponse:
            membership = get_membership(request, team_id)
            require_role(membership, min_role)
            if write_role is not None and request.method not in ("GET", "HEAD", "OPTIONS"):
                require_role(membership, write_role)
            request.membership = membership  # type: ignore[attr-defined]
            request.session[SESSION_TEAM_KEY] = str(membership.team_id)
            return view(request, membership, *args, **kwargs)

        return wrapper

    return decorate
