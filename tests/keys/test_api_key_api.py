from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts import tokens
from accounts.models import ApiKey
from tests.conftest import Cast, client_for
from tests.keys.conftest import counts, json_post


def list_url(cast: Cast) -> str:
    return reverse("api-key-list", args=[cast.acme.pk])


def test_the_key_is_in_the_create_response_only(cast: Cast) -> None:
    client = client_for(cast.bob)
    response = json_post(
        client,
        list_url(cast),
        {
            "name": "ci",
            "allowed_models": ["gpt-4o"],
            "ip_allowlist": ["192.0.2.0/24"],
            "rpm_limit": 10,
        },
    )
    assert response.status_code == 201, response.json()
    assert response["Cache-Control"] == "no-store"
    data = response.json()
    key = data["key"]
    assert key.startswith(ApiKey.PREFIX)
    assert data["masked_key"] == ApiKey.PREFIX + "…" + key[-4:]
    assert data["status"] == "active"
    assert data["created_by"] == "bob@example.com"
    api_key = ApiKey.objects.get(pk=data["id"])
    assert tokens.matches(key, api_key.digest)

    for url in (list_url(cast), reverse("api-key-detail", args=[cast.acme.pk, api_key.pk])):
        shown = client.get(url)
        assert shown.status_code == 200
        assert key not in shown.content.decode()
        assert '"key"' not in shown.content.decode()


@pytest.mark.parametrize(
    "bad",
    [
        {"name": ""},
        {"expires_at": (timezone.now() - timedelta(minutes=1)).isoformat()},
        {"ip_allowlist": ["300.1.1.1"]},
        {"ip_allowlist": "10.0.0.0/8"},
        {"rpm_limit": -5},
        {"tpm_limit": 10**10},
        {"budget_limit": "-1"},
        {"budget_limit": "99999999999"},
        {"allowed_models": ["has space"]},
        {"budget_period": "fortnight"},
    ],
)
def test_bad_input_is_a_json_field_error(cast: Cast, bad: dict[str, Any]) -> None:
    before = counts()
    response = json_post(client_for(cast.alice), list_url(cast), {"name": "ci", **bad})
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(bad) <= set(fields), fields
    assert counts() == before


def test_duplicate_active_names_are_refused(cast: Cast) -> None:
    client = client_for(cast.alice)
    assert json_post(client, list_url(cast), {"name": "ci"}).status_code == 201
    response = json_post(client, list_url(cast), {"name": "CI"})
    assert response.status_code == 400
    assert "name" in response.json()["error"]["fields"]


def test_patch_and_revoke(cast: Cast) -> None:
    client = client_for(cast.alice)
    created = json_post(client, list_url(cast), {"name": "ci"}).json()
    detail = reverse("api-key-detail", args=[cast.acme.pk, created["id"]])
    response = client.patch(
        detail,
        {"tpm_limit": 5000, "allowed_models": ["qwen-plus"]},
        content_type="application/json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["tpm_limit"] == 5000

    revoked = json_post(client, reverse("api-key-revoke", args=[cast.acme.pk, created["id"]]), {})
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    assert revoked.json()["revoked_by"] == "alice@example.com"
    again = json_post(client, reverse("api-key-revoke", args=[cast.acme.pk, created["id"]]), {})
    assert again.status_code == 400
    assert client.patch(detail, {"name": "x"}, content_type="application/json").status_code == 400


def test_the_schema_documents_the_key_in_the_create_response(cast: Cast) -> None:
    schema = client_for(cast.alice).get(reverse("api-schema"), {"format": "json"}).json()
    created = schema["components"]["schemas"]["CreatedApiKey"]
    assert "key" in created["properties"]
    assert "key" not in schema["components"]["schemas"]["ApiKey"]["properties"]
    credential = schema["components"]["schemas"]["CredentialRequest"]
    assert "secret" in credential["properties"]
    assert "secret" not in schema["components"]["schemas"]["Credential"]["properties"]
    assert "/api/teams/{team_id}/credentials/{id}/test/" in schema["paths"]
    assert "/api/teams/{team_id}/api-keys/{id}/revoke/" in schema["paths"]
    assert "/api/providers/" in schema["paths"]
