"""/v1/messages through a running Baton with the official anthropic SDK: a native target
(Anthropic's own Messages) and a translated one (a chat-only provider through the pivot)."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

from tests.relay.conftest import Relay, make_credential, make_route
from tests.relay.test_relay_sdk import usage_events


@pytest.fixture
def messages(relay: Relay, fake: Any) -> Relay:
    native = make_credential(
        relay.team, "anthropic", fake.base_url + "/anthropic/v1", provider="anthropic"
    )
    chat_only = make_credential(relay.team, "chat-only", fake.base_url + "/v1")
    make_route(relay.team, "claude-native", (native, "claude-sonnet-4-5", 0))
    make_route(relay.team, "claude-translated", (chat_only, "gpt-4o", 0))
    return relay


def client(relay: Relay, api_key: str | None = None) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=relay.base_url, api_key=api_key or relay.key, max_retries=0)


@pytest.mark.parametrize(
    ("alias", "path", "egress"),
    [
        ("claude-native", "/anthropic/v1/messages", "messages"),
        ("claude-translated", "/v1/chat/completions", "chat"),
    ],
)
def test_create_and_stream(
    messages: Relay, fake: Any, redis_client: Any, alias: str, path: str, egress: str
) -> None:
    sdk = client(messages)
    reply = sdk.messages.create(
        model=alias, max_tokens=64, messages=[{"role": "user", "content": "Hello there"}]
    )
    assert reply.type == "message" and reply.role == "assistant"
    assert reply.content and reply.content[0].type == "text" and reply.content[0].text
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0
    assert fake.requests()[-1]["path"] == path

    with sdk.messages.stream(
        model=alias, max_tokens=64, messages=[{"role": "user", "content": "Hello again"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.content[0].type == "text" and final.content[0].text == text
    assert final.usage.output_tokens > 0
    events = usage_events(redis_client, 2)
    assert [(e.dialect, e.egress) for e in events] == [("messages", egress)] * 2
    assert events[1].streamed and not events[1].estimated


def test_errors_are_anthropic_shaped(messages: Relay) -> None:
    with pytest.raises(anthropic.AuthenticationError) as denied:
        client(messages, api_key="sk-baton-wrong").messages.create(
            model="claude-native", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert denied.value.status_code == 401
    assert denied.value.body["type"] == "error"  # type: ignore[index]
    assert denied.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError):
        client(messages).messages.create(
            model="no-such-model", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    missing = httpx.post(
        messages.base_url + "/v1/messages?beta=true",
        headers={"x-api-key": messages.key},
        json={"model": "claude-native", "messages": [{"role": "user", "content": "x"}]},
    )
    assert missing.status_code == 400
    assert missing.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
    }


def test_count_tokens_native_and_estimated(messages: Relay, fake: Any) -> None:
    sdk = client(messages)
    native = sdk.messages.count_tokens(
        model="claude-native", messages=[{"role": "user", "content": "Count me please"}]
    )
    assert native.input_tokens > 0
    assert fake.requests()[-1]["path"] == "/anthropic/v1/messages/count_tokens"
    before = len(fake.requests())
    raw = sdk.messages.with_raw_response.count_tokens(
        model="claude-translated", messages=[{"role": "user", "content": "Count me please"}]
    )
    assert raw.parse().input_tokens > 0
    assert raw.headers["x-baton-estimated"] == "true"
    assert len(fake.requests()) == before  # counted by Baton, no upstream call


def test_models_in_anthropic_shape_and_head_warm_up(messages: Relay) -> None:
    listed = client(messages).models.list()
    ids = [m.id for m in listed.data]
    assert "claude-native" in ids and all(m.type == "model" for m in listed.data)
    assert httpx.head(messages.base_url + "/").status_code == 200
