"""End to end: after one relocation submit, the relay serves ``gpt-4o`` from the
chosen replacement, and from the fallback when the replacement fails."""

from __future__ import annotations

import time

import anthropic
from django.test import Client
from django.urls import reverse

from accounts.models import User
from relay.models import ModelRoute
from tests.fake_upstream.conftest import Fake
from tests.relay.conftest import Relay, make_credential
from tests.routes.conftest import targets_of
from tests.routes.test_relocation import defaults, exports, row_key, snippet, value


def served_by(relay: Relay) -> tuple[str, str]:
    raw = relay.client().chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Hello"}], max_tokens=3
    )
    assert raw.parse().choices[0].message.content
    return raw.headers["x-baton-provider"], raw.headers["x-baton-model"]


def wait_for(relay: Relay, expected: tuple[str, str], timeout: float = 3.0) -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        got = served_by(relay)
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_relocated_gpt_4o_is_served_by_the_replacement_then_the_fallback(
    relay: Relay, fake: Fake
) -> None:
    team = relay.team
    # Before: the fixture's own alias sends gpt-4o to demo-chat.
    assert served_by(relay) == ("openai", "demo-chat")

    qwen = make_credential(team, "Qwen", f"{fake.base_url}/v1", provider="qwen")
    glm = make_credential(team, "GLM", f"{fake.base_url}/v1", provider="zhipu")
    client = Client()
    client.force_login(User.objects.get(email="relay-owner@example.com"))
    url = reverse("route_relocate", args=[team.pk])
    form = client.get(url).context["form"]
    key = row_key(form, "gpt-4o")
    data = {
        **defaults(form),
        f"{key}-use": "on",
        f"{key}-primary": value(qwen, "qwen-plus"),
        f"{key}-fallback1": value(glm, "glm-4.6"),
        f"{key}-fallback2": "",
    }
    data.pop("issue_key", None)
    response = client.post(url, data)
    assert response.status_code == 200, response.context["form"].errors

    [route] = ModelRoute.objects.filter(team=team, alias="gpt-4o")  # updated, not duplicated
    assert targets_of(route) == [("Qwen", "qwen-plus", 0, 1), ("GLM", "glm-4.6", 1, 1)]
    assert wait_for(relay, ("qwen", "qwen-plus")) == ("qwen", "qwen-plus")

    # Qwen starts failing: the fallback answers, the application notices nothing.
    qwen.base_url = f"{fake.base_url}/_f/status=500/v1"
    qwen.save()
    fake.http.delete("/_fake/requests")
    assert wait_for(relay, ("zhipu", "glm-4.6")) == ("zhipu", "glm-4.6")
    history = fake.wait_for(lambda h: any(r["status"] == 500 for r in h))
    tried = [(r["body"]["model"], r["status"]) for r in history]
    assert ("qwen-plus", 500) in tried  # the replacement was tried first and failed
    assert ("glm-4.6", 200) in tried
    assert served_by(relay) == ("zhipu", "glm-4.6")


def test_claude_code_names_relocated_go_native_then_translated(relay: Relay, fake: Fake) -> None:
    """Claude Code's lines from the result page reach the relay: its Sonnet name goes to
    DeepSeek's Messages endpoint as it is, and to GLM through chat when DeepSeek fails."""
    team = relay.team
    deepseek = make_credential(
        team,
        "DeepSeek",
        f"{fake.base_url}/deepseek/v1",
        provider="deepseek",
        extras={"dialects": {"messages": f"{fake.base_url}/deepseek/anthropic/v1"}},
    )
    make_credential(team, "GLM", f"{fake.base_url}/zhipu/v1", provider="zhipu")  # chat only
    client = Client()
    client.force_login(User.objects.get(email="relay-owner@example.com"))
    url = reverse("route_relocate", args=[team.pk])
    form = client.get(url).context["form"]
    key = row_key(form, "claude-sonnet-5-5")
    data = {**defaults(form), f"{key}-use": "on", f"{key}-fallback2": "", "key_name": "Claude"}
    data["issue_key"] = "on"
    response = client.post(url, data)
    assert response.status_code == 200, response.context["form"].errors
    [route] = ModelRoute.objects.filter(team=team, alias="claude-sonnet-5-5")
    # Suggested: the native target first.
    assert targets_of(route) == [("DeepSeek", "deepseek-v4-pro", 0, 1), ("GLM", "glm-5", 1, 1)]

    env = exports(snippet(response.content.decode(), "relocate-snippet-claude-code"))
    assert env["ANTHROPIC_BASE_URL"] == "http://testserver"  # the page's host; here the relay's
    sdk = anthropic.Anthropic(
        base_url=relay.base_url, auth_token=env["ANTHROPIC_AUTH_TOKEN"], max_retries=0
    )
    deadline = time.monotonic() + 3.0
    while True:
        try:
            reply = sdk.messages.create(
                model=env["ANTHROPIC_MODEL"],
                max_tokens=32,
                messages=[{"role": "user", "content": "Hello"}],
            )
            break
        except anthropic.NotFoundError:  # the relay has not seen the new alias yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    assert reply.content[-1].type == "text"
    assert fake.requests()[-1]["path"] == "/deepseek/anthropic/v1/messages"
    assert fake.requests()[-1]["body"]["model"] == "deepseek-v4-pro"

    # DeepSeek fails: GLM answers, through the chat pivot.
    broken = f"{fake.base_url}/_f/status=500"
    deepseek.base_url = f"{broken}/deepseek/v1"
    deepseek.extras = {"dialects": {"messages": f"{broken}/deepseek/anthropic/v1"}}
    deepseek.save()
    fake.http.delete("/_fake/requests")
    deadline = time.monotonic() + 3.0
    while True:
        reply = sdk.messages.create(
            model=env["ANTHROPIC_MODEL"],
            max_tokens=32,
            messages=[{"role": "user", "content": "Hi"}],
        )
        history = fake.requests()
        if history[-1]["path"] == "/zhipu/v1/chat/completions" or time.monotonic() > deadline:
            break
        fake.http.delete("/_fake/requests")
        time.sleep(0.05)
    assert [(r["path"], r["status"]) for r in history] == [
        ("/_f/status=500/deepseek/anthropic/v1/messages", 500),
        ("/zhipu/v1/chat/completions", 200),
    ]
    assert reply.content[-1].type == "text"
