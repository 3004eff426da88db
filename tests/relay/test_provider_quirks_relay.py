"""Provider quirks seen through the relay, against the fake upstream's flavors.

The adapters' unit tests cover each wire shape byte by byte
(tests/wire/providers); these prove the relay bills and relays them right.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.relay.conftest import Relay, make_credential, make_route
from tests.relay.test_relay_sdk import usage_events

# Typed loosely: the SDK's TypedDicts add nothing to these tests.
MESSAGES: Any = [{"role": "user", "content": "quirky providers everywhere"}]


@pytest.mark.parametrize(
    ("provider", "path"),
    [
        ("moonshot", "/moonshot/v1"),  # usage inside choices[0].usage
        ("siliconflow", "/siliconflow/v1"),  # cumulative usage on every chunk
        ("deepseek", "/deepseek/v1"),  # keep-alive comments, cache-hit fields
        ("zhipu", "/zhipu/v1"),  # usage on the finish chunk
        ("gemini", "/gemini/v1beta/openai"),  # usage on the last content chunk
        ("minimax", "/minimax/v1"),  # refuses stream_options
    ],
)
def test_streamed_usage_is_exact(
    relay: Relay, fake: Any, redis_client: Any, provider: str, path: str
) -> None:
    credential = make_credential(relay.team, provider, fake.base_url + path, provider=provider)
    make_route(relay.team, f"{provider}-chat", (credential, "some-model", 0))
    chunks = list(
        relay.client().chat.completions.create(
            model=f"{provider}-chat",
            messages=MESSAGES,
            max_tokens=6,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage is not None, provider
    assert chunks[-1].usage.completion_tokens == 6
    [event] = usage_events(redis_client, 1)
    assert (event.completion_tokens, event.estimated) == (6, False), provider
    assert event.prompt_tokens == chunks[-1].usage.prompt_tokens


def test_minimax_error_in_a_200_body_is_a_real_error(relay: Relay, fake: Any) -> None:
    credential = make_credential(
        relay.team, "minimax-broke", f"{fake.base_url}/_f/status=402/minimax/v1", provider="minimax"
    )
    make_route(relay.team, "mm", (credential, "MiniMax-M2", 0))
    with pytest.raises(openai.RateLimitError) as error:
        relay.client().chat.completions.create(model="mm", messages=MESSAGES)
    assert error.value.code == "insufficient_quota"


def test_gemini_error_array_becomes_an_openai_error(relay: Relay, fake: Any) -> None:
    credential = make_credential(
        relay.team, "gem", f"{fake.base_url}/_f/status=400/gemini/v1beta/openai", provider="gemini"
    )
    make_route(relay.team, "gem", (credential, "gemini-2.5-flash", 0))
    with pytest.raises(openai.BadRequestError) as error:
        relay.client().chat.completions.create(model="gem", messages=MESSAGES)
    body = error.value.body
    assert isinstance(body, dict) and body["type"] == "invalid_request_error" and body["message"]


def test_gemini_rejected_fields_are_dropped(relay: Relay, fake: Any) -> None:
    credential = make_credential(
        relay.team, "gem2", fake.base_url + "/gemini/v1beta/openai", provider="gemini"
    )
    make_route(relay.team, "gem2", (credential, "gemini-2.5-flash", 0))
    completion = relay.client().chat.completions.create(
        model="gem2", messages=MESSAGES, extra_body={"web_search_options": {}}
    )
    assert completion.choices[0].message.content
    assert "web_search_options" not in fake.requests()[-1]["body"]
