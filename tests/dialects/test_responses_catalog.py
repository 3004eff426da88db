"""Who serves Responses natively, and where: the catalog, its data migration for installed
databases, Azure's per-resource URL, and a custom base URL that declares it."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.apps import apps

from relay.models import Provider, ProviderCredential
from tests.relay.conftest import Relay, make_credential, make_route


def credential(provider: str, region: str = "", base_url: str = "", **extra: Any) -> Any:
    return ProviderCredential(provider_id=provider, region=region, base_url=base_url, **extra)


@pytest.mark.django_db
def test_the_catalog_says_who_serves_responses_and_where(catalog: None) -> None:
    responses = {
        (slug, region): credential(slug, region).native_dialects().get("responses")
        for slug, region in [
            ("openai", ""),
            ("deepseek", ""),
            ("qwen", "cn"),
            ("qwen", "intl"),
            ("minimax", "cn"),
            ("minimax", "intl"),
            ("ark", "cn"),
            ("moonshot", "cn"),
            ("zhipu", "cn"),
            ("anthropic", ""),
        ]
    }
    assert responses == {
        ("openai", ""): "https://api.openai.com/v1",
        ("deepseek", ""): "https://api.deepseek.com",
        ("qwen", "cn"): "https://dashscope.aliyuncs.com/compatible-mode/v1",
        ("qwen", "intl"): "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        ("minimax", "cn"): "https://api.minimaxi.com/v1",
        ("minimax", "intl"): None,  # not documented
        ("ark", "cn"): "https://ark.cn-beijing.volces.com/api/v3",
        ("moonshot", "cn"): None,  # reported by third parties only, no documented URL
        ("zhipu", "cn"): None,  # none
        ("anthropic", ""): None,
    }
    # DeepSeek keeps its Messages endpoint beside it.
    assert credential("deepseek").native_dialects()["messages"].endswith("/anthropic/v1")
    # Azure: per resource, on its v1 API; a custom base URL declares what it serves.
    azure = credential("azure", base_url="https://res.openai.azure.com/")
    assert azure.native_dialects() == {"responses": "https://res.openai.azure.com/openai/v1"}
    assert credential("custom", base_url="https://proxy.example/v1").native_dialects() == {}
    declared = credential(
        "custom",
        base_url="https://proxy.example/v1",
        extras={"dialects": {"responses": "https://proxy.example/v1/"}},
    )
    assert declared.native_dialects() == {"responses": "https://proxy.example/v1"}


@pytest.mark.django_db
def test_the_migration_adds_responses_urls_only_where_there_are_none(catalog: None) -> None:
    migration = importlib.import_module("relay.migrations.0007_responses_dialect_urls")
    messages = {"messages": {"default": "https://api.deepseek.com/anthropic/v1"}}
    Provider.objects.filter(slug="deepseek").update(dialects=messages)
    edited = {"responses": {"cn": "https://my-proxy.example/v1"}}
    Provider.objects.filter(slug="qwen").update(dialects=edited)
    migration.add_responses(apps, None)
    assert Provider.objects.get(slug="deepseek").dialects == {
        **messages,
        "responses": {"default": "https://api.deepseek.com"},
    }
    assert Provider.objects.get(slug="qwen").dialects == edited  # the operator's stays


def test_azure_serves_responses_from_its_resource(relay: Relay, fake: Any) -> None:
    azure = make_credential(relay.team, "azure", fake.base_url + "/azure", provider="azure")
    make_route(relay.team, "gpt", (azure, "gpt-5.5", 0))
    reply = relay.client().responses.create(model="gpt", input="Hello there")
    assert reply.status == "completed"
    [sent] = fake.requests()
    assert (sent["path"], sent["flavor"], sent["key_last4"]) == (
        "/azure/openai/v1/responses",
        "azure",
        "1234",  # the api-key header, as Azure reads it
    )
    assert sent["body"]["model"] == "gpt-55"  # the deployment: Azure's names have no dots
