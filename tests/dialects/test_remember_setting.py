"""The team setting *Remember reasoning between turns*, turned off on the settings page,
reaches the running relay within a second: from then on a chat client that drops
``reasoning_content`` gets the strict provider's refusal, and nothing of the reasoning is
kept."""

from __future__ import annotations

import time
from typing import Any

import openai
import orjson
from django.test import Client
from django.urls import reverse

from accounts.invalidation import VERSION_KEY
from accounts.models import AuditEvent, Team, User
from gateway.turns import record_key
from tests.dialects.test_reasoning import chat_turn
from tests.fake_upstream.test_chat_reasoning import THINKERS, TOOLS, second_turn
from tests.polling import relay_app, until
from tests.relay.conftest import Relay, make_credential, make_route

# Far below the relay's team TTL (gateway.cache.TEAM_TTL, 300 s): without the invalidation
# signal the old setting would hold for minutes, and this wait would run out.
WAIT = 5.0


def loop_completes(sdk: openai.OpenAI, refusal: str) -> tuple[bool, dict[str, Any]]:
    """One tool loop whose client drops reasoning_content: whether the provider took it."""
    assistant = chat_turn(sdk, "thinker")
    dropped = {k: v for k, v in assistant.items() if k != "reasoning_content"}
    try:
        sdk.chat.completions.create(model="thinker", messages=second_turn(dropped), tools=TOOLS)
    except openai.BadRequestError as exc:
        assert refusal in str(exc)
        return False, assistant
    return True, assistant


def settled(relay: Relay, redis_client: Any) -> None:
    """Wait until the relay's cache has taken in every change made so far (its watcher has
    read the current invalidation version). Otherwise a change still on its way, such as
    the route above, could reload the team after the setting moved and let this test pass
    without the setting's own invalidation."""
    cache = relay_app(relay.server).cache
    current = int(redis_client.get(VERSION_KEY) or 0)
    until(lambda: cache.version is not None and cache.version >= current, "the relay's cache")


def test_turning_it_off_stops_the_relay_remembering_within_a_second(
    relay: Relay, fake: Any, redis_client: Any
) -> None:
    base, model, refusal = THINKERS["deepseek"]
    strict = make_credential(
        relay.team, "strict", fake.base_url + "/_f/strict_reasoning" + base, provider="deepseek"
    )
    make_route(relay.team, "thinker", (strict, model, 0))
    sdk = relay.client()
    settled(relay, redis_client)
    assert loop_completes(sdk, refusal)[0]  # on by default: the reasoning is given back

    owner = Client()
    owner.force_login(User.objects.get(email="relay-owner@example.com"))
    response = owner.post(
        reverse("team_settings", args=[relay.team.pk]), {"section": "reasoning"}
    )  # the checkbox unticked
    assert response.status_code == 302
    assert Team.objects.get(pk=relay.team.pk).remember_reasoning is False
    assert AuditEvent.objects.filter(team=relay.team, action="team.settings_changed").exists()

    deadline = time.monotonic() + WAIT
    while True:
        completed, assistant = loop_completes(sdk, refusal)
        if not completed:
            break
        assert time.monotonic() < deadline, "the relay still restores reasoning"
        time.sleep(0.05)

    # And nothing of that turn's reasoning is kept: its record says where it was served only.
    key = record_key(str(relay.team.pk), assistant["tool_calls"][0]["id"])

    def kept_without_reasoning() -> dict[str, Any] | None:
        raw = redis_client.get(key)
        record: dict[str, Any] | None = orjson.loads(raw) if raw else None
        return record if record is not None and "r" not in record else None

    record = until(kept_without_reasoning, "the turn's record, without reasoning", WAIT)
    assert set(record) == {"t"}
