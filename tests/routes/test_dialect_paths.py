"""Native or translated: what the route page and the route API say about each target, read
from the credential the way the relay reads it (``ProviderCredential.native_dialects``)."""

from __future__ import annotations

import re
from typing import Any

from django.urls import reverse

from relay import dialects, routes
from relay.models import Provider, ProviderCredential
from relay.route_forms import TargetSpec
from tests.conftest import Cast, client_for
from tests.routes.conftest import Keys, make_credential


def page_paths(cast: Cast) -> dict[tuple[str, str], dict[str, str]]:
    """{(alias, upstream model): {dialect: path}} as the route page renders it."""
    response = client_for(cast.vera).get(reverse("route_list", args=[cast.acme.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    found: dict[tuple[str, str], dict[str, str]] = {}
    for row in re.split(r'<tr data-test="route-row"', html)[1:]:
        alias = re.search(r'data-alias="([^"]+)"', row)
        assert alias is not None
        for target in re.split(r'data-test="route-target"', row)[1:]:
            model = re.search(r'<code class="mono target__model">([^<]+)</code>', target)
            assert model is not None
            found[(alias.group(1), model.group(1))] = dict(
                re.findall(r'data-dialect="([^"]+)" data-path="([^"]+)"', target)
            )
    return found


def route(cast: Cast, alias: str, *targets: tuple[ProviderCredential, str]) -> None:
    routes.create_route(
        cast.membership(cast.alice),
        alias=alias,
        targets=[TargetSpec(c, m, i, 1) for i, (c, m) in enumerate(targets)],
    )


def test_the_rule_per_credential(cast: Cast, keys: Keys) -> None:
    team = cast.acme
    us_qwen = make_credential(team, "Qwen US", "qwen", region="us")  # no /apps/anthropic in us
    claude = make_credential(team, "Claude", "anthropic", region="default")
    proxy = make_credential(team, "Proxy", "custom", base_url="https://llm.example.com/v1")
    declared = make_credential(
        team,
        "Declared",
        "custom",
        base_url="https://llm.example.com/v1",
        extras={"dialects": {"messages": "https://llm.example.com/anthropic/v1"}},
    )
    claude_proxy = make_credential(
        team, "Claude proxy", "anthropic", base_url="https://claude.example.com/v1"
    )
    expected = {
        keys.deepseek: dialects.NATIVE,  # the catalog's /anthropic
        keys.qwen: dialects.NATIVE,  # cn: /apps/anthropic
        keys.zhipu: dialects.NATIVE,  # intl: api.z.ai/api/anthropic
        us_qwen: dialects.TRANSLATED,
        claude: dialects.NATIVE,  # Anthropic's own wire format
        proxy: dialects.TRANSLATED,  # a custom base URL serves chat unless it says more
        declared: dialects.NATIVE,
        claude_proxy: dialects.NATIVE,
    }
    assert {c: dialects.dialect_path(c, "messages") for c in expected} == expected
    # Responses: the catalog's DeepSeek and DashScope endpoints (cn and intl, not us); the
    # rest serve it translated.
    serves_responses = {keys.deepseek, keys.qwen}
    assert {c: dialects.dialect_path(c, "responses") for c in expected} == {
        c: dialects.NATIVE if c in serves_responses else dialects.TRANSLATED for c in expected
    }
    assert dialects.shown_dialects(expected) == ["messages", "responses"]


def test_the_route_page_says_native_or_translated_per_target(cast: Cast, keys: Keys) -> None:
    proxy = make_credential(cast.acme, "Proxy", "custom", base_url="https://llm.example.com/v1")
    route(cast, "claude-sonnet-5-5", (keys.deepseek, "deepseek-v4-pro"), (proxy, "glm-4.7"))
    assert page_paths(cast) == {
        ("claude-sonnet-5-5", "deepseek-v4-pro"): {"messages": "native", "responses": "native"},
        ("claude-sonnet-5-5", "glm-4.7"): {"messages": "translated", "responses": "translated"},
    }
    html = client_for(cast.vera).get(reverse("route_list", args=[cast.acme.pk])).content.decode()
    assert 'data-test="routes-dialects-help"' in html

    # An embedding model is reached by the embeddings endpoint only: no dialect to report.
    route(cast, "text-embedding-3-small", (keys.qwen, "text-embedding-v4"))
    assert page_paths(cast)[("text-embedding-3-small", "text-embedding-v4")] == {}
    listed: Any = client_for(cast.vera).get(reverse("route-list", args=[cast.acme.pk])).json()
    embedding = next(r for r in listed["results"] if r["alias"] == "text-embedding-3-small")
    assert embedding["targets"][0]["dialects"] == {}


def test_a_dialect_the_catalog_gains_appears_without_code_changes(cast: Cast, keys: Keys) -> None:
    route(cast, "gpt-5.5", (keys.zhipu, "glm-5"))
    # (Responses is shown because another of the team's keys, DeepSeek's, serves it.)
    assert page_paths(cast) == {
        ("gpt-5.5", "glm-5"): {"messages": "native", "responses": "translated"}
    }

    # An operator records a Responses endpoint for Zhipu in the catalog (the admin's edit).
    zhipu = Provider.objects.get(slug="zhipu")
    zhipu.dialects = {**zhipu.dialects, "responses": {"intl": "https://api.z.ai/api/paas/v4"}}
    zhipu.save()
    assert page_paths(cast) == {("gpt-5.5", "glm-5"): {"messages": "native", "responses": "native"}}


def test_the_route_api_lists_the_same_answer(cast: Cast, keys: Keys) -> None:
    declared = make_credential(
        cast.acme,
        "Declared",
        "custom",
        base_url="https://llm.example.com/v1",
        extras={"dialects": {"responses": "https://llm.example.com/v1"}},
    )
    route(cast, "gpt-5.5", (declared, "qwen3.5-plus"), (keys.zhipu, "glm-5"))
    client = client_for(cast.vera)
    listed: Any = client.get(reverse("route-list", args=[cast.acme.pk])).json()
    [data] = listed["results"]
    assert [(t["upstream_model"], t["dialects"]) for t in data["targets"]] == [
        ("qwen3.5-plus", {"messages": "translated", "responses": "native"}),
        ("glm-5", {"messages": "native", "responses": "translated"}),
    ]
    one = client.get(reverse("route-detail", args=[cast.acme.pk, data["id"]])).json()
    assert one["targets"] == data["targets"]
