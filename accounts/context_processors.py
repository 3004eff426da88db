"""Puts the current team and the user's other teams into every page."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.models import Membership
from accounts.tenancy import SESSION_TEAM_KEY


def current_team(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    memberships = list(
        Membership.objects.filter(user=user).select_related("team").order_by("team__name")
    )
    current = getattr(request, "membership", None)
    if current is None:
        wanted = request.session.get(SESSION_TEAM_KEY)
        current = next((m for m in memberships if str(m.team_id) == wanted), None)
    if current is None and memberships:
        current = next((m for m in memberships if m.team.is_personal), memberships[0])
    return {"user_memberships": memberships, "current_membership": current}
