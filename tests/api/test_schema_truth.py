"""The schema says what the API does: the values it returns fit the formats it
names, the bounds it documents are the ones it enforces (pages included), and
the authentication it lists is the one scripts use."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from accounts.models import ApiKey
from billing.models import MAX_BUDGET, MAX_RPM, MAX_TPM
from relay.models import Provider
from tests.api.conftest import api, generated_schema, token_for
from tests.conftest import Cast, client_for


def component(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = generated_schema()["components"]["schemas"][name]
    return schema


def test_a_provider_without_docs_has_a_null_docs_url(cast: Cast) -> None:
    Provider.objects.filter(slug="openai").update(docs_url="")
    Provider.objects.filter(slug="qwen").update(docs_url="https://help.aliyun.com/model-studio")
    providers = {p["slug"]: p for p in api(cast.alice).get("/api/providers/").json()}
    assert providers["openai"]["docs_url"] is None
    assert providers["qwen"]["docs_url"] == "https://help.aliyun.com/model-studio"
    field = component("Provider")["properties"]["docs_url"]
    assert field["format"] == "uri" and field["nullable"] is True


# The documented bounds of the key-limits endpoint, which api-keys must share.
KEY_BOUNDS = {
    "rpm_limit": (1, MAX_RPM),
    "tpm_limit": (1, MAX_TPM),
}


def test_api_keys_document_the_bounds_of_key_limits() -> None:
    keys = component("ApiKeyRequest")["properties"]
    limits = component("PatchedKeyLimitsRequest")["properties"]
    for field, (low, high) in KEY_BOUNDS.items():
        assert (keys[field]["minimum"], keys[field]["maximum"]) == (low, high), field
        assert (limits[field]["minimum"], limits[field]["maximum"]) == (low, high), field
    # Decimals travel as strings, so their range is in the description.
    assert f"{MAX_BUDGET:,}" in keys["budget_limit"]["description"]
    assert f"{MAX_BUDGET:,}" in limits["daily_budget"]["description"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rpm_limit", 0),
        ("rpm_limit", MAX_RPM + 1),
        ("tpm_limit", 0),
        ("tpm_limit", MAX_TPM + 1),
        ("budget_limit", "-0.0001"),
        ("budget_limit", str(MAX_BUDGET + 1)),
    ],
)
def test_api_key_limits_outside_the_documented_bounds_are_refused(
    cast: Cast, field: str, value: Any
) -> None:
    client = api(cast.alice)
    url = f"/api/teams/{cast.acme.pk}/api-keys/"
    created = client.post(url, {"name": "k", field: value}, content_type="application/json")
    assert created.status_code == 400 and field in created.json()["error"]["fields"]
    key = client.post(url, {"name": "k"}, content_type="application/json").json()["id"]
    patched = client.patch(f"{url}{key}/", {field: value}, content_type="application/json")
    assert patched.status_code == 400 and field in patched.json()["error"]["fields"]
    page = client_for(cast.alice).post(
        reverse("api_key_create", args=[cast.acme.pk]),
        {"name": "page", "budget_period": "month", field: value},
    )
    assert page.status_code == 200 and field in page.context["form"].errors
    assert ApiKey.objects.filter(team=cast.acme).count() == 1


def test_api_key_limits_at_the_documented_bounds_are_kept(cast: Cast) -> None:
    response = api(cast.alice).post(
        f"/api/teams/{cast.acme.pk}/api-keys/",
        {"name": "k", "rpm_limit": MAX_RPM, "tpm_limit": 1, "budget_limit": str(MAX_BUDGET)},
        content_type="application/json",
    )
    assert response.status_code == 201, response.json()
    key = ApiKey.objects.get(pk=response.json()["id"])
    assert (key.rpm_limit, key.tpm_limit, key.budget_limit) == (MAX_RPM, 1, MAX_BUDGET)


def test_the_schema_offers_the_access_token_as_bearer_auth(cast: Cast) -> None:
    schema = generated_schema()
    schemes = schema["components"]["securitySchemes"]
    bearer = [name for name, s in schemes.items() if s == {**s, "type": "http", "scheme": "bearer"}]
    assert len(bearer) == 1, schemes
    operations = [op for item in schema["paths"].values() for op in item.values()]
    assert operations and all({bearer[0]: []} in op["security"] for op in operations)
    # And it is what works: the token, sent as the scheme says.
    response = api(cast.alice).get("/api/teams/")
    assert response.status_code == 200
    assert token_for(cast.alice).startswith("baton_pat_")


def test_statuses_are_documented_as_their_values() -> None:
    properties = {
        name: component(name)["properties"]["status"] for name in ("ApiKey", "Invitation")
    }
    enums = {
        name: component(prop["allOf"][0]["$ref"].rsplit("/", 1)[1])["enum"]
        if "allOf" in prop
        else prop.get("enum")
        for name, prop in properties.items()
    }
    assert set(enums["ApiKey"] or ()) == {"active", "revoked", "expired"}
    assert set(enums["Invitation"] or ()) == {"pending", "accepted", "revoked", "expired"}
