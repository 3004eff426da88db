"""A team owner with something on every page, and the list of the site's pages.

``populate`` gives Acme (the cast's team under test) what a team that has been used for
a while has: provider keys for chat and embeddings, API keys with long names, aliases,
usage in the ledger and its rollups, billing records, limits, credits, a pending
invitation, an access token and audit events with long details. ``PAGES`` names every
page a signed-in owner can open with GET; ``NOT_PAGES`` says why each other URL of the
URL configuration is not one. ``tests/browser/test_csp.py`` checks that the two lists
cover the URL configuration exactly, so a new page cannot be left out of the walk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts import actions, apikeys, audit, tokens
from accounts.api.auth import PAT_PREFIX
from accounts.models import ApiKey, Invitation, PersonalAccessToken, Role
from billing.events import UsageEvent
from billing.ledger import ingest
from billing.models import BillingRecord, CredentialLimits, KeyLimits, TeamLimits
from billing.tasks import rollup_usage_task, update_billing_records_task
from relay import actions as relay_actions
from relay import routes as relay_routes
from relay.models import ModelRoute, Provider, ProviderCredential
from relay.route_forms import TargetSpec
from tests.conftest import Cast

LONG_KEY_NAME = "billing-export-service-production-eu-west-1"


@dataclass
class Site:
    cast: Cast
    invitation_token: str

    @property
    def team_id(self) -> str:
        return str(self.cast.acme.pk)


def _usage(team_id: str, key_id: str, minutes_ago: int, model: str, latency_ms: float) -> Any:
    at = timezone.now() - timedelta(minutes=minutes_ago)
    return UsageEvent(
        request_id=f"req_site_{minutes_ago}_{model}",
        team_id=team_id,
        api_key_id=key_id,
        endpoint="chat",
        alias=model,
        credential_id=None,
        provider="openai",
        upstream_model=model,
        prompt_tokens=1200,
        cached_tokens=0,
        cache_write_tokens=0,
        completion_tokens=300,
        reasoning_tokens=0,
        estimated=False,
        status=200 if minutes_ago % 7 else 502,
        error_class="" if minutes_ago % 7 else "upstream_error",
        streamed=False,
        attempts=1,
        latency_ms=latency_ms,
        ttfb_ms=None,
        overhead_ms=0.4,
        created_at=at.timestamp(),
    )


def populate(cast: Cast) -> Site:
    owner = cast.membership(cast.alice)
    team = cast.acme
    openai = relay_actions.create_credential(
        owner,
        name="Acme OpenAI",
        provider=Provider.objects.get(slug="openai"),
        secret="sk-acme-site-walk-secret-0001",
        region="default",
    )
    qwen = relay_actions.create_credential(
        owner,
        name="Acme Qwen international",
        provider=Provider.objects.get(slug="qwen"),
        secret="sk-acme-site-walk-secret-0002",
        region="intl",
    )
    service = apikeys.create_api_key(owner, name="Acme service").api_key
    long_named = apikeys.create_api_key(
        owner, name=LONG_KEY_NAME, allowed_models=["gpt-4o"], rpm_limit=600
    ).api_key
    relay_routes.create_route(
        owner,
        alias="gpt-4o",
        targets=[TargetSpec(openai, "gpt-4o-mini"), TargetSpec(qwen, "qwen-plus")],
    )
    relay_routes.create_route(
        owner, alias="text-embedding-3-small", targets=[TargetSpec(qwen, "text-embedding-v4")]
    )
    TeamLimits.objects.filter(team=team).update(
        rpm_limit=1200, tpm_limit=400_000, max_concurrent=40, monthly_budget=Decimal("250.00")
    )
    KeyLimits.objects.update_or_create(
        api_key=long_named, defaults={"team": team, "daily_budget": Decimal("10.00")}
    )
    CredentialLimits.objects.update_or_create(
        credential=openai, defaults={"team": team, "rpm_limit": 500, "tpm_limit": 200_000}
    )
    issued = actions.invite(owner, email="pending-reviewer@example.com", role=Role.MEMBER)
    token = tokens.issue(PAT_PREFIX)
    PersonalAccessToken.objects.create(
        user=cast.alice,
        name="CI deploys",
        lookup=token.lookup,
        digest=token.digest,
        last4=token.last4,
    )
    # An event whose details are long, unbroken values (ids, URLs, model lists).
    audit.record(
        team,
        cast.alice,
        "credential.updated",
        openai,
        base_url="https://very-long-subdomain-of-a-custom-gateway.internal.example.com/openai/v1/deployments",
        models="gpt-4o,gpt-4o-mini,gpt-4.1,o3,o4-mini,text-embedding-3-small,text-embedding-3-large",
        request_id="req_" + "9f" * 30,
    )
    events = [
        _usage(str(team.pk), str(key.pk), minutes, model, latency)
        for minutes, (key, model, latency) in enumerate(
            [(service, "gpt-4o-mini", 180.0), (long_named, "gpt-4o", 900.0)] * 12, start=5
        )
    ]
    ingest(events)
    rollup_usage_task()
    update_billing_records_task()
    assert BillingRecord.objects.filter(team=team).exists()
    return Site(cast=cast, invitation_token=issued.url.rstrip("/").rsplit("/", 1)[-1])


# --- The pages ---------------------------------------------------------------------------


def _first(model: Any, site: Site) -> Any:
    obj = model.objects.filter(team=site.cast.acme).order_by("pk").first()
    assert obj is not None, f"populate() made no {model.__name__}"
    return obj.pk


ARGUMENTS: dict[str, Callable[[Site], Any]] = {
    "team_id": lambda site: site.cast.acme.pk,
    "key_id": lambda site: ApiKey.objects.get(team=site.cast.acme, name=LONG_KEY_NAME).pk,
    "credential_id": lambda site: _first(ProviderCredential, site),
    "route_id": lambda site: _first(ModelRoute, site),
    "record_id": lambda site: _first(BillingRecord, site),
    "token": lambda site: site.invitation_token,
}

# Every page a signed-in owner opens with GET (signed_out: opened without a session).
PAGES: dict[str, dict[str, Any]] = {
    "landing": {"signed_out": True},
    "dashboard": {},
    "team_create": {},
    "invitation_accept": {},
    "access_tokens": {},
    "team_overview": {},
    "team_settings": {},
    "team_members": {},
    "team_audit": {},
    "api_key_list": {},
    "api_key_create": {},
    "api_key_edit": {},
    "credential_list": {},
    "credential_create": {},
    "credential_detail": {},
    "credential_delete": {},
    "route_list": {},
    "route_create": {},
    "route_relocate": {},
    "route_edit": {},
    "route_delete": {},
    "team_limits": {},
    "key_limits": {},
    "credential_limits": {},
    "team_credits": {},
    "team_usage": {},
    "team_requests": {},
    "team_billing": {},
    "billing_record": {},
    "api-docs": {},
    "admin:login": {"signed_out": True},
    "account_login": {"signed_out": True},
    "account_signup": {"signed_out": True},
    "account_reset_password": {"signed_out": True},
    "account_reset_password_done": {"signed_out": True},
    "account_reset_password_from_key": {
        "signed_out": True,
        "kwargs": {"uidb36": "0", "key": "not-a-key"},
    },
    "account_reset_password_from_key_done": {"signed_out": True},
    "account_confirm_email": {"signed_out": True, "kwargs": {"key": "not-a-key"}},
    "account_email_verification_sent": {"signed_out": True},
    "account_inactive": {"signed_out": True},
    "account_logout": {},
    "account_email": {},
    "account_change_password": {},
    "account_reauthenticate": {},
}

# Every other URL, and why a browser does not open it as a page.
NOT_PAGES: dict[str, str] = {
    "team_switch": "POST only (the team switcher's form)",
    "access_token_revoke": "POST only",
    "member_role": "POST only",
    "member_remove": "POST only",
    "invitation_revoke": "POST only",
    "api_key_revoke": "POST only",
    "credential_secret": "POST only (replacing a secret, from the detail page)",
    "credential_test": "POST only (the test button)",
    "team_usage_export": "a CSV download",
    "billing_record_export": "a CSV download",
    "set_language": "POST only (the language switcher)",
    "api-schema": "the OpenAPI document (YAML), loaded by the API docs page",
    "account_set_password": "redirects: every user here has a password",
    "account_confirm_login_code": "redirects: login by code is off",
    "account_request_reauthentication_code": "redirects: login by code is off",
    "account_confirm_reauthentication_code": "redirects: login by code is off",
}


def url_names() -> Iterator[tuple[str, Any]]:
    """Every named URL of the site: (namespaced name, callback)."""

    def walk(entries: list[Any], namespace: str) -> Iterator[tuple[str, Any]]:
        for entry in entries:
            if isinstance(entry, URLResolver):
                inner = namespace
                if entry.namespace:
                    inner = f"{namespace}{entry.namespace}:"
                yield from walk(entry.url_patterns, inner)
            elif isinstance(entry, URLPattern) and entry.name:
                yield f"{namespace}{entry.name}", entry.callback

    yield from walk(get_resolver().url_patterns, "")


def is_management_api(callback: Any) -> bool:
    """A DRF endpoint of /api/ (JSON, not a page), except the docs page."""
    from rest_framework.views import APIView

    view_class = getattr(callback, "cls", None)
    module = getattr(callback, "__module__", "")
    return (
        isinstance(view_class, type)
        and issubclass(view_class, APIView)
        and module.split(".")[0] in {"accounts", "relay", "billing", "console"}
    )


def page_url(name: str, site: Site) -> str:
    spec = PAGES[name]
    kwargs = dict(spec.get("kwargs", {}))
    pattern_params = _parameters(name)
    for param in pattern_params:
        if param not in kwargs:
            kwargs[param] = ARGUMENTS[param](site)
    return reverse(name, kwargs=kwargs or None)


def _parameters(name: str) -> list[str]:
    from django.urls import get_resolver as resolver

    possibilities = resolver().reverse_dict.getlist(name.split(":")[-1])
    if ":" in name:
        namespace = name.split(":")[0]
        possibilities = (
            resolver().namespace_dict[namespace][1].reverse_dict.getlist(name.split(":")[-1])
        )
    for possibility in possibilities:
        for _result, params in possibility[0]:
            return list(params)
    return []


def session_cookie(user: Any, base_url: str) -> dict[str, str]:
    client = Client()
    client.force_login(user)
    return {
        "name": settings.SESSION_COOKIE_NAME,
        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "url": base_url,
    }


def invitation_of(site: Site) -> Invitation:
    return Invitation.objects.get(team=site.cast.acme, email="pending-reviewer@example.com")
