"""Pages for a team's API keys (the keys clients send to /v1).

Everyone in the team sees the list (keys masked). Members create keys and
edit or revoke their own; owners and admins manage every key. A new key is
shown once, in the response to the form that created it, never again.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_POST

from accounts import apikeys
from accounts.actions import TeamRuleError
from accounts.models import ApiKey, Membership, Role
from accounts.pages import refusals_on, relay_base_url, submitted
from accounts.tenancy import get_for_team, team_view
from console.examples import example_model
from console.forms import ApiKeyForm


def _api_key(membership: Membership, key_id: uuid.UUID) -> ApiKey:
    return get_for_team(ApiKey.objects.select_related("created_by"), membership.team_id, pk=key_id)


@team_view()
def api_key_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    keys = list(
        ApiKey.objects.filter(team=membership.team).select_related("created_by", "revoked_by")
    )
    for key in keys:
        key.can_manage = apikeys.can_manage(membership, key)  # type: ignore[attr-defined]
    return render(
        request,
        "accounts/api_keys.html",
        {
            "team": membership.team,
            "membership": membership,
            "active_keys": [k for k in keys if k.revoked_at is None],
            "revoked_keys": [k for k in keys if k.revoked_at is not None][:50],
            "can_create": apikeys.can_create(membership),
            "now": timezone.now(),
            "base_url": relay_base_url(request),
        },
    )


@sensitive_variables("issued", "response")
@team_view(min_role=Role.MEMBER)
def api_key_create(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = ApiKeyForm(request.POST or None, team=membership.team)
    if submitted(request, form):
        with refusals_on(form, "name"):
            issued = apikeys.create_api_key(membership, **form.cleaned_data, request=request)
            response = render(
                request,
                "accounts/api_keys_created.html",
                {
                    "team": membership.team,
                    "membership": membership,
                    "issued": issued,
                    "base_url": relay_base_url(request),
                    "example": example_model(
                        membership.team, issued.api_key.allowed_models or None
                    ),
                    "credential_create_url": reverse(
                        "credential_create", kwargs={"team_id": membership.team_id}
                    ),
                },
            )
            # The page holds the only copy of the key: keep it out of caches.
            response["Cache-Control"] = "no-store"
            return response
    return render(
        request,
        "accounts/api_keys_form.html",
        {"team": membership.team, "membership": membership, "form": form, "api_key": None},
    )


@team_view(min_role=Role.MEMBER)
def api_key_edit(request: HttpRequest, membership: Membership, key_id: uuid.UUID) -> HttpResponse:
    api_key = _api_key(membership, key_id)
    if not apikeys.can_manage(membership, api_key) or api_key.revoked_at is not None:
        raise PermissionDenied
    form = ApiKeyForm(request.POST or None, team=membership.team, instance=api_key)
    if submitted(request, form):
        with refusals_on(form, "name"):
            apikeys.update_api_key(membership, api_key, **form.cleaned_data, request=request)
            messages.success(request, _("API key “%(name)s” updated.") % {"name": api_key.name})
            return redirect("api_key_list", team_id=membership.team_id)
    return render(
        request,
        "accounts/api_keys_form.html",
        {"team": membership.team, "membership": membership, "form": form, "api_key": api_key},
    )


@team_view(min_role=Role.MEMBER)
@require_POST
def api_key_revoke(request: HttpRequest, membership: Membership, key_id: uuid.UUID) -> HttpResponse:
    api_key = _api_key(membership, key_id)
    try:
        apikeys.revoke_api_key(membership, api_key, request=request)
    except TeamRuleError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("API key “%(name)s” revoked.") % {"name": api_key.name})
    return redirect("api_key_list", team_id=membership.team_id)
