from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from relay.models import ProviderCredential
from relay.secrets import MAX_SECRET_LENGTH, reveal_secret
from tests.conftest import Cast, client_for
from tests.keys.conftest import SECRET, counts, json_post, make_credential


def list_url(cast: Cast) -> str:
    return reverse("credential-list", args=[cast.acme.pk])


def body(**overrides: Any) -> dict[str, Any]:
    return {"name": "OpenAI prod", "provider": "openai", "secret": SECRET, **overrides}


def test_create_returns_the_last_four_and_never_the_secret(cast: Cast) -> None:
    response = json_post(client_for(cast.alice), list_url(cast), body())
    assert response.status_code == 201, response.json()
    data = response.json()
    assert "secret" not in data
    assert data["secret_last4"] == "0001"
    assert data["provider"] == "openai"
    assert data["effective_base_url"] == "https://api.openai.com/v1"
    assert SECRET not in response.content.decode()
    credential = ProviderCredential.objects.get(pk=data["id"])
    assert reveal_secret(credential) == SECRET

    listed = client_for(cast.vera).get(list_url(cast))
    assert listed.status_code == 200
    assert listed.json()["results"][0]["secret_last4"] == "0001"
    assert SECRET not in listed.content.decode()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"provider": "custom", "base_url": "javascript:alert(1)"}, "base_url"),
        ({"provider": "custom", "base_url": "http://"}, "base_url"),
        ({"provider": "custom"}, "base_url"),
        ({"provider": "no-such-provider"}, "provider"),
        ({"secret": ""}, "secret"),
        ({"secret": "s" * (MAX_SECRET_LENGTH + 1)}, "secret"),
        ({"region": "nowhere"}, "region"),
        ({"name": ""}, "name"),
        ({"extras": {"deployments": {"gpt-4o": "x"}}}, "extras"),
        ({"extras": "nope"}, "extras"),
    ],
)
def test_bad_input_is_a_json_field_error(cast: Cast, overrides: dict[str, Any], field: str) -> None:
    before = counts()
    response = json_post(client_for(cast.alice), list_url(cast), body(**overrides))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request"
    assert field in error["fields"], error
    assert counts() == before
    assert SECRET not in response.content.decode()


def test_a_duplicate_name_is_a_field_error(cast: Cast) -> None:
    make_credential(cast, name="OpenAI prod", provider="openai", region="default")
    response = json_post(client_for(cast.alice), list_url(cast), body())
    assert response.status_code == 400
    assert "name" in response.json()["error"]["fields"]


def test_patch_edits_but_cannot_carry_a_secret(cast: Cast) -> None:
    credential = make_credential(cast, name="Qwen", provider="qwen", region="cn")
    url = reverse("credential-detail", args=[cast.acme.pk, credential.pk])
    client = client_for(cast.adam)
    refused = client.patch(url, {"secret": "sk-new-secret-xxxx"}, content_type="application/json")
    assert refused.status_code == 400
    assert "secret" in refused.json()["error"]["fields"]

    response = client.patch(
        url, {"region": "us", "enabled": False}, content_type="application/json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["region"] == "us"
    assert response.json()["enabled"] is False
    credential.refresh_from_db()
    assert reveal_secret(credential) == SECRET


def test_the_secret_action_replaces_the_secret(cast: Cast) -> None:
    credential = make_credential(cast)
    url = reverse("credential-secret", args=[cast.acme.pk, credential.pk])
    response = json_post(client_for(cast.alice), url, {"secret": "sk-rotated-at-provider-7777"})
    assert response.status_code == 200
    assert response.json()["secret_last4"] == "7777"
    credential.refresh_from_db()
    assert reveal_secret(credential) == "sk-rotated-at-provider-7777"
    assert cast.acme.audit_events.filter(action="credential.secret_replaced").exists()


def test_the_test_action_reports_and_records(cast: Cast, fake_url: str) -> None:
    credential = make_credential(cast, base_url=fake_url)
    response = json_post(
        client_for(cast.alice), reverse("credential-test", args=[cast.acme.pk, credential.pk]), {}
    )
    assert response.status_code == 200
    data = response.json()
    assert data["ok"] is True
    assert data["latency_ms"] >= 0
    assert data["tested_at"]


def test_delete_removes_the_credential(cast: Cast) -> None:
    credential = make_credential(cast)
    response = client_for(cast.alice).delete(
        reverse("credential-detail", args=[cast.acme.pk, credential.pk])
    )
    assert response.status_code == 204
    assert not ProviderCredential.objects.exists()
    assert cast.acme.audit_events.filter(action="credential.deleted").exists()


def test_the_catalog_lists_enabled_providers_to_logged_in_users(cast: Cast, client: Any) -> None:
    assert client.get(reverse("provider-list")).status_code in (401, 403)
    response = client_for(cast.charlie).get(reverse("provider-list"))
    assert response.status_code == 200
    slugs = [p["slug"] for p in response.json()]
    assert "qwen" in slugs and "azure" in slugs
    detail = client_for(cast.charlie).get(reverse("provider-detail", args=["qwen"])).json()
    assert set(detail["regions"]) == {"cn", "intl", "us"}
