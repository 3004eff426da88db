"""The base for every team-scoped API endpoint.

Resolves the team from the URL once, answers 404 to non-members, checks the
role per method, and scopes every queryset to the team. Subclasses declare
``team_queryset`` instead of overriding ``get_queryset``: a reviewer can trust
that nothing here returns another team's rows.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from rest_framework import viewsets
from rest_framework.request import Request

from accounts.models import Membership, Role, Team
from accounts.tenancy import get_membership, require_role


class TeamScopedViewSet(viewsets.GenericViewSet):
    read_role: str = Role.VIEWER
    write_role: str = Role.ADMIN
    team_queryset: models.QuerySet[Any]

    membership: Membership
    team: Team

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__} must declare team_queryset, not override get_queryset")

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.membership = get_membership(request, self.kwargs["team_id"])
        self.team = self.membership.team
        safe = request.method in ("GET", "HEAD", "OPTIONS")
        require_role(self.membership, self.read_role if safe else self.write_role)

    def get_queryset(self) -> models.QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no team
            return self.team_queryset.none()
        return self.team_queryset.filter(team=self.team)

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if hasattr(self, "team"):
            context["team"] = self.team
            context["membership"] = self.membership
        return context
