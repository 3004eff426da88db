"""Pages for a team's models: aliases and their targets, and the relocation helper.

Every member sees the aliases and the models the team's provider keys offer;
owners and admins create, edit and delete aliases and use the relocation
helper. Routes are reached only through ``get_for_team``: another team's
route id is a 404, and target credentials come from the team's own list.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from accounts.models import ApiKey, Membership, Role, Team
from accounts.pages import refusals_on, relay_base_url, submitted
from accounts.tenancy import get_for_team, team_view
from relay import dialects, relocation, routes
from relay.models import CredentialStatus, ModelRoute, ProviderCredential, RouteTarget
from relay.route_forms import RouteForm, target_formset


def optional_url(name: str, team_id: Any) -> str | None:
    """The URL of a page another part of Baton may or may not provide yet."""
    try:
        return reverse(name, kwargs={"team_id": team_id})
    except NoReverseMatch:
        return None


def _routes(team: Team) -> list[ModelRoute]:
    targets = RouteTarget.objects.select_related("credential__provider").order_by(
        "priority", "-weight", "id"
    )
    return list(
        ModelRoute.objects.filter(team=team).prefetch_related(Prefetch("targets", queryset=targets))
    )


def _route(membership: Membership, route_id: int) -> ModelRoute:
    return get_for_team(
        ModelRoute.objects.prefetch_related("targets__credential__provider"),
        membership.team_id,
        pk=route_id,
    )


def _credentials(team: Team) -> list[ProviderCredential]:
    return list(
        ProviderCredential.objects.filter(team=team)
        .select_related("provider")
        .order_by("created_at", "name")
    )


def target_skipped(target: RouteTarget) -> str:
    """Why the relay skips this target right now, or ""."""
    credential = target.credential
    if not credential.enabled:
        return _("Provider key disabled")
    if credential.status == CredentialStatus.BROKEN:
        return _("Provider key broken")
    return ""


def _model_hints(credentials: list[ProviderCredential]) -> list[dict[str, Any]]:
    """Per credential, the models its provider offers (for the target rows' suggestions)."""
    return [
        {
            "id": str(c.pk),
            "models": [
                *[str(m) for m in c.provider.known_models or []],
                *[str(m) for m in c.provider.embedding_models or []],
            ],
        }
        for c in credentials
    ]


def _base_context(membership: Membership) -> dict[str, Any]:
    return {
        "team": membership.team,
        "membership": membership,
        "can_manage": routes.can_manage_routes(membership),
        "credentials_url": optional_url("credential_list", membership.team_id),
        "credential_create_url": optional_url("credential_create", membership.team_id),
    }


def target_dialects(target: RouteTarget, shown: list[str]) -> list[dict[str, str]]:
    """For each dialect shown, whether a request in it reaches this target natively."""
    return [
        {
            "dialect": dialect,
            "label": dialects.label(dialect),
            "path": path,
            "path_label": _("native") if path == dialects.NATIVE else _("translated"),
        }
        for dialect, path in dialects.target_paths(
            target.credential, target.upstream_model, shown
        ).items()
    ]


@team_view()
def route_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    credentials = _credentials(team)
    shown = dialects.shown_dialects(credentials)
    route_rows = []
    for route in _routes(team):
        targets = list(route.targets.all())
        route_rows.append(
            {
                "route": route,
                "targets": [
                    {
                        "target": t,
                        "skipped": target_skipped(t),
                        "role": "primary" if t.priority == targets[0].priority else "fallback",
                        "dialects": target_dialects(t, shown),
                    }
                    for t in targets
                ],
            }
        )
    offered = [
        {
            "credential": c,
            "chat": list(c.provider.known_models or []),
            "embeddings": list(c.provider.embedding_models or []),
        }
        for c in credentials
    ]
    return render(
        request,
        "relay/routes.html",
        {
            **_base_context(membership),
            "route_rows": route_rows,
            "offered": offered,
            "has_credentials": bool(credentials),
            "shown_dialects": [dialects.label(d) for d in shown],
        },
    )


def _form_page(
    request: HttpRequest,
    membership: Membership,
    *,
    form: RouteForm,
    formset: Any,
    route: ModelRoute | None,
) -> HttpResponse:
    """The alias form again: 400 after a POST that was not saved."""
    credentials = _credentials(membership.team)
    return render(
        request,
        "relay/routes_form.html",
        {
            **_base_context(membership),
            "form": form,
            "formset": formset,
            "route": route,
            "has_credentials": bool(credentials),
            "model_hints": _model_hints(credentials),
            "all_models": sorted({m for h in _model_hints(credentials) for m in h["models"]}),
        },
        status=400 if request.method == "POST" else 200,
    )


def _values(form: RouteForm, formset: Any) -> dict[str, Any]:
    """What create_route and update_route take from the alias form and its target rows."""
    return {
        "alias": form.cleaned_data["alias"],
        "description": form.cleaned_data["description"],
        "targets": formset.specs(),
    }


@team_view(min_role=Role.ADMIN)
def route_create(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    data = request.POST if request.method == "POST" else None
    form = RouteForm(data, team=team, initial={"alias": request.GET.get("alias", "")[:128]})
    formset = target_formset(team, data, extra=3)
    if submitted(request, form, formset):
        with refusals_on(form, "alias"):
            route = routes.create_route(membership, **_values(form, formset), request=request)
            messages.success(
                request,
                _("Model alias “%(alias)s” saved. Requests for it now go to its targets.")
                % {"alias": route.alias},
            )
            return redirect("route_list", team_id=team.pk)
    return _form_page(request, membership, form=form, formset=formset, route=None)


@team_view(min_role=Role.ADMIN)
def route_edit(request: HttpRequest, membership: Membership, route_id: int) -> HttpResponse:
    team = membership.team
    route = _route(membership, route_id)
    data = request.POST if request.method == "POST" else None
    form = RouteForm(data, team=team, route=route)
    formset = target_formset(team, data, route=route)
    if submitted(request, form, formset):
        with refusals_on(form, "alias"):
            routes.update_route(membership, route, **_values(form, formset), request=request)
            messages.success(
                request, _("Model alias “%(alias)s” updated.") % {"alias": route.alias}
            )
            return redirect("route_list", team_id=team.pk)
    return _form_page(request, membership, form=form, formset=formset, route=route)


@team_view(min_role=Role.ADMIN)
def route_delete(request: HttpRequest, membership: Membership, route_id: int) -> HttpResponse:
    route = _route(membership, route_id)
    if request.method == "POST":
        alias = route.alias
        routes.delete_route(membership, route, request=request)
        messages.success(
            request,
            _("Model alias “%(alias)s” deleted. Requests for it are no longer routed.")
            % {"alias": alias},
        )
        return redirect("route_list", team_id=membership.team_id)
    return render(
        request,
        "relay/routes_delete.html",
        {**_base_context(membership), "route": route, "targets": list(route.targets.all())},
    )


def _example(result: relocation.Result) -> tuple[str, str]:
    """(model, kind) for the OpenAI SDK snippet: an application's chat alias of the result if
    there is one (Claude Code's and Codex's names have their own lines)."""
    kinds = [
        (o.alias, relocation.kind_of(o.alias))
        for o in result.outcomes
        if relocation.client_of(o.alias).key == relocation.OPENAI
    ]
    chat = [k for k in kinds if k[1] == relocation.CHAT]
    return (chat or kinds or [("gpt-4o", relocation.CHAT)])[0]


def _moved(result: relocation.Result) -> dict[str, bool]:
    """Which clients' lines the result page shows: an application's (the OpenAI SDK), Claude
    Code's, Codex's."""
    clients = relocation.clients_moved(result)
    return {
        "openai": relocation.OPENAI in clients,
        "claude_code": relocation.CLAUDE_CODE in clients,
        "codex": relocation.CODEX in clients,
    }


@sensitive_variables("result", "response")
@team_view(write_role=Role.ADMIN)
def route_relocate(request: HttpRequest, membership: Membership) -> HttpResponse:
    """One screen: the model names an application or a coding agent sends -> the team's
    providers; then the lines that point it at Baton."""
    team = membership.team
    credentials = relocation.usable_credentials(team)
    context = {
        **_base_context(membership),
        "has_credentials": bool(credentials),
        "base_url": relay_base_url(request),
        "api_keys_url": optional_url("api_key_list", team.pk),
        "has_api_keys": ApiKey.objects.active().filter(team=team).exists(),
    }
    if not credentials:
        return render(request, "relay/relocate.html", {**context, "form": None})
    data = request.POST if request.method == "POST" else None
    form = relocation.RelocationForm(
        data,
        team=team,
        credentials=credentials,
        initial={"issue_key": not context["has_api_keys"]},
    )
    if submitted(request, form):
        with refusals_on(form):
            result = relocation.apply(
                membership,
                form.plan,
                issue_key_name=form.cleaned_data["key_name"]
                if form.cleaned_data.get("issue_key")
                else "",
                request=request,
            )
            aliases = [o.alias for o in result.outcomes]
            response = render(
                request,
                "relay/relocate_done.html",
                {
                    **context,
                    "result": result,
                    "issued": result.issued_key,
                    "example": _example(result),
                    "moved": _moved(result),
                    # Claude Code appends /v1/messages itself.
                    "baton_root": context["base_url"].removesuffix("/v1"),
                    "claude_code_models": relocation.claude_code_models(aliases),
                    "codex_model": relocation.codex_model(aliases),
                    # A plain str, so the placeholder's angle brackets are escaped.
                    "api_key_value": result.issued_key.key
                    if result.issued_key
                    else str(_("<your Baton API key>")),
                },
            )
            # The page may hold the only copy of a new API key.
            response["Cache-Control"] = "no-store"
            return response
    return render(
        request,
        "relay/relocate.html",
        {**context, "form": form},
        status=400 if data is not None else 200,
    )
