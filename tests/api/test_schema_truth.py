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


@pytest.mark.parametrize(
    ("name", "field", "key", "value"),
    [
        ("CredentialRequest", "name", "maxLength", 80),
        ("ApiKeyRequest", "name", "maxLength", 80),
        ("CredentialRequest", "base_url", "maxLength", 2048),
        ("RouteRequest", "targets", "minItems", 1),
        ("RouteRequest", "targets", "maxItems", 20),
        ("ApiKeyRequest", "allowed_models", "maxItems", 200),
    ],
)
def test_documented_sizes_are_the_enforced_ones(
    name: str, field: str, key: str, value: int
) -> None:
    """Found by fuzzing: the schema promised 200-character names and 4096-character
    URLs the rules refuse, and route targets with no bounds."""
    assert component(name)["properties"][field][key] == value


def test_names_of_the_documented_length_are_kept_and_longer_refused(cast: Cast) -> None:
    client = api(cast.alice)
    base = f"/api/teams/{cast.acme.pk}"
    for url, extra in (
        (f"{base}/api-keys/", {}),
        (f"{base}/credentials/", {"provider": "openai", "secret": "sk-test-0001"}),
    ):
        too_long = client.post(url, {"name": "n" * 81, **extra}, content_type="application/json")
        assert too_long.status_code == 400 and "name" in too_long.json()["error"]["fields"]
        kept = client.post(url, {"name": "n" * 80, **extra}, content_type="application/json")
        assert kept.status_code == 201, kept.json()


def test_the_api_takes_json_only_as_the_schema_says(cast: Cast) -> None:
    schema = generated_schema()
    bodies = [
        set(op["requestBody"]["content"])
        for item in schema["paths"].values()
        for op in item.values()
        if "requestBody" in op
    ]
    assert bodies and all(types == {"application/json"} for types in bodies)
    response = api(cast.alice).post("/api/teams/", {"name": "Form"})  # multipart
    assert response.status_code == 415
    assert response.json()["error"]["type"] == "unsupported_media_type"


def test_every_operation_documents_its_errors(cast: Cast) -> None:
    from jsonschema import validate

    schema = generated_schema()
    error = schema["components"]["schemas"]["Error"]
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            documented = operation["responses"]["4XX"]["content"]["application/json"]["schema"]
            assert documented == {"$ref": "#/components/schemas/Error"}, (method, path)
    client = api(cast.alice)
    for response in (
        client.get("/api/teams/00000000-0000-0000-0000-000000000000/"),
        client.post("/api/teams/", {"name": ""}, content_type="application/json"),
        client.delete("/api/teams/"),
        api(cast.vera).patch(f"/api/teams/{cast.acme.pk}/", {}, content_type="application/json"),
    ):
        assert 400 <= response.status_code < 500
        validate(response.json(), error)
