"""Native Anthropic Messages on every flavor that serves it, driven by the official SDK."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam, ToolParam

from tests.fake_upstream.conftest import KEY, Fake, ServerThread, sse_events

# (base as the SDK's base_url wants it, a model the provider serves)
BASES = {
    "anthropic": ("/anthropic", "claude-sonnet-5-5"),
    "deepseek": ("/deepseek/anthropic", "deepseek-v4-flash"),
    "qwen": ("/qwen/anthropic", "qwen3-max"),
    "zhipu": ("/zhipu/anthropic", "glm-4.6"),
    "moonshot": ("/moonshot/anthropic", "kimi-k2.6"),
    "minimax": ("/minimax/anthropic", "MiniMax-M2"),
}
HELLO: list[MessageParam] = [{"role": "user", "content": "Hello there"}]
BETA_HELLO: Any = HELLO  # the beta endpoints type their params separately
TOOLS: list[ToolParam] = [
    {
        "name": "Bash",
        "description": "Run a shell command",
        "input_schema": {
            "type": "object",
            "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}},
            "required": ["command"],
        },
    }
]


def client(server: ServerThread, base: str, key: str = KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.base_url + base, api_key=key, max_retries=0)


@pytest.mark.parametrize("flavor", sorted(BASES))
def test_create_and_stream_on_every_flavor(
    fake_server: ServerThread, fake: Fake, flavor: str
) -> None:
    base, model = BASES[flavor]
    sdk = client(fake_server, base)
    # Thinking off, so every flavor answers with text alone (some think by default).
    off: Any = {"type": "disabled"}
    message = sdk.messages.create(model=model, max_tokens=64, messages=HELLO, thinking=off)
    assert message.model == model
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].type == "text"
    assert message.content[0].text.startswith("Echo: Hello there lorem")
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (5, 20)
    with sdk.messages.stream(model=model, max_tokens=3, messages=HELLO, thinking=off) as stream:
        assert "".join(stream.text_stream) == "Echo: Hello there"
        final = stream.get_final_message()
    assert final.stop_reason == "max_tokens"
    assert final.usage.output_tokens == 3
    records = fake.requests()
    assert [r["path"] for r in records] == [f"{base}/v1/messages"] * 2
    assert {r["flavor"] for r in records} == {flavor}
    assert {r["key_last4"] for r in records} == {KEY[-4:]}


@pytest.mark.parametrize("flavor", sorted(BASES))
def test_tool_loop_ends_with_text(fake_server: ServerThread, flavor: str) -> None:
    base, model = BASES[flavor]
    sdk = client(fake_server, base)
    prompt: list[MessageParam] = [{"role": "user", "content": "Use Bash to run `echo hi`"}]
    with sdk.messages.stream(model=model, max_tokens=2048, messages=prompt, tools=TOOLS) as s:
        first = s.get_final_message()
    assert first.stop_reason == "tool_use"
    call = first.content[-1]
    assert call.type == "tool_use"
    assert (call.name, call.input) == ("Bash", {"command": "echo hi"})
    history: list[MessageParam] = [
        *prompt,
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "hi"}],
        },
    ]
    second = sdk.messages.create(model=model, max_tokens=2048, messages=history, tools=TOOLS)
    assert second.stop_reason == "end_turn"
    assert second.content[-1].type == "text"
    assert second.content[-1].text.startswith("Echo: hi")


def test_deepseek_maps_claude_names_and_refuses_others(fake_server: ServerThread) -> None:
    sdk = client(fake_server, "/deepseek/anthropic")
    off: Any = {"type": "disabled"}
    opus = sdk.messages.create(model="claude-opus-5-5", max_tokens=8, messages=HELLO, thinking=off)
    assert opus.model == "deepseek-v4-pro"
    haiku = sdk.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=HELLO)
    assert haiku.model == "deepseek-v4-flash"
    assert haiku.content[0].type == "thinking"  # V4 thinks unless told not to
    with pytest.raises(anthropic.BadRequestError) as refused:
        sdk.messages.create(model="gpt-4o", max_tokens=8, messages=HELLO)
    # DeepSeek's /anthropic answers errors in its OpenAI shape.
    assert refused.value.body == {
        "error": {
            "message": "Model Not Exist",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_request_error",
        }
    }


def test_count_tokens_where_the_provider_has_it(fake_server: ServerThread, fake: Fake) -> None:
    sdk = client(fake_server, "/anthropic")
    system = "You are a careful assistant who answers briefly"  # 8 tokens + 3
    counted = sdk.messages.count_tokens(model="claude-haiku-5-5", messages=HELLO, system=system)
    assert counted.input_tokens == 16
    created = sdk.messages.create(
        model="claude-haiku-5-5", max_tokens=4, messages=HELLO, system=system
    )
    usage = created.usage
    assert counted.input_tokens == (
        usage.input_tokens
        + (usage.cache_read_input_tokens or 0)
        + (usage.cache_creation_input_tokens or 0)
    )
    # As Claude Code sends it: the beta header and ?beta=true.
    beta = sdk.beta.messages.count_tokens(
        model="claude-haiku-5-5",
        messages=BETA_HELLO,
        betas=["token-counting-2024-11-01"],
        extra_query={"beta": "true"},
    )
    assert beta.input_tokens == 5
    assert fake.requests()[-1]["query"] == "beta=true"
    for flavor in ("deepseek", "qwen", "zhipu", "moonshot", "minimax"):
        base, model = BASES[flavor]
        with pytest.raises(anthropic.NotFoundError):
            client(fake_server, base).messages.count_tokens(model=model, messages=HELLO)


def test_models_listing_only_at_anthropic(fake_server: ServerThread) -> None:
    ids = [m.id for m in client(fake_server, "/anthropic").models.list()]
    assert {"claude-sonnet-5-5", "claude-opus-5-5", "claude-haiku-5-5", "claude-fable-5-1"} <= set(
        ids
    )
    assert "claude-sonnet-4-5" in ids
    assert client(fake_server, "/anthropic").models.retrieve("claude-opus-5-5").id == (
        "claude-opus-5-5"
    )
    with pytest.raises(anthropic.NotFoundError):
        client(fake_server, "/deepseek/anthropic").models.list()


# Each provider's answer to a bad key on its Messages endpoint.
AUTH_FAILURES: dict[str, Any] = {
    "anthropic": {"type": "error", "error": {"type": "authentication_error"}},
    "deepseek": {"error": {"type": "authentication_error"}},
    "qwen": {"type": "error", "error": {"type": "authentication_error"}},
    "zhipu": {"type": "error", "error": {"code": "1000"}},
    "moonshot": {"type": "error", "error": {"message": "Invalid Authentication"}},
    "minimax": {"type": "error", "error": {"http_code": "401"}},
}


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _contains(actual[k], v) for k, v in expected.items()
        )
    return bool(actual == expected)


@pytest.mark.parametrize("flavor", sorted(BASES))
def test_errors_through_the_sdk_classes(fake_server: ServerThread, flavor: str) -> None:
    base, model = BASES[flavor]
    with pytest.raises(anthropic.AuthenticationError) as denied:
        client(fake_server, base, key="bad-key").messages.create(
            model=model, max_tokens=8, messages=HELLO
        )
    assert _contains(denied.value.body, AUTH_FAILURES[flavor]), denied.value.body
    with pytest.raises(anthropic.RateLimitError):
        client(fake_server, f"/_f/status=429{base}").messages.create(
            model=model, max_tokens=8, messages=HELLO
        )
    with pytest.raises(anthropic.InternalServerError):
        client(fake_server, f"/_f/status=529{base}").messages.create(
            model=model, max_tokens=8, messages=HELLO
        )
    with pytest.raises(anthropic.BadRequestError):
        client(fake_server, base).messages.create(model=model, max_tokens=0, messages=HELLO)
    sdk = client(fake_server, f"/_f/error_after=4{base}")
    with (
        pytest.raises(anthropic.APIStatusError) as broken,
        sdk.messages.stream(model=model, max_tokens=8, messages=HELLO) as stream,
    ):
        for _ in stream:
            pass
    assert "error" in str(broken.value.body)


def test_error_event_mid_stream_is_anthropic_framed(fake: Fake) -> None:
    response = fake.http.post(
        "/_f/error_after=3/zhipu/anthropic/v1/messages",
        json={"model": "glm-4.6", "max_tokens": 9, "stream": True, "messages": HELLO},
        headers={"x-api-key": KEY},
    )
    events = sse_events(response.text)
    assert [name for name, _ in events] == [
        "message_start",
        "ping",
        "content_block_start",
        "error",
    ]
    error = events[-1][1]
    assert (error["type"], error["error"]["type"], error["error"]["code"]) == (
        "error",
        "api_error",
        "500",
    )


def test_keys_headers_query_and_unknown_fields(fake_server: ServerThread, fake: Fake) -> None:
    bearer = anthropic.Anthropic(
        base_url=fake_server.base_url + "/anthropic", auth_token=KEY, max_retries=0
    )
    extra: Any = {
        "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
        "output_config": {"effort": "high"},
        "cache_control": {"type": "ephemeral"},
    }
    bearer.beta.messages.create(
        model="claude-sonnet-5-5",
        max_tokens=8,
        messages=BETA_HELLO,
        metadata={"user_id": '{"device": "x"}'},
        betas=["claude-code-20250219", "interleaved-thinking-2025-05-14"],
        extra_body=extra,
        extra_query={"beta": "true"},
        extra_headers={"anthropic-version": "2023-06-01"},  # Claude Code's
    )
    [record] = fake.requests()
    assert record["key_last4"] == KEY[-4:]
    assert record["query"] == "beta=true"
    assert record["anthropic_version"] == "2023-06-01"
    assert record["anthropic_beta"] == "claude-code-20250219,interleaved-thinking-2025-05-14"
    assert record["body"]["context_management"] == extra["context_management"]
    missing = fake.http.post(
        "/anthropic/v1/messages",
        json={"model": "m", "max_tokens": 8, "messages": HELLO},
        headers={"x-api-key": KEY},
    )
    assert missing.status_code == 400 and "anthropic-version" in missing.text
    assert fake.requests()[-1]["anthropic_version"] is None
    # DeepSeek ignores anthropic-version (its compatibility table says so).
    plain = fake.http.post(
        "/deepseek/anthropic/v1/messages",
        json={"model": "deepseek-chat", "max_tokens": 8, "messages": HELLO},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert plain.status_code == 200, plain.text


MID_SYSTEM: list[Any] = [
    {"role": "user", "content": "Hello there"},
    {"role": "assistant", "content": "Hi"},
    {"role": "system", "content": "Answer in French from now on"},
    {"role": "user", "content": "Again"},
]


def test_system_entry_inside_messages(fake_server: ServerThread) -> None:
    sdk = client(fake_server, "/anthropic")
    with pytest.raises(anthropic.BadRequestError) as refused:
        sdk.messages.create(model="claude-opus-5-5", max_tokens=8, messages=MID_SYSTEM)
    assert "messages.2.role" in str(refused.value.body)
    accepted = sdk.beta.messages.create(
        model="claude-opus-5-5",
        max_tokens=8,
        messages=MID_SYSTEM,
        betas=["mid-conversation-system-2026-04-07"],
    )
    assert accepted.content[0].type == "text"
    for flavor in ("deepseek", "qwen", "zhipu", "moonshot"):
        base, model = BASES[flavor]
        off: Any = {"type": "disabled"}
        done = client(fake_server, base).messages.create(
            model=model, max_tokens=8, messages=MID_SYSTEM, thinking=off
        )
        assert done.content[-1].type == "text", flavor
    with pytest.raises(anthropic.BadRequestError) as minimax:
        client(fake_server, "/minimax/anthropic").messages.create(
            model="MiniMax-M2", max_tokens=8, messages=MID_SYSTEM
        )
    assert minimax.value.body == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "invalid params, chat content has invalid message role: system (2013)",
            "http_code": "400",
        },
        "request_id": minimax.value.body["request_id"],  # type: ignore[index]
    }


def _cached(system: list[Any], user: list[Any]) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-5-5",
        "max_tokens": 4,
        "system": system,
        "messages": [{"role": "user", "content": user}],
    }


def test_prompt_cache_writes_then_reads_with_the_ttl_split(fake_server: ServerThread) -> None:
    sdk = client(fake_server, "/anthropic", key="sk-cache-owner")
    long_system = [
        {
            "type": "text",
            "text": "one two three four five six seven",  # 7 + 3 = 10
            "cache_control": {"type": "ephemeral", "ttl": "1h"},
        },
        {"type": "text", "text": "eight nine ten", "cache_control": {"type": "ephemeral"}},
    ]
    user = [{"type": "text", "text": "first question", "cache_control": {"type": "ephemeral"}}]
    first = sdk.messages.create(**_cached(long_system, user)).usage
    assert (first.cache_read_input_tokens, first.cache_creation_input_tokens) == (0, 18)
    assert first.cache_creation is not None
    assert first.cache_creation.ephemeral_1h_input_tokens == 10
    assert first.cache_creation.ephemeral_5m_input_tokens == 8  # 3 + (2 + 3)
    assert first.input_tokens == 0
    again = sdk.messages.create(**_cached(long_system, user)).usage
    assert (again.cache_read_input_tokens, again.cache_creation_input_tokens) == (18, 0)
    other = [
        {"type": "text", "text": "second question here", "cache_control": {"type": "ephemeral"}}
    ]
    follow = sdk.messages.create(**_cached(long_system, other)).usage
    assert (follow.cache_read_input_tokens, follow.cache_creation_input_tokens) == (13, 6)
    # The cache belongs to the account: another key starts cold.
    stranger = client(fake_server, "/anthropic", key="sk-someone-else")
    cold = stranger.messages.create(**_cached(long_system, user)).usage
    assert (cold.cache_read_input_tokens, cold.cache_creation_input_tokens) == (0, 18)


def test_too_many_cache_breakpoints(fake_server: ServerThread) -> None:
    mark: Any = {"type": "ephemeral"}
    blocks = [{"type": "text", "text": f"part {i}", "cache_control": mark} for i in range(5)]
    with pytest.raises(anthropic.BadRequestError) as refused:
        client(fake_server, "/anthropic").messages.create(**_cached(blocks, ["x"]))
    assert "A maximum of 4 blocks with cache_control may be provided. Found 5." in str(
        refused.value.body
    )


def test_wrong_method_and_unknown_endpoint(fake: Fake) -> None:
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    assert fake.http.get("/anthropic/v1/messages", headers=headers).status_code == 405
    assert fake.http.post("/qwen/anthropic/v1/nothing", headers=headers).status_code == 404
    assert fake.http.post("/openai/anthropic/v1/messages", headers=headers).status_code == 404
    bad_json = fake.http.post("/moonshot/anthropic/v1/messages", content=b"{nope", headers=headers)
    assert bad_json.status_code == 400
    assert bad_json.json()["type"] == "error"


def test_sdk_sees_the_raw_stream_order(fake: Fake) -> None:
    response = httpx.post(
        f"{fake.base_url}/anthropic/v1/messages?beta=true",
        json={
            "model": "claude-sonnet-5-5",
            "max_tokens": 4096,
            "stream": True,
            "thinking": {"type": "adaptive"},
            "messages": HELLO,
        },
        headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"},
    )
    events = sse_events(response.text)
    names = [
        (n, d.get("delta", {}).get("type") or d.get("content_block", {}).get("type"))
        for n, d in events
    ]
    thinking_deltas = [n for n in names if n == ("content_block_delta", "thinking_delta")]
    assert names[:3] == [
        ("message_start", None),
        ("ping", None),
        ("content_block_start", "thinking"),
    ]
    assert len(thinking_deltas) >= 5
    after = names[3 + len(thinking_deltas) :]
    assert after[:4] == [
        ("content_block_delta", "signature_delta"),
        ("content_block_stop", None),
        ("content_block_start", "text"),
        ("content_block_delta", "text_delta"),
    ]
    assert names[-2:] == [("message_delta", None), ("message_stop", None)]
    assert [d["index"] for n, d in events if n == "content_block_start"] == [0, 1]
    usage = events[-2][1]["usage"]
    text = "".join(
        d["delta"]["text"] for n, d in events if d.get("delta", {}).get("type") == "text_delta"
    )
    thought = "".join(
        d["delta"]["thinking"]
        for n, d in events
        if d.get("delta", {}).get("type") == "thinking_delta"
    )
    assert usage["output_tokens"] == len(text.split()) + len(thought.split())
