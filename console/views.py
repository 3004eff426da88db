"""The team overview: where a team starts, drawing on every control-plane app."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts import apikeys
from accounts.models import Membership
from accounts.pages import relay_base_url
from accounts.tenancy import team_view
from console.examples import Source, example_model
from relay.actions import can_manage_credentials
from relay.models import ProviderCredential


@team_view()
def team_overview(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    example = example_model(team)
    return render(
        request,
        "accounts/overview.html",
        {
            "team": team,
            "membership": membership,
            # Getting started: with a model to call (the demo upstream on a new team) the
            # first request comes first and a real provider after it; without one, the
            # provider key comes first.
            "example": example,
            "has_api_key": team.api_keys.filter(revoked_at=None).exists(),
            "has_provider": ProviderCredential.objects.filter(team=team)
            .exclude(provider__is_demo=True)
            .exists(),
            "on_demo": example.source == Source.DEMO,
            "can_create_key": apikeys.can_create(membership),
            "can_add_provider": can_manage_credentials(membership),
            "base_url": relay_base_url(request),
        },
    )
