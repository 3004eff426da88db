"""The relocation helper: OpenAI model names -> the team's providers, in one submit."""

from __future__ import annotations

import re
import tomllib
from html import unescape
from typing import Any

import pytest
from django.urls import reverse

from accounts.actions import TeamRuleError
from accounts.models import ApiKey, AuditEvent
from relay import relocation
from relay.models import ModelRoute
from tests.conftest import Cast, client_for
from tests.routes.conftest import Keys, make_credential, targets_of


def url(cast: Cast) -> str:
    return reverse("route_relocate", args=[cast.acme.pk])


def names(options: list[relocation.Option]) -> list[tuple[str, str]]:
    return [(o.model, o.credential.name) for o in options]


def value(credential: Any, model: str) -> str:
    return f"{credential.pk}:{model}"


def row_key(form: relocation.RelocationForm, alias: str) -> str:
    return next(row.key for row in form.rows if row.alias == alias)


def defaults(form: relocation.RelocationForm) -> dict[str, Any]:
    """What a browser submits for the page as shown: every field's initial value."""
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        initial = form.get_initial_for_field(field, name)
        if isinstance(initial, bool):
            if initial:
                data[name] = "on"
        elif initial is not None:
            data[name] = str(initial)
    return data


def page_form(client: Any, cast: Cast) -> relocation.RelocationForm:
    response = client.get(url(cast))
    assert response.status_code == 200
    form = response.context["form"]
    assert isinstance(form, relocation.RelocationForm)
    return form


def test_suggestions_prefer_other_providers_and_distinct_keys(cast: Cast, keys: Keys) -> None:
    options = relocation.options_for(relocation.usable_credentials(cast.acme))
    # The 2026 generation of each provider (relay/catalog_seed.py) comes first.
    assert names(relocation.suggest("gpt-4o", options)) == [
        ("qwen3.5-plus", "Qwen"),
        ("glm-4.7", "GLM"),
        ("deepseek-v4-flash", "DeepSeek"),
    ]
    assert names(relocation.suggest("gpt-4o-mini", options)) == [
        ("qwen3.5-flash", "Qwen"),
        ("glm-4.5-flash", "GLM"),
        ("deepseek-v4-flash", "DeepSeek"),
    ]
    assert names(relocation.suggest("gpt-5", options)) == [
        ("qwen3-max", "Qwen"),
        ("glm-5", "GLM"),
        ("deepseek-v4-pro", "DeepSeek"),
    ]
    assert relocation.suggest("o3", options)[0].model == "deepseek-v4-pro"
    # Embeddings only from embedding models; DeepSeek has none, so Qwen again.
    assert names(relocation.suggest("text-embedding-3-small", options)) == [
        ("text-embedding-v4", "Qwen"),
        ("embedding-3", "GLM"),
        ("text-embedding-v3", "Qwen"),
    ]
    # A team with only one key gets what that key has.
    only_qwen = [o for o in options if o.credential == keys.qwen]
    assert [o.model for o in relocation.suggest("gpt-4.1", only_qwen)] == [
        "qwen3-max",
        "qwen3.5-plus",
        "qwen-plus",  # the older name, as a later fallback
    ]
    # Without the new names (an operator's catalog of 2025), the older ones still serve.
    older = [o for o in options if o.model not in ("qwen3.5-plus", "glm-4.7", "deepseek-v4-flash")]
    assert names(relocation.suggest("gpt-4o", older)) == [
        ("qwen-plus", "Qwen"),
        ("glm-4.6", "GLM"),
        ("deepseek-chat", "DeepSeek"),
    ]
    assert relocation.kind_of("my-embedder") == relocation.EMBEDDING
    assert relocation.kind_of("gpt-3.5-turbo") == relocation.CHAT


def test_the_page_prefills_suggestions_and_offers_only_the_teams_keys(
    cast: Cast, keys: Keys
) -> None:
    keys.deepseek.enabled = False
    keys.deepseek.save()
    client = client_for(cast.alice)
    response = client.get(url(cast))
    html = response.content.decode()
    assert 'data-alias="gpt-4o"' in html and 'data-alias="text-embedding-3-large"' in html
    assert str(keys.globex.pk) not in html
    assert str(keys.deepseek.pk) not in html  # disabled keys are not offered
    form = response.context["form"]
    key = row_key(form, "gpt-4o")
    assert form[f"{key}-primary"].value() == value(keys.qwen, "qwen3.5-plus")
    assert form[f"{key}-fallback1"].value() == value(keys.zhipu, "glm-4.7")
    assert not form[f"{key}-use"].value()  # nothing is ticked until the user says so
    embed = row_key(form, "text-embedding-3-small")
    assert form[f"{embed}-primary"].value() == value(keys.qwen, "text-embedding-v4")
    # Chat rows offer chat models only.
    chat_values = {
        v for _label, group in form.fields[f"{key}-primary"].choices[1:] for v, _m in group
    }
    assert value(keys.qwen, "qwen-plus") in chat_values
    assert value(keys.qwen, "text-embedding-v4") not in chat_values
    # No API key yet: offer to create one.
    assert form["issue_key"].value() is True


def test_one_submit_creates_every_alias_with_priorities(cast: Cast, keys: Keys) -> None:
    client = client_for(cast.adam)
    form = page_form(client, cast)
    data = defaults(form)
    data[f"{row_key(form, 'gpt-4o')}-use"] = "on"
    data[f"{row_key(form, 'text-embedding-3-small')}-use"] = "on"
    data["c0-alias"] = "gpt-3.5-turbo"
    data["c0-primary"] = value(keys.deepseek, "deepseek-chat")
    data["c0-fallback1"] = value(keys.qwen, "qwen-flash")
    data["key_name"] = "Checkout service"

    response = client.post(url(cast), data)
    assert response.status_code == 200, response.context["form"].errors
    assert response.templates[0].name == "relay/relocate_done.html"
    assert response["Cache-Control"] == "no-store"

    routes = {r.alias: r for r in ModelRoute.objects.filter(team=cast.acme)}
    assert set(routes) == {"gpt-4o", "text-embedding-3-small", "gpt-3.5-turbo"}
    assert targets_of(routes["gpt-4o"]) == [
        ("Qwen", "qwen3.5-plus", 0, 1),
        ("GLM", "glm-4.7", 1, 1),
        ("DeepSeek", "deepseek-v4-flash", 2, 1),
    ]
    assert targets_of(routes["text-embedding-3-small"]) == [
        ("Qwen", "text-embedding-v4", 0, 1),
        ("GLM", "embedding-3", 1, 1),
        ("Qwen", "text-embedding-v3", 2, 1),
    ]
    assert targets_of(routes["gpt-3.5-turbo"]) == [
        ("DeepSeek", "deepseek-chat", 0, 1),
        ("Qwen", "qwen-flash", 1, 1),
    ]
    created = AuditEvent.objects.filter(team=cast.acme, action="route.created")
    assert created.count() == 3
    assert all(e.details["via"] == "relocate" and e.actor == cast.adam for e in created)

    # The two lines, with the new key (shown this once).
    issued = ApiKey.objects.get(team=cast.acme)
    assert issued.name == "Checkout service"
    html = response.content.decode()
    key = response.context["issued"].key
    assert key.endswith(issued.last4)
    assert 'base_url=<span class="tk-s">"http://testserver/v1"</span>' in html
    assert f'api_key=<span class="tk-s">"{key}"</span>' in html
    assert 'OPENAI_BASE_URL="http://testserver/v1"' in html
    assert f'OPENAI_API_KEY="{key}"' in html
    for snippet in ("relocate-snippet-python", "relocate-snippet-env"):
        assert f'data-copy="#{snippet}"' in html and f'data-test="{snippet}-copy"' in html
    assert AuditEvent.objects.filter(team=cast.acme, action="api_key.created").count() == 1


def test_resubmitting_updates_instead_of_duplicating(cast: Cast, keys: Keys) -> None:
    client = client_for(cast.alice)
    form = page_form(client, cast)
    key = row_key(form, "gpt-4o")
    data = {**defaults(form), f"{key}-use": "on"}
    data.pop("issue_key", None)
    assert client.post(url(cast), data).status_code == 200

    # The page now shows the alias ticked, with its current targets.
    form = page_form(client, cast)
    assert form[f"{key}-use"].value() is True
    assert form[f"{key}-primary"].value() == value(keys.qwen, "qwen3.5-plus")

    data = {
        **defaults(form),
        f"{key}-primary": value(keys.zhipu, "glm-4.6"),
        f"{key}-fallback1": "",
        f"{key}-fallback2": "",
    }
    data.pop("issue_key", None)
    response = client.post(url(cast), data)
    assert response.status_code == 200
    [route] = ModelRoute.objects.filter(team=cast.acme)
    assert targets_of(route) == [("GLM", "glm-4.6", 0, 1)]
    updated = AuditEvent.objects.get(team=cast.acme, action="route.updated")
    assert updated.details["via"] == "relocate"
    assert response.context["result"].outcomes[0].status == "updated"
    assert not ApiKey.objects.exists()
    assert "&lt;your Baton API key&gt;" in response.content.decode()

    # The same choices again: nothing changes and nothing more is audited.
    response = client.post(url(cast), data)
    assert response.context["result"].outcomes[0].status == "unchanged"
    assert AuditEvent.objects.filter(team=cast.acme, action__startswith="route.").count() == 2
    assert ModelRoute.objects.filter(team=cast.acme).count() == 1


def test_a_problem_in_one_row_saves_nothing(cast: Cast, keys: Keys) -> None:
    client = client_for(cast.alice)
    form = page_form(client, cast)
    data = defaults(form)
    data[f"{row_key(form, 'gpt-4o')}-use"] = "on"
    mini = row_key(form, "gpt-4o-mini")
    data[f"{mini}-use"] = "on"
    data[f"{mini}-primary"] = ""  # a ticked name needs a primary
    response = client.post(url(cast), data)
    assert response.status_code == 400
    assert f"{mini}-primary" in response.context["form"].errors
    assert not ModelRoute.objects.exists()
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize(
    "problem",
    ["foreign credential", "embedding for chat", "same target twice", "nothing ticked", "bad name"],
)
def test_refused_submissions(cast: Cast, keys: Keys, problem: str) -> None:
    client = client_for(cast.alice)
    form = page_form(client, cast)
    data = defaults(form)
    key = row_key(form, "gpt-4o")
    data[f"{key}-use"] = "on"
    if problem == "foreign credential":
        data[f"{key}-primary"] = value(keys.globex, "qwen-plus")
    elif problem == "embedding for chat":
        data[f"{key}-primary"] = value(keys.qwen, "text-embedding-v4")
    elif problem == "same target twice":
        data[f"{key}-fallback1"] = data[f"{key}-primary"]
    elif problem == "nothing ticked":
        del data[f"{key}-use"]
    elif problem == "bad name":
        data["c0-alias"] = "gpt 3.5"
        data["c0-primary"] = value(keys.qwen, "qwen-plus")
    response = client.post(url(cast), data)
    assert response.status_code == 400
    assert response.context["form"].errors
    assert not ModelRoute.objects.exists()


def test_a_typed_name_that_is_also_ticked_is_refused(cast: Cast, keys: Keys) -> None:
    client = client_for(cast.alice)
    form = page_form(client, cast)
    data = {**defaults(form), f"{row_key(form, 'gpt-4o')}-use": "on"}
    data["c0-alias"] = "gpt-4o"
    data["c0-primary"] = value(keys.qwen, "qwen-plus")
    response = client.post(url(cast), data)
    assert response.status_code == 400
    assert "c0-alias" in response.context["form"].errors


def test_apply_is_all_or_nothing(cast: Cast, keys: Keys) -> None:
    plan = [
        relocation.PlanItem("gpt-4o", [relocation.Option(keys.qwen, "qwen-plus", "chat")]),
        relocation.PlanItem("o3", [relocation.Option(keys.globex, "qwen-max", "chat")]),
    ]
    with pytest.raises(TeamRuleError):
        relocation.apply(cast.membership(cast.alice), plan)
    assert not ModelRoute.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="route.").exists()


def test_without_credentials_the_page_explains_and_links(cast: Cast, catalog: None) -> None:
    response = client_for(cast.alice).get(url(cast))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-test="relocate-no-credentials"' in html
    assert reverse("credential_list", args=[cast.acme.pk]) in html
    assert 'data-test="relocate-form"' not in html


def test_members_and_viewers_look_but_cannot_apply(cast: Cast, keys: Keys) -> None:
    admin_form = page_form(client_for(cast.alice), cast)
    data = {**defaults(admin_form), f"{row_key(admin_form, 'gpt-4o')}-use": "on"}
    for user in (cast.bob, cast.vera):
        client = client_for(user)
        page = client.get(url(cast))
        assert page.status_code == 200
        assert 'data-test="relocate-read-only"' in page.content.decode()
        assert client.post(url(cast), data).status_code == 403
    assert not ModelRoute.objects.exists()
    assert not ApiKey.objects.exists()


def test_outsiders_get_404(cast: Cast, keys: Keys) -> None:
    outsider = client_for(cast.charlie)
    assert outsider.get(url(cast)).status_code == 404
    assert outsider.post(url(cast), {"p0-use": "on"}).status_code == 404
    assert not ModelRoute.objects.exists()


def test_coding_agents_get_targets_that_serve_their_dialect_natively(
    cast: Cast, keys: Keys
) -> None:
    options = relocation.options_for(relocation.usable_credentials(cast.acme))
    # Every key here serves Messages natively: the agent models of each, strongest first.
    assert names(relocation.suggest("claude-sonnet-5-5", options)) == [
        ("deepseek-v4-pro", "DeepSeek"),
        ("glm-5", "GLM"),
        ("qwen3.5-plus", "Qwen"),
    ]
    assert names(relocation.suggest("claude-haiku-4-5", options)) == [
        ("deepseek-v4-flash", "DeepSeek"),
        ("glm-4.5-air", "GLM"),
        ("qwen3.5-flash", "Qwen"),
    ]
    assert relocation.suggest("claude-opus-4-1", options)[0].model == "deepseek-v4-pro"

    # DashScope's US region has no Messages endpoint, a custom server none it declared:
    # Claude Code's names go to native targets first, an application's names do not care.
    us = make_credential(cast.acme, "Qwen US", "qwen", region="us")
    proxy = make_credential(cast.acme, "Kimi proxy", "moonshot", base_url="https://kimi.example")
    chat_first = relocation.options_for([us, proxy, keys.zhipu])
    assert names(relocation.suggest("gpt-5", chat_first)) == [
        ("qwen3-max", "Qwen US"),
        ("glm-5", "GLM"),
        ("kimi-k2.6", "Kimi proxy"),
    ]
    assert names(relocation.suggest("claude-opus-5-5", chat_first)) == [
        ("glm-5", "GLM"),
        ("kimi-k2.6", "Kimi proxy"),
        ("qwen3-max", "Qwen US"),
    ]
    # Codex speaks Responses, which no catalog entry serves yet: the plain preference order.
    assert names(relocation.suggest("gpt-5.5", chat_first)) == [
        ("glm-5", "GLM"),
        ("kimi-k2.6", "Kimi proxy"),
        ("qwen3.5-plus", "Qwen US"),
    ]


def test_the_page_has_claude_code_and_codex_sections(cast: Cast, keys: Keys) -> None:
    form = page_form(client_for(cast.alice), cast)
    sections = {s["key"]: [i["row"].alias for i in s["items"]] for s in form.sections()}
    assert sections["claude-code"] == [
        "claude-sonnet-5-5",
        "claude-opus-5-5",
        "claude-haiku-5-5",
        "claude-sonnet-4-5",
        "claude-opus-4-1",
        "claude-haiku-4-5",
    ]
    assert sections["codex"] == ["gpt-5.5", "gpt-5.3-codex"]
    assert "gpt-4o" in sections["chat"] and "claude-sonnet-5-5" not in sections["chat"]
    key = row_key(form, "claude-sonnet-5-5")
    assert form[f"{key}-primary"].value() == value(keys.deepseek, "deepseek-v4-pro")


def snippet(html: str, test: str) -> str:
    """The text a copy button copies: the <pre>'s content without its markup."""
    found = re.search(rf'<pre [^>]*data-test="{test}"><code>(.*?)</code></pre>', html, re.S)
    assert found is not None, test
    return unescape(re.sub(r"<[^>]+>", "", found.group(1)))


def exports(text: str) -> dict[str, str]:
    return dict(re.findall(r'^export (\w+)="?([^"\n]*)"?$', text, re.M))


def test_the_result_points_claude_code_and_codex_at_baton(cast: Cast, keys: Keys) -> None:
    client = client_for(cast.alice)
    form = page_form(client, cast)
    data = defaults(form)
    for alias in ("claude-sonnet-5-5", "claude-haiku-5-5", "claude-haiku-4-5", "gpt-5.5"):
        data[f"{row_key(form, alias)}-use"] = "on"
    data["key_name"] = "Coding agents"
    response = client.post(url(cast), data)
    assert response.status_code == 200, response.context["form"].errors
    html = response.content.decode()
    key = response.context["issued"].key
    routes = {r.alias: r for r in ModelRoute.objects.filter(team=cast.acme)}
    assert set(routes) == {"claude-sonnet-5-5", "claude-haiku-5-5", "claude-haiku-4-5", "gpt-5.5"}
    assert targets_of(routes["claude-sonnet-5-5"])[0] == ("DeepSeek", "deepseek-v4-pro", 0, 1)

    # Claude Code: the root (it adds /v1/messages), the key, and every model setting names
    # an alias just saved; Opus was not moved, so it names the main model.
    claude = snippet(html, "relocate-snippet-claude-code")
    assert exports(claude) == {
        "ANTHROPIC_BASE_URL": "http://testserver",
        "ANTHROPIC_AUTH_TOKEN": key,
        "ANTHROPIC_MODEL": "claude-sonnet-5-5",
        "ANTHROPIC_DEFAULT_SONNET_MODEL": "claude-sonnet-5-5",
        "ANTHROPIC_DEFAULT_OPUS_MODEL": "claude-sonnet-5-5",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": "claude-haiku-5-5",
        "ANTHROPIC_SMALL_FAST_MODEL": "claude-haiku-5-5",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }

    # Codex: a config.toml provider on Baton's /v1 speaking Responses, the key in its env_key.
    config = tomllib.loads(snippet(html, "relocate-snippet-codex"))
    assert config == {
        "model": "gpt-5.5",
        "model_provider": "baton",
        "model_providers": {
            "baton": {
                "name": "Baton",
                "base_url": "http://testserver/v1",
                "env_key": "BATON_API_KEY",
                "wire_api": "responses",
            }
        },
    }
    assert exports(snippet(html, "relocate-snippet-codex-env")) == {"BATON_API_KEY": key}
    for test in (
        "relocate-snippet-claude-code",
        "relocate-snippet-codex",
        "relocate-snippet-codex-env",
    ):
        assert f'data-copy="#{test}"' in html and f'data-test="{test}-copy"' in html
    # No application name was moved: no OpenAI SDK lines.
    assert 'data-test="relocate-lines"' not in html


def test_claude_code_settings_name_only_aliases_that_exist() -> None:
    assert relocation.claude_code_models(["gpt-4o"]) == []
    assert dict(relocation.claude_code_models(["claude-opus-4-1", "claude-haiku-4-5"])) == {
        "ANTHROPIC_MODEL": "claude-opus-4-1",
        "ANTHROPIC_DEFAULT_SONNET_MODEL": "claude-opus-4-1",
        "ANTHROPIC_DEFAULT_OPUS_MODEL": "claude-opus-4-1",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": "claude-haiku-4-5",
        "ANTHROPIC_SMALL_FAST_MODEL": "claude-haiku-4-5",
    }
    assert relocation.codex_model(["gpt-4o", "gpt-5.3-codex"]) == "gpt-5.3-codex"
    assert relocation.codex_model(["gpt-4o"]) == ""
