"""The Anthropic Messages API flavor: validation, usage with cache fields, events."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fake_upstream.conftest import ANTHROPIC_AUTH, KEY, Fake, sse_events

URL = "/anthropic/v1/messages"
SYSTEM = "You are a careful assistant who answers briefly"  # 8 tokens: counts as cached


def message(**extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Hello there"}],
        **extra,
    }


def test_non_stream_shape_and_usage(fake: Fake) -> None:
    response = fake.http.post(URL, json=message(), headers=ANTHROPIC_AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "message"
    assert body["role"] == "assistant"
    assert body["id"].startswith("msg_")
    assert body["content"][0]["type"] == "text"
    assert body["content"][0]["text"].startswith("Echo: Hello there lorem")
    assert body["stop_reason"] == "end_turn"  # max_tokens is only a cap here
    assert body["stop_sequence"] is None
    assert body["usage"] == {
        "input_tokens": 5,
        "output_tokens": 20,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
    }
    assert fake.requests()[0]["key_last4"] == KEY[-4:]


def test_system_prompt_is_cached_and_excluded_from_input(fake: Fake) -> None:
    body = fake.http.post(
        URL, json=message(system=[{"type": "text", "text": SYSTEM}]), headers=ANTHROPIC_AUTH
    ).json()
    # prompt = (8 + 3) system + (2 + 3) user = 16; read 8 and write 2 are not "input".
    assert body["usage"]["cache_read_input_tokens"] == 8
    assert body["usage"]["cache_creation_input_tokens"] == 2
    assert body["usage"]["input_tokens"] == 6


def test_stream_events(fake: Fake) -> None:
    response = fake.http.post(
        URL, json=message(stream=True, max_tokens=3, system=SYSTEM), headers=ANTHROPIC_AUTH
    )
    assert response.headers["content-type"] == "text/event-stream"
    assert "[DONE]" not in response.text
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    start = events[0][1]["message"]["usage"]
    assert start == {
        "input_tokens": 6,
        "cache_creation_input_tokens": 2,
        "cache_read_input_tokens": 8,
        "cache_creation": {"ephemeral_5m_input_tokens": 2, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 1,
    }
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert text == "Echo: Hello there"
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == "max_tokens"
    assert delta["usage"]["output_tokens"] == 3  # cumulative, not per event


def test_tool_use(fake: Fake) -> None:
    tools = [{"name": "lookup", "description": "d", "input_schema": {"type": "object"}}]
    body = fake.http.post(URL, json=message(tools=tools), headers=ANTHROPIC_AUTH).json()
    assert body["stop_reason"] == "tool_use"
    [block] = body["content"]
    assert block["type"] == "tool_use"
    assert block["id"].startswith("toolu_")
    assert (block["name"], block["input"]) == ("lookup", {"q": "Hello"})
    response = fake.http.post(URL, json=message(tools=tools, stream=True), headers=ANTHROPIC_AUTH)
    events = sse_events(response.text)
    start = next(d for n, d in events if n == "content_block_start")
    assert start["content_block"]["type"] == "tool_use"
    assert start["content_block"]["name"] == "lookup"
    parts = [d["delta"] for n, d in events if n == "content_block_delta"]
    assert all(p["type"] == "input_json_delta" for p in parts)
    assert len([p for p in parts if p["partial_json"]]) >= 3
    assert "".join(p["partial_json"] for p in parts) == '{"q":"Hello"}'
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    none = fake.http.post(
        URL, json=message(tools=tools, tool_choice={"type": "none"}), headers=ANTHROPIC_AUTH
    ).json()
    assert none["content"][0]["type"] == "text"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (message(max_tokens=None), "max_tokens"),
        ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, "model"),
        (message(messages=[{"role": "system", "content": "x"}]), "system"),
        (message(messages=[]), "messages"),
    ],
)
def test_validation_errors(fake: Fake, body: dict[str, Any], fragment: str) -> None:
    body = {k: v for k, v in body.items() if v is not None}
    response = fake.http.post(URL, json=body, headers=ANTHROPIC_AUTH)
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert fragment in error["error"]["message"]


def test_auth(fake: Fake) -> None:
    missing = fake.http.post(URL, json=message(), headers={"anthropic-version": "2023-06-01"})
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "authentication_error"
    bad = fake.http.post(
        URL, json=message(), headers={**ANTHROPIC_AUTH, "x-api-key": "bad-anthropic"}
    )
    assert bad.status_code == 401
    assert bad.json()["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
    no_version = fake.http.post(URL, json=message(), headers={"x-api-key": KEY})
    assert no_version.status_code == 400
    assert "anthropic-version" in no_version.json()["error"]["message"]


def test_models(fake: Fake) -> None:
    listing = fake.http.get("/anthropic/v1/models", headers=ANTHROPIC_AUTH).json()
    assert listing["has_more"] is False
    assert {"type", "id", "display_name", "created_at"} <= set(listing["data"][0])
