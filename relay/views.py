"""Pages for a team's provider credentials ("provider keys").

Every member sees the list (secrets masked); owners and admins create, edit,
test, replace the secret of and delete credentials. Objects are reached only
through ``get_for_team``: another team's credential id is a 404.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from accounts.models import Membership, Role
from accounts.pages import refusals_on, submitted
from accounts.tenancy import get_for_team, team_view
from relay import actions, dialects
from relay.forms import (
    AZURE_EXTRAS,
    OPENAI_EXTRAS,
    CredentialEditForm,
    CredentialForm,
    SecretForm,
    provider_choices,
    region_label,
)
from relay.models import ProviderCredential


def _credential(membership: Membership, credential_id: uuid.UUID) -> ProviderCredential:
    return get_for_team(
        ProviderCredential.objects.select_related("provider", "created_by"),
        membership.team_id,
        pk=credential_id,
    )


def _provider_hints() -> list[dict[str, object]]:
    """What the create form's script needs to show the right fields per provider."""
    return [
        {
            "slug": p.slug,
            "regions": [
                {"code": code, "label": region_label(code), "url": url}
                for code, url in p.regions.items()
            ],
            "default_region": p.default_region,
            "requires_base_url": p.requires_base_url or not p.regions,
            "key_optional": p.key_optional,
            "extras": list(
                AZURE_EXTRAS if p.family == "azure" else OPENAI_EXTRAS if p.slug == "openai" else ()
            ),
            "docs_url": p.docs_url,
        }
        for p in provider_choices()
    ]


@team_view()
def credential_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    credentials = ProviderCredential.objects.filter(team=membership.team).select_related("provider")
    return render(
        request,
        "relay/credentials.html",
        {
            "team": membership.team,
            "membership": membership,
            "credentials": credentials,
            "can_manage": actions.can_manage_credentials(membership),
        },
    )


# What update_credential takes from either form; create_credential also takes the provider
# and the secret.
EDITABLE = ("name", "region", "base_url", "extras", "enabled")


def _values(form: CredentialForm | CredentialEditForm, *names: str) -> dict[str, Any]:
    return {name: form.cleaned_data[name] for name in (*EDITABLE, *names)}


@sensitive_post_parameters("secret")
@team_view(min_role=Role.ADMIN)
def credential_create(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = CredentialForm(request.POST or None, team=membership.team)
    if submitted(request, form):
        with refusals_on(form, "name"):
            credential = actions.create_credential(
                membership, **_values(form, "provider", "secret"), request=request
            )
            messages.success(
                request,
                _("Provider key “%(name)s” saved. Run a test to check that it works.")
                % {"name": credential.name},
            )
            return redirect(
                "credential_detail", team_id=membership.team_id, credential_id=credential.pk
            )
    return render(
        request,
        "relay/credential_form.html",
        {
            "team": membership.team,
            "membership": membership,
            "form": form,
            "provider_hints": _provider_hints(),
        },
    )


@team_view(min_role=Role.ADMIN)
def credential_detail(
    request: HttpRequest, membership: Membership, credential_id: uuid.UUID
) -> HttpResponse:
    credential = _credential(membership, credential_id)
    form = CredentialEditForm(request.POST or None, credential=credential)
    if submitted(request, form):
        with refusals_on(form, "name"):
            actions.update_credential(membership, credential, **_values(form), request=request)
            messages.success(
                request, _("Provider key “%(name)s” updated.") % {"name": credential.name}
            )
            return redirect(
                "credential_detail", team_id=membership.team_id, credential_id=credential.pk
            )
    return _detail_page(request, membership, credential, form=form)


def _detail_page(
    request: HttpRequest,
    membership: Membership,
    credential: ProviderCredential,
    *,
    form: CredentialEditForm | None = None,
    secret_form: SecretForm | None = None,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "relay/credential_detail.html",
        {
            "team": membership.team,
            "membership": membership,
            "credential": credential,
            "form": form or CredentialEditForm(credential=credential),
            "secret_form": secret_form or SecretForm(provider=credential.provider),
            "region_label": region_label(credential.region) if credential.region else "",
            "native_dialects": [
                {"dialect": d, "label": dialects.label(d), "url": url}
                for d, url in sorted(credential.native_dialects().items())
            ],
        },
        status=status,
    )


@sensitive_post_parameters("secret")
@team_view(min_role=Role.ADMIN)
def credential_secret(
    request: HttpRequest, membership: Membership, credential_id: uuid.UUID
) -> HttpResponse:
    credential = _credential(membership, credential_id)
    if request.method != "POST":
        return redirect(
            "credential_detail", team_id=membership.team_id, credential_id=credential.pk
        )
    secret_form = SecretForm(request.POST, provider=credential.provider)
    if not secret_form.is_valid():
        return _detail_page(request, membership, credential, secret_form=secret_form, status=400)
    actions.replace_secret(
        membership, credential, secret_form.cleaned_data["secret"], request=request
    )
    messages.success(
        request,
        _("The key of “%(name)s” was replaced. It now ends in %(last4)s.")
        % {"name": credential.name, "last4": credential.masked_secret},
    )
    return redirect("credential_detail", team_id=membership.team_id, credential_id=credential.pk)


@team_view(min_role=Role.ADMIN)
@require_POST
def credential_test(
    request: HttpRequest, membership: Membership, credential_id: uuid.UUID
) -> HttpResponse:
    credential = _credential(membership, credential_id)
    result = actions.run_credential_test(membership, credential, request=request)
    if result.ok:
        messages.success(
            request,
            _("Test of “%(name)s”: %(message)s")
            % {"name": credential.name, "message": result.message},
        )
    else:
        messages.error(
            request,
            _("Test of “%(name)s” failed: %(message)s")
            % {"name": credential.name, "message": result.message},
        )
    next_page = request.POST.get("next")
    if next_page == "list":
        return redirect("credential_list", team_id=membership.team_id)
    return redirect("credential_detail", team_id=membership.team_id, credential_id=credential.pk)


@team_view(min_role=Role.ADMIN)
def credential_delete(
    request: HttpRequest, membership: Membership, credential_id: uuid.UUID
) -> HttpResponse:
    credential = _credential(membership, credential_id)
    if request.method == "POST":
        name = credential.name
        actions.delete_credential(membership, credential, request=request)
        messages.success(request, _("Provider key “%(name)s” deleted.") % {"name": name})
        return redirect("credential_list", team_id=membership.team_id)
    return render(
        request,
        "relay/credential_delete.html",
        {
            "team": membership.team,
            "membership": membership,
            "credential": credential,
            "targets": credential.targets.select_related("route").order_by("route__alias"),
        },
    )
