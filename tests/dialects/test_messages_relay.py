"""/v1/messages through a running Baton with the official anthropic SDK: a native target
(Anthropic's own Messages) and a translated one (a chat-only provider through the pivot).

Errors are in tests/dialects/test_messages_errors.py, reasoning across turns in
tests/dialects/test_reasoning.py."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

from tests.dialects.conftest import NATIVE_MODEL, TRANSLATED_BASE, TRANSLATED_MODEL, client
from tests.relay.conftest import Relay
from tests.relay.test_relay_sdk import usage_events

BOTH = pytest.mark.parametrize(
    ("alias", "path", "egress", "upstream_model"),
    [
        ("claude-native", "/anthropic/v1/messages", "messages", NATIVE_MODEL),
        ("claude-translated", TRANSLATED_BASE + "/chat/completions", "chat", TRANSLATED_MODEL),
    ],
)
# Typed loosely: the SDK's TypedDicts add nothing to these tests.
WEATHER: Any = [
    {
        "name": "get_weather",
        "description": "The weather in a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
    {
        "name": "get_time",
        "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}},
    },
]
ASK_WEATHER: Any = [{"role": "user", "content": "Please get_weather for `Paris`"}]


@BOTH
def test_create_and_stream(
    messages: Relay,
    fake: Any,
    redis_client: Any,
    alias: str,
    path: str,
    egress: str,
    upstream_model: str,
) -> None:
    sdk = client(messages)
    raw = sdk.messages.with_raw_response.create(
        model=alias, max_tokens=64, messages=[{"role": "user", "content": "Hello there"}]
    )
    reply = raw.parse()
    assert reply.type == "message" and reply.role == "assistant"
    assert reply.content and reply.content[0].type == "text" and reply.content[0].text
    assert reply.stop_reason == "end_turn"
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0
    # The reply names the model asked for; the header, the one that answered.
    assert reply.model == alias
    assert raw.headers["x-baton-model"] == upstream_model
    assert raw.headers["x-request-id"].startswith("req_")
    assert fake.requests()[-1]["path"] == path
    assert fake.requests()[-1]["body"]["model"] == upstream_model

    with sdk.messages.stream(
        model=alias, max_tokens=64, messages=[{"role": "user", "content": "Hello again"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.content[0].type == "text" and final.content[0].text == text
    assert final.model == alias
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0
    events = usage_events(redis_client, 2)
    assert [(e.dialect, e.egress) for e in events] == [("messages", egress)] * 2
    assert events[0].request_id == raw.headers["x-request-id"]
    assert events[1].streamed and not events[1].estimated
    assert [e.completion_tokens for e in events] == [
        reply.usage.output_tokens,
        final.usage.output_tokens,
    ]


@BOTH
def test_tool_use_create_and_stream(
    messages: Relay,
    fake: Any,
    redis_client: Any,
    alias: str,
    path: str,
    egress: str,
    upstream_model: str,
) -> None:
    """The fake calls the tool the prompt names, with the quoted argument; the tool's result
    goes back and the answer is text. Streamed, the call arrives as input_json_delta."""
    sdk = client(messages)
    called = sdk.messages.create(model=alias, max_tokens=256, tools=WEATHER, messages=ASK_WEATHER)
    assert called.stop_reason == "tool_use"
    [tool_use] = [b for b in called.content if b.type == "tool_use"]
    assert tool_use.type == "tool_use"
    assert (tool_use.name, tool_use.input) == ("get_weather", {"city": "Paris"})
    assert tool_use.id

    with sdk.messages.stream(
        model=alias, max_tokens=256, tools=WEATHER, messages=ASK_WEATHER
    ) as stream:
        kinds = [event.type for event in stream]
        streamed = stream.get_final_message()
    assert "input_json" in kinds  # the SDK's event for input_json_delta
    assert streamed.stop_reason == "tool_use"
    [streamed_use] = [b for b in streamed.content if b.type == "tool_use"]
    assert streamed_use.type == "tool_use"
    assert (streamed_use.name, streamed_use.input) == ("get_weather", {"city": "Paris"})

    history: Any = [
        *ASK_WEATHER,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in called.content]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": tool_use.id, "content": "Sunny, 21 C"}
            ],
        },
    ]
    done = sdk.messages.create(model=alias, max_tokens=256, tools=WEATHER, messages=history)
    assert done.stop_reason == "end_turn"
    assert done.content[-1].type == "text" and done.content[-1].text
    sent = fake.requests()[-1]["body"]
    if egress == "messages":  # passed through as the client wrote it
        assert sent["messages"][1:] == history[1:]
    else:  # through the pivot: a tool call and its tool message
        assert sent["messages"][-2]["tool_calls"][0]["id"] == tool_use.id
        assert sent["messages"][-1] == {
            "role": "tool",
            "tool_call_id": tool_use.id,
            "content": "Sunny, 21 C",
        }
    events = usage_events(redis_client, 3)
    assert [(e.dialect, e.egress, e.status) for e in events] == [("messages", egress, 200)] * 3


# Fields Baton does not read, in the shapes Claude Code sends them.
UNKNOWN_FIELDS: Any = {
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "output_config": {"effort": "high"},
    "metadata": {"user_id": "user_0a1b2c"},
    "cache_control": {"type": "ephemeral"},
    "thinking": {"type": "adaptive"},
    "some_future_field": {"nested": [1, "two", None]},
}


def test_unknown_fields_and_headers_pass_through_to_a_native_target(
    messages: Relay, fake: Any
) -> None:
    sdk = client(messages)
    system: Any = [
        {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}
    ]
    beta = "context-management-2025-06-27,some-future-beta-2026-01-01"
    raw = sdk.messages.with_raw_response.create(
        model="claude-native",
        max_tokens=2048,
        system=system,
        messages=[{"role": "user", "content": "Hello there"}],
        extra_body=UNKNOWN_FIELDS,
        extra_headers={"anthropic-beta": beta},
        extra_query={"beta": "true"},
    )
    assert raw.parse().content[-1].type == "text"
    version = raw.http_request.headers["anthropic-version"]  # the SDK's own
    record = fake.requests()[-1]
    sent = dict(record["body"])
    assert sent.pop("model") == NATIVE_MODEL
    assert sent == {
        "max_tokens": 2048,
        "system": system,
        "messages": [{"role": "user", "content": "Hello there"}],
        **UNKNOWN_FIELDS,
    }
    assert (record["anthropic_version"], record["anthropic_beta"]) == (version, beta)


def test_unknown_fields_do_not_break_a_translated_target(messages: Relay, fake: Any) -> None:
    reply = client(messages).messages.create(
        model="claude-translated",
        max_tokens=64,
        messages=[{"role": "user", "content": "Hello there"}],
        extra_body=UNKNOWN_FIELDS,
        extra_headers={"anthropic-beta": "context-management-2025-06-27"},
    )
    assert reply.content[-1].type == "text"
    record = fake.requests()[-1]
    assert record["path"] == TRANSLATED_BASE + "/chat/completions"
    assert (record["anthropic_version"], record["anthropic_beta"]) == (None, None)
    sent = record["body"]
    assert not {"context_management", "cache_control", "some_future_field"} & set(sent)
    assert sent["user"] == "user_0a1b2c"  # metadata.user_id is chat's user


SYSTEM_INSIDE: Any = [
    {"role": "user", "content": "Hello there"},
    {"role": "assistant", "content": "Hello"},
    {"role": "system", "content": "From now on answer in French."},
    {"role": "user", "content": "How are you"},
]


def test_a_system_entry_inside_messages(messages: Relay, fake: Any) -> None:
    """Native: passed as it is, for the provider to judge (Anthropic takes it with its beta
    and refuses it without). Translated: a chat system message in its place."""
    sdk = client(messages)
    beta = "mid-conversation-system-2026-04-07"
    reply = sdk.messages.create(
        model="claude-native",
        max_tokens=64,
        messages=SYSTEM_INSIDE,
        extra_headers={"anthropic-beta": beta},
    )
    assert reply.content[-1].type == "text"
    assert fake.requests()[-1]["body"]["messages"] == SYSTEM_INSIDE
    with pytest.raises(anthropic.BadRequestError) as refused:
        sdk.messages.create(model="claude-native", max_tokens=64, messages=SYSTEM_INSIDE)
    assert "messages.2.role" in refused.value.message  # Anthropic's own words, passed on

    translated = sdk.messages.create(
        model="claude-translated", max_tokens=64, messages=SYSTEM_INSIDE
    )
    assert translated.content[-1].type == "text"
    sent = fake.requests()[-1]["body"]["messages"]
    assert sent == [
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": "Hello"},
        {"role": "system", "content": "From now on answer in French."},
        {"role": "user", "content": "How are you"},
    ]


def test_count_tokens_native_and_estimated(messages: Relay, fake: Any, redis_client: Any) -> None:
    sdk = client(messages)
    raw_native = sdk.messages.with_raw_response.count_tokens(
        model="claude-native",
        messages=[{"role": "user", "content": "Count me please"}],
        extra_headers={"anthropic-beta": "token-counting-2024-11-01"},
    )
    native = raw_native.parse()
    assert native.input_tokens > 0
    assert "x-baton-estimated" not in raw_native.headers
    record = fake.requests()[-1]
    assert record["path"] == "/anthropic/v1/messages/count_tokens"
    assert record["body"]["model"] == NATIVE_MODEL
    assert (record["anthropic_version"], record["anthropic_beta"]) == (
        raw_native.http_request.headers["anthropic-version"],
        "token-counting-2024-11-01",
    )
    before = len(fake.requests())
    raw = sdk.messages.with_raw_response.count_tokens(
        model="claude-translated", messages=[{"role": "user", "content": "Count me please"}]
    )
    assert raw.parse().input_tokens > 0
    assert raw.headers["x-baton-estimated"] == "true"
    assert len(fake.requests()) == before  # counted by Baton, no upstream call
    # Counted as requests (rate limits), never billed as completions.
    events = usage_events(redis_client, 2)
    assert [(e.endpoint, e.dialect, e.status) for e in events] == [
        ("count_tokens", "messages", 200)
    ] * 2
    assert all(e.prompt_tokens == e.completion_tokens == 0 for e in events)


def test_models_in_anthropic_shape_and_head_warm_up(messages: Relay) -> None:
    sdk = client(messages)
    listed = sdk.models.list()
    ids = [m.id for m in listed.data]
    assert {"claude-native", "claude-translated", "gpt-4o"} <= set(ids)
    assert all(m.type == "model" and m.display_name for m in listed.data)
    assert (listed.first_id, listed.last_id, listed.has_more) == (ids[0], ids[-1], False)
    one = sdk.models.retrieve("claude-native")
    assert (one.type, one.id) == ("model", "claude-native")
    with pytest.raises(anthropic.NotFoundError) as missing:
        sdk.models.retrieve("no-such-model")
    assert missing.value.body["type"] == "error"  # type: ignore[index]

    # Without anthropic-version: OpenAI's list shape, for OpenAI clients on the same key.
    openai_shape = httpx.get(
        messages.base_url + "/v1/models", headers={"authorization": f"Bearer {messages.key}"}
    ).json()
    assert openai_shape["object"] == "list"
    assert {m["object"] for m in openai_shape["data"]} == {"model"}

    # Claude Code's warm-up: no key, no body, a quick 200.
    warm = httpx.head(messages.base_url + "/")
    assert (warm.status_code, warm.content) == (200, b"")
