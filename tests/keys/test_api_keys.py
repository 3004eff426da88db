from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts import tokens
from accounts.models import ApiKey
from tests.conftest import Cast, client_for
from tests.keys.conftest import counts, form_errors


def create_url(cast: Cast) -> str:
    return reverse("api_key_create", args=[cast.acme.pk])


def form(**overrides: Any) -> dict[str, Any]:
    data = {
        "name": "checkout",
        "allowed_models": "",
        "expires_at": "",
        "ip_allowlist": "",
        "rpm_limit": "",
        "tpm_limit": "",
        "budget_limit": "",
        "budget_period": "month",
    }
    data.update(overrides)
    return data


def test_a_new_key_is_shown_once_with_snippets(cast: Cast) -> None:
    client = client_for(cast.bob)
    response = client.post(create_url(cast), form(allowed_models="qwen-plus, gpt-4o\ngpt-4o"))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    issued = response.context["issued"]
    key = issued.key
    assert key.startswith(ApiKey.PREFIX) and len(key) == len(ApiKey.PREFIX) + 32
    html = response.content.decode()
    assert html.count(key) >= 3  # the copy box, the Python and the curl snippets
    assert 'base_url=<span class="tk-s">"http://testserver/v1"</span>' in html
    assert "curl http://testserver/v1/chat/completions" in html
    assert 'data-copy="#api-key-value"' in html
    for snippet in ("snippet-python", "snippet-curl"):  # each snippet has its copy button
        assert f'data-copy="#{snippet}"' in html and f'data-test="{snippet}-copy"' in html
        assert f'id="{snippet}"' in html
    assert '<h3 class="small strong">Python (openai SDK)</h3>' in html

    api_key = ApiKey.objects.get(team=cast.acme)
    assert api_key.allowed_models == ["qwen-plus", "gpt-4o"]
    assert api_key.created_by == cast.bob
    assert api_key.lookup == tokens.split(key, ApiKey.PREFIX)
    assert tokens.matches(key, api_key.digest)
    assert key not in str(ApiKey.objects.filter(pk=api_key.pk).values().get())

    listing = client.get(reverse("api_key_list", args=[cast.acme.pk])).content.decode()
    assert key not in listing
    assert api_key.masked in listing
    event = cast.acme.audit_events.get(action="api_key.created")
    assert key not in str(event.details) and event.actor == cast.bob


def test_limits_expiry_and_networks_are_stored(cast: Cast) -> None:
    expires = (timezone.now() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    client_for(cast.alice).post(
        create_url(cast),
        form(
            expires_at=expires,
            ip_allowlist="203.0.113.7\n2001:db8::1/32, 10.1.2.3/8",
            rpm_limit="60",
            tpm_limit="100000",
            budget_limit="25.50",
            budget_period="day",
        ),
    )
    api_key = ApiKey.objects.get(team=cast.acme)
    assert api_key.ip_allowlist == ["203.0.113.7/32", "2001:db8::/32", "10.0.0.0/8"]
    assert (api_key.rpm_limit, api_key.tpm_limit, str(api_key.budget_limit)) == (
        60,
        100000,
        "25.5000",
    )
    assert api_key.budget_period == "day"
    assert api_key.expires_at is not None and api_key.expires_at > timezone.now()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"expires_at": "2001-01-01T00:00"}, "expires_at"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"ip_allowlist": "10.0.0.0/33"}, "ip_allowlist"),
        ({"ip_allowlist": "example.com"}, "ip_allowlist"),
        ({"rpm_limit": "-1"}, "rpm_limit"),
        ({"tpm_limit": str(10**9 + 1)}, "tpm_limit"),
        ({"budget_limit": "-0.01"}, "budget_limit"),
        ({"budget_limit": "1000000001"}, "budget_limit"),
        ({"budget_period": "week"}, "budget_period"),
        ({"allowed_models": "gpt 4o"}, "allowed_models"),
    ],
)
def test_bad_input_is_a_form_error_and_saves_nothing(
    cast: Cast, overrides: dict[str, Any], field: str
) -> None:
    before = counts()
    response = client_for(cast.alice).post(create_url(cast), form(**overrides))
    assert response.status_code == 200
    assert field in form_errors(response)
    assert counts() == before


def test_active_names_are_unique_but_a_revoked_name_can_be_reused(cast: Cast) -> None:
    client = client_for(cast.alice)
    client.post(create_url(cast), form())
    assert "name" in form_errors(client.post(create_url(cast), form(name="CHECKOUT")))
    api_key = ApiKey.objects.get()
    client.post(reverse("api_key_revoke", args=[cast.acme.pk, api_key.pk]))
    assert client.post(create_url(cast), form()).status_code == 200
    assert ApiKey.objects.count() == 2


def test_editing_a_key_is_audited(cast: Cast) -> None:
    client = client_for(cast.bob)
    client.post(create_url(cast), form())
    api_key = ApiKey.objects.get()
    url = reverse("api_key_edit", args=[cast.acme.pk, api_key.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, form(name="checkout-v2", allowed_models="qwen-plus", rpm_limit="5"))
    assert response.status_code == 302
    api_key.refresh_from_db()
    assert (api_key.name, api_key.allowed_models, api_key.rpm_limit) == (
        "checkout-v2",
        ["qwen-plus"],
        5,
    )
    changes = cast.acme.audit_events.get(action="api_key.updated").details["changes"]
    assert set(changes) == {"name", "allowed_models", "rpm_limit"}


def test_an_existing_past_expiry_does_not_block_other_edits(cast: Cast) -> None:
    client = client_for(cast.alice)
    client.post(create_url(cast), form())
    api_key = ApiKey.objects.get()
    past = timezone.now() - timedelta(days=1)
    ApiKey.objects.filter(pk=api_key.pk).update(expires_at=past)
    url = reverse("api_key_edit", args=[cast.acme.pk, api_key.pk])
    response = client.post(url, form(name="renamed", expires_at=past.strftime("%Y-%m-%dT%H:%M")))
    assert response.status_code == 302, form_errors(response)
    api_key.refresh_from_db()
    assert api_key.name == "renamed"


def test_revoking_records_who_and_when(cast: Cast) -> None:
    client = client_for(cast.bob)
    client.post(create_url(cast), form())
    api_key = ApiKey.objects.get()
    response = client.post(reverse("api_key_revoke", args=[cast.acme.pk, api_key.pk]))
    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None and api_key.revoked_by == cast.bob
    assert not api_key.is_active
    assert cast.acme.audit_events.filter(action="api_key.revoked").exists()
    # Revoked keys cannot be edited.
    assert client.get(reverse("api_key_edit", args=[cast.acme.pk, api_key.pk])).status_code == 403
