"""A custom base URL declares the native dialects its server also speaks (Anthropic Messages,
OpenAI Responses): on the credential pages and in the API, stored as ``extras["dialects"]``,
checked by the same SSRF guard as a base URL, and shown on the credential's page."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from relay import dialects
from relay.models import ProviderCredential
from tests.conftest import Cast, client_for
from tests.keys.conftest import SECRET, counts, form_errors, json_post, make_credential


def create_url(cast: Cast) -> str:
    return reverse("credential_create", args=[cast.acme.pk])


def detail_url(cast: Cast, credential: ProviderCredential) -> str:
    return reverse("credential_detail", args=[cast.acme.pk, credential.pk])


def api_url(cast: Cast, credential: ProviderCredential | None = None) -> str:
    if credential is None:
        return reverse("credential-list", args=[cast.acme.pk])
    return reverse("credential-detail", args=[cast.acme.pk, credential.pk])


def form(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Own gateway",
        "provider": "custom",
        "region": "",
        "base_url": "",
        "secret": SECRET,
        "enabled": "on",
        **overrides,
    }


def edit(credential: ProviderCredential, **overrides: Any) -> dict[str, Any]:
    data = {
        "name": credential.name,
        "region": credential.region,
        "base_url": credential.base_url,
        "messages_base_url": credential.declared_dialects.get("messages", ""),
        "responses_base_url": credential.declared_dialects.get("responses", ""),
        "enabled": "on",
    }
    data.update(overrides)
    return data


def test_the_form_declares_a_custom_servers_dialects(cast: Cast, fake_url: str) -> None:
    root = fake_url.removesuffix("/v1")
    client = client_for(cast.alice)
    response = client.post(
        create_url(cast),
        form(
            base_url=fake_url,
            messages_base_url=f"{root}/anthropic/v1/",
            responses_base_url=f"{root}/v1",
        ),
    )
    assert response.status_code == 302, form_errors(response)
    credential = ProviderCredential.objects.get(team=cast.acme)
    assert credential.extras == {
        "dialects": {"messages": f"{root}/anthropic/v1", "responses": f"{root}/v1"}
    }
    assert credential.native_dialects() == credential.extras["dialects"]
    assert dialects.dialect_path(credential, "messages") == dialects.NATIVE

    page = client.get(detail_url(cast, credential)).content.decode()
    assert 'data-test="credential-dialects"' in page
    assert (
        f'data-dialect="messages"><span class="small">Messages</span> <code class="mono small">{root}/anthropic/v1</code>'
        in page
    )
    assert f'value="{root}/anthropic/v1"' in page  # the edit form shows what was declared


def test_a_key_without_dialects_says_messages_are_translated(cast: Cast, fake_url: str) -> None:
    credential = make_credential(cast, base_url=fake_url)
    page = client_for(cast.alice).get(detail_url(cast, credential)).content.decode()
    assert 'data-test="credential-dialect"' not in page
    assert "Messages requests (Claude Code) are translated" in page

    deepseek = make_credential(cast, name="DeepSeek", provider="deepseek", region="default")
    page = client_for(cast.alice).get(detail_url(cast, deepseek)).content.decode()
    assert "https://api.deepseek.com/anthropic/v1</code>" in page  # the catalog's


def test_editing_keeps_changes_and_removes_declared_dialects(cast: Cast, fake_url: str) -> None:
    root = fake_url.removesuffix("/v1")
    credential = make_credential(
        cast, base_url=fake_url, extras={"dialects": {"messages": f"{root}/anthropic/v1"}}
    )
    client = client_for(cast.adam)
    # Saving another change keeps the declared dialects (the admin's edit used to vanish).
    response = client.post(detail_url(cast, credential), edit(credential, name="Renamed"))
    assert response.status_code == 302, form_errors(response)
    credential.refresh_from_db()
    assert credential.name == "Renamed"
    assert credential.declared_dialects == {"messages": f"{root}/anthropic/v1"}

    response = client.post(
        detail_url(cast, credential),
        edit(credential, messages_base_url="", responses_base_url=fake_url),
    )
    assert response.status_code == 302, form_errors(response)
    credential.refresh_from_db()
    assert credential.extras == {"dialects": {"responses": fake_url}}
    event = cast.acme.audit_events.filter(action="credential.updated").latest("created_at")
    assert event.actor == cast.adam
    assert event.details["changes"]["extras"] == {
        "old": {"dialects": {"messages": f"{root}/anthropic/v1"}},
        "new": {"dialects": {"responses": fake_url}},
    }


def test_dialects_need_a_custom_base_url(cast: Cast, fake_url: str) -> None:
    before = counts()
    response = client_for(cast.alice).post(
        create_url(cast), form(provider="qwen", region="intl", messages_base_url=fake_url)
    )
    assert "messages_base_url" in form_errors(response)
    assert "custom base URL" in form_errors(response)["messages_base_url"][0]
    assert counts() == before

    qwen = make_credential(cast, name="Qwen", provider="qwen", region="cn")
    response = client_for(cast.alice).post(
        detail_url(cast, qwen), edit(qwen, responses_base_url=fake_url)
    )
    assert response.status_code == 200
    assert "responses_base_url" in form_errors(response)
    qwen.refresh_from_db()
    assert qwen.extras == {}


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/anthropic",
        "http://10.0.0.7/anthropic/v1",
        "http://[::ffff:127.0.0.1]:8001/v1",
        "http://0x7f000001/anthropic",
        "ftp://example.com/anthropic",
        "https://user:pw@example.com/anthropic",
    ],
)
def test_a_dialect_url_passes_the_same_ssrf_guard_as_a_base_url(
    cast: Cast, settings: Any, url: str
) -> None:
    settings.BATON_ALLOW_LOOPBACK_UPSTREAMS = False
    settings.BATON_ALLOW_PRIVATE_UPSTREAMS = False
    public = "https://8.8.8.8/v1"  # a literal public address: no DNS needed
    client = client_for(cast.alice)
    response = client.post(create_url(cast), form(base_url=public, messages_base_url=url))
    assert response.status_code == 200
    errors = form_errors(response)
    assert list(errors) == ["messages_base_url"], errors
    assert "cannot be used" in errors["messages_base_url"][0]
    assert not ProviderCredential.objects.exists()

    refused = json_post(
        client,
        api_url(cast),
        {
            "name": "Own gateway",
            "provider": "custom",
            "base_url": public,
            "secret": SECRET,
            "dialect_urls": {"responses": url},
        },
    )
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert list(error["fields"]) == ["dialect_urls"], error
    assert "responses" in error["fields"]["dialect_urls"]
    assert not ProviderCredential.objects.exists()


def test_the_api_declares_changes_and_removes_dialects(cast: Cast, fake_url: str) -> None:
    root = fake_url.removesuffix("/v1")
    client = client_for(cast.alice)
    created = json_post(
        client,
        api_url(cast),
        {
            "name": "Own gateway",
            "provider": "custom",
            "base_url": fake_url,
            "secret": SECRET,
            "dialect_urls": {"messages": f"{root}/anthropic/v1", "responses": ""},
        },
    )
    assert created.status_code == 201, created.json()
    data = created.json()
    assert data["dialect_urls"] == {"messages": f"{root}/anthropic/v1"}
    assert data["native_dialects"] == {"messages": f"{root}/anthropic/v1"}
    assert data["extras"] == {}  # the dialects are not a provider setting
    credential = ProviderCredential.objects.get(pk=data["id"])
    assert credential.extras == {"dialects": {"messages": f"{root}/anthropic/v1"}}
    url = api_url(cast, credential)

    # A change that does not mention dialect_urls keeps them.
    renamed = client.patch(url, {"name": "Gateway"}, content_type="application/json")
    assert renamed.status_code == 200, renamed.json()
    assert renamed.json()["dialect_urls"] == {"messages": f"{root}/anthropic/v1"}

    changed = client.patch(
        url,
        {"dialect_urls": {"messages": "", "responses": fake_url}},
        content_type="application/json",
    )
    assert changed.status_code == 200, changed.json()
    assert changed.json()["dialect_urls"] == {"responses": fake_url}
    assert changed.json()["native_dialects"] == {"responses": fake_url}
    assert client.get(url).json()["dialect_urls"] == {"responses": fake_url}

    unknown = client.patch(
        url, {"dialect_urls": {"grpc": fake_url}}, content_type="application/json"
    )
    assert unknown.status_code == 400
    assert "grpc" in unknown.json()["error"]["fields"]["dialect_urls"]


def test_the_api_drops_declared_dialects_with_the_custom_base_url(
    cast: Cast, fake_url: str
) -> None:
    client = client_for(cast.alice)
    deepseek = make_credential(
        cast,
        name="DeepSeek via proxy",
        provider="deepseek",
        base_url=fake_url,
        extras={"dialects": {"messages": fake_url}},
    )
    url = api_url(cast, deepseek)
    # Back to the catalog's address: the proxy's dialects go, the catalog's apply.
    response = client.patch(
        url, {"base_url": "", "region": "default"}, content_type="application/json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["dialect_urls"] == {}
    assert response.json()["native_dialects"] == {
        "messages": "https://api.deepseek.com/anthropic/v1",
        "responses": "https://api.deepseek.com",
    }

    refused = client.patch(
        url, {"dialect_urls": {"messages": fake_url}}, content_type="application/json"
    )
    assert refused.status_code == 400
    assert "messages" in refused.json()["error"]["fields"]["dialect_urls"]
