"""Anthropic Messages behind the OpenAI API, through the relay."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.relay.conftest import Relay, make_credential, make_route
from tests.relay.test_relay_sdk import usage_events

SYSTEM = "You are a careful assistant who answers briefly and precisely always."
# Typed loosely: the SDK's TypedDicts add nothing to these tests.
MESSAGES: Any = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Hello Claude"}]


@pytest.fixture
def claude(relay: Relay, fake: Any) -> Relay:
    credential = make_credential(
        relay.team, "anthropic", fake.base_url + "/anthropic/v1", provider="anthropic"
    )
    make_route(relay.team, "claude", (credential, "claude-sonnet-4-5", 0))
    return relay


def test_non_streaming_with_cache_tokens(claude: Relay, fake: Any, redis_client: Any) -> None:
    completion = claude.client().chat.completions.create(
        model="claude", messages=MESSAGES, max_tokens=64
    )
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    sent = fake.requests()[-1]
    assert sent["path"] == "/anthropic/v1/messages"
    assert sent["body"]["system"] == [{"type": "text", "text": SYSTEM}]
    assert sent["body"]["max_tokens"] == 64
    usage = completion.usage
    assert usage is not None
    details = usage.prompt_tokens_details
    assert details is not None and (details.cached_tokens or 0) > 0
    [event] = usage_events(redis_client, 1)
    assert event.provider == "anthropic"
    assert event.cached_tokens == details.cached_tokens and event.cache_write_tokens == 2
    assert event.prompt_tokens == usage.prompt_tokens


def test_streaming_with_usage(claude: Relay, redis_client: Any) -> None:
    chunks = list(
        claude.client().chat.completions.create(
            model="claude", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    [event] = usage_events(redis_client, 1)
    assert event.streamed and not event.estimated
    assert event.completion_tokens == chunks[-1].usage.completion_tokens


def test_streamed_tool_calls(claude: Relay) -> None:
    tools: Any = [
        {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
    ]
    chunks = list(
        claude.client().chat.completions.create(
            model="claude", messages=MESSAGES, tools=tools, stream=True
        )
    )
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].function is not None and calls[0].function.name == "weather" and calls[0].id
    assert orjson.loads("".join(tc.function.arguments or "" for tc in calls if tc.function))
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["tool_calls"]
