"""A newcomer's first request: the snippets name a model the team can call, and the
overview's "Getting started" lets a team with the demo upstream send it at once."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from django.test import Client

from accounts import actions, apikeys
from accounts.models import User
from relay import actions as relay_actions
from relay import routes as relay_routes
from relay.models import Provider, ProviderCredential
from relay.route_forms import TargetSpec
from tests.conftest import Cast, client_for

KEY_FORM = {"budget_period": "month", "allowed_models": ""}
NAMES = itertools.count()
SNIPPET_MODEL = re.compile(r'model=<span class="tk-s">"([^"]*)"</span>')
CURL_MODEL = re.compile(r'\{&quot;model&quot;: &quot;([^&]*)&quot;|\{"model": "([^"]*)"')


def key_page(client: Client, team_id: Any, **fields: Any) -> str:
    name = f"key {next(NAMES)}"
    response = client.post(f"/t/{team_id}/api-keys/new/", {**KEY_FORM, "name": name, **fields})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-test="api-key-issued"' in page, page
    return page


def snippet_models(page: str) -> set[str]:
    python = SNIPPET_MODEL.findall(page)
    curl = [a or b for a, b in CURL_MODEL.findall(page)]
    assert python and curl
    return set(python) | set(curl)


def note(page: str) -> tuple[str, str]:
    match = re.search(r'data-test="example-model-note" data-source="([^"]+)">(.*?)</p>', page, re.S)
    assert match, page
    return match.group(1), " ".join(re.sub(r"<[^>]+>", "", match.group(2)).split())


def openai_credential(cast: Cast, *, enabled: bool = True) -> ProviderCredential:
    return relay_actions.create_credential(
        cast.membership(cast.alice),
        name="Acme OpenAI",
        provider=Provider.objects.get(slug="openai"),
        secret="sk-acme-getting-started-0001",
        region="default",
        enabled=enabled,
    )


def test_a_team_without_a_provider_gets_no_model_that_cannot_answer(cast: Cast) -> None:
    page = key_page(client_for(cast.alice), cast.acme.pk)
    assert "gpt-4o-mini" not in page
    assert snippet_models(page) == {"a model of your provider key"}
    source, text = note(page)
    assert source == "none" and "no provider key yet" in text


def test_a_disabled_provider_key_does_not_count(cast: Cast) -> None:
    openai_credential(cast, enabled=False)
    assert note(key_page(client_for(cast.alice), cast.acme.pk))[0] == "none"


def test_the_snippet_uses_a_model_of_the_teams_provider_key(cast: Cast) -> None:
    openai_credential(cast)
    page = key_page(client_for(cast.alice), cast.acme.pk)
    first = Provider.objects.get(slug="openai").known_models[0]
    assert snippet_models(page) == {first}
    assert note(page) == (
        "credential",
        f"The example calls “{first}”, a model of the provider key “Acme OpenAI”.",
    )


def test_the_snippet_prefers_the_teams_first_alias(cast: Cast) -> None:
    credential = openai_credential(cast)
    owner = cast.membership(cast.alice)
    relay_routes.create_route(owner, alias="support-bot", targets=[TargetSpec(credential, "o3")])
    relay_routes.create_route(owner, alias="chat", targets=[TargetSpec(credential, "gpt-4.1")])
    page = key_page(client_for(cast.alice), cast.acme.pk)
    assert snippet_models(page) == {"chat"}
    assert note(page)[0] == "alias"


def test_a_key_limited_to_some_models_gets_one_of_them(cast: Cast) -> None:
    credential = openai_credential(cast)
    owner = cast.membership(cast.alice)
    relay_routes.create_route(owner, alias="chat", targets=[TargetSpec(credential, "gpt-4.1")])
    page = key_page(client_for(cast.alice), cast.acme.pk, allowed_models="o3, gpt-4o")
    assert snippet_models(page) == {"o3"}  # the key's first; "chat" is not the key's

    page = key_page(client_for(cast.alice), cast.acme.pk, allowed_models="qwen-plus")
    assert snippet_models(page) == {"qwen-plus"}
    assert note(page)[0] == "key-only"  # named, and said that the team cannot call it yet


@pytest.fixture
def newcomer(settings: Any, catalog: None) -> tuple[Client, Any]:
    """A new user's team where the demo upstream runs (the embedded default)."""
    settings.BATON_FAKE_UPSTREAM_URL = "http://127.0.0.1:8001"
    user = User.objects.create_user("newcomer@example.com", "x-sturdy-passphrase-1")
    team = actions.create_team(user, name="Newcomer")
    return client_for(user), team


def steps(page: str) -> list[str]:
    return re.findall(r'data-test="(start-(?:key|request|provider))"', page)


def test_a_new_team_sends_its_first_request_to_the_demo_before_adding_a_provider(
    newcomer: tuple[Client, Any],
) -> None:
    client, team = newcomer
    page = client.get(f"/t/{team.pk}/").content.decode()
    assert steps(page) == ["start-key", "start-request", "start-provider"]
    assert "Move to a real provider" in page
    assert "Add a provider key" not in page
    assert SNIPPET_MODEL.findall(page) == ["demo-chat"]
    assert note(page)[0] == "demo"
    assert f'href="/t/{team.pk}/api-keys/new/"' in page
    assert f'href="/t/{team.pk}/providers/new/"' in page
    assert 'checklist__item--done" data-test="start-key"' not in page

    key_page(client, team.pk)
    page = client.get(f"/t/{team.pk}/").content.decode()
    assert 'checklist__item--done" data-test="start-key"' in page
    assert note(key_page(client, team.pk)) == (
        "demo",
        "The example calls “demo-chat” on Baton's built-in demo upstream, which answers "
        "with made-up text. Add your own provider key to call a real model. Add provider key",
    )


def test_once_a_real_provider_is_added_the_overview_points_at_aliases(cast: Cast) -> None:
    openai_credential(cast)
    page = client_for(cast.alice).get(f"/t/{cast.acme.pk}/").content.decode()
    assert steps(page) == ["start-key", "start-request", "start-provider"]
    assert 'checklist__item--done" data-test="start-provider"' in page
    assert 'data-test="start-alias-add"' in page and 'data-test="start-relocate"' in page


def test_without_any_model_the_provider_key_comes_first(cast: Cast) -> None:
    page = client_for(cast.alice).get(f"/t/{cast.acme.pk}/").content.decode()
    assert steps(page) == ["start-provider", "start-key", "start-request"]
    assert "Add a provider key" in page
    # A viewer is told who adds provider keys instead of getting a button that 403s.
    page = client_for(cast.vera).get(f"/t/{cast.acme.pk}/").content.decode()
    assert 'data-test="start-provider-add"' not in page
    assert 'data-test="start-key-create"' not in page


def test_the_example_model_of_a_member_key(cast: Cast) -> None:
    """The same choice for keys made through the API's actions (no page involved)."""
    from console.examples import Source, example_model

    credential = openai_credential(cast)
    issued = apikeys.create_api_key(cast.membership(cast.bob), name="bob's", allowed_models=["o3"])
    assert example_model(cast.acme, issued.api_key.allowed_models).name == "o3"
    credential.status = "broken"
    credential.save()
    assert example_model(cast.acme).source == Source.NONE
