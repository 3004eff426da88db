"""Unit tests for the pure parts: token rule, reply length, directive parsing, routing."""

from __future__ import annotations

import math

import orjson
import pytest

from fake_upstream import faults, reasoning, tools
from fake_upstream.app import resolve
from fake_upstream.tokens import (
    count_tokens,
    embedding,
    prompt_tokens,
    reply_length,
    reply_words,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("hello world", 2),
        ("  a\tb\nc ", 3),
        ("你好", 2),
        ("ok,你好 x", 4),
        ("こんにちは世界", 7),
        ("mixed中文text", 4),
        ("全角，标点", 5),  # noqa: RUF001 - full-width punctuation is the point
    ],
)
def test_count_tokens(text: str, expected: int) -> None:
    assert count_tokens(text) == expected


def test_prompt_tokens_counts_parts_and_overhead() -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "hi there"},
                {"type": "image_url", "image_url": {"url": "x"}},
            ],
        },
    ]
    assert prompt_tokens(messages) == (2 + 3) + (2 + 3)
    assert prompt_tokens([{"role": "user", "content": "a b"}], system="one two three") == 11


def test_reply_words_are_deterministic_and_recount_exactly() -> None:
    words = reply_words("Hello 你好", 9)
    assert words == ("Echo:", "Hello", "你", "好", "lorem", "ipsum", "dolor", "sit", "amet")
    assert count_tokens(" ".join(words)) == 9
    assert reply_words("a b c d", 2) == ("Echo:", "a")


def test_reply_length_rules() -> None:
    assert reply_length(None, None, cap_is_target=True) == (20, False)
    assert reply_length(7, None, cap_is_target=True) == (7, True)
    assert reply_length(10, 5, cap_is_target=True) == (5, False)
    assert reply_length(3, 5, cap_is_target=True) == (3, True)
    assert reply_length(99999, None, cap_is_target=True) == (4096, False)
    assert reply_length(1024, None, cap_is_target=False) == (20, False)  # Anthropic
    assert reply_length(5, None, cap_is_target=False) == (5, True)


def test_embedding_is_unit_length_and_stable() -> None:
    vec = embedding("hello", 16)
    assert len(vec) == 16
    assert math.isclose(sum(v * v for v in vec), 1.0, rel_tol=1e-4)
    assert vec == embedding("hello", 16)
    assert vec != embedding("hello!", 16)


def test_parse_directives() -> None:
    parsed = faults.parse("status=429;retry_after=2.5,latency_ms=10;hang")
    assert parsed.status == 429
    assert parsed.retry_after == 2.5
    assert parsed.latency_ms == 10
    assert parsed.hang is True
    assert faults.split_path("/_f/chunks=3/v1/chat/completions") == (
        faults.Faults(chunks=3),
        "/v1/chat/completions",
    )
    assert faults.split_path("/v1/models") == (faults.NONE, "/v1/models")


@pytest.mark.parametrize("spec", ["nope=1", "status=200", "chunks=x", "tps=-1", "hang=maybe"])
def test_bad_directives_raise(spec: str) -> None:
    with pytest.raises(faults.FaultSyntaxError):
        faults.parse(spec)


@pytest.mark.parametrize(
    ("path", "flavor", "endpoint"),
    [
        ("/v1/chat/completions", "openai", "chat/completions"),
        ("/openai/v1/embeddings", "openai", "embeddings"),
        ("/deepseek/v1/chat/completions", "deepseek", "chat/completions"),
        ("/gemini/v1beta/openai/models", "gemini", "models"),
        ("/siliconflow/v1/models/Qwen/Qwen3-8B", "siliconflow", "models/Qwen/Qwen3-8B"),
        ("/azure/openai/deployments/gpt4/completions", "azure", "completions"),
        ("/azure/openai/v1/chat/completions", "azure", "chat/completions"),
        ("/anthropic/v1/messages", "anthropic", "messages"),
        ("/anthropic/v1/messages/count_tokens", "anthropic", "messages/count_tokens"),
        ("/deepseek/anthropic/v1/messages", "deepseek", "messages"),
        ("/qwen/anthropic/v1/messages", "qwen", "messages"),
        ("/zhipu/anthropic/v1/messages/count_tokens", "zhipu", "messages/count_tokens"),
        ("/moonshot/anthropic/v1/models", "moonshot", "models"),
        ("/minimax/anthropic/v1/messages", "minimax", "messages"),
    ],
)
def test_resolve(path: str, flavor: str, endpoint: str) -> None:
    route = resolve(path)
    assert route is not None
    assert (route.flavor.name, route.endpoint) == (flavor, endpoint)
    # Messages bases get a Messages-dialect flavor: its errors, auth and framing.
    assert (route.flavor.kind == "anthropic") == ("anthropic/v1/" in path)


def test_messages_directives_parse() -> None:
    parsed = faults.parse("strict_reasoning,redacted=1")
    assert (parsed.strict_reasoning, parsed.redacted) == (True, True)
    assert faults.parse("strict_reasoning=no").strict_reasoning is False
    with pytest.raises(faults.FaultSyntaxError):
        faults.parse("strict_reasoning=maybe")


@pytest.mark.parametrize(
    ("schema", "prompt", "expected"),
    [
        ({"type": "object"}, "Hello there", {"q": "Hello"}),
        (
            {"properties": {"command": {"type": "string"}, "n": {"type": "integer"}}},
            "run `echo hi` now",
            {"command": "echo hi"},
        ),
        (
            {
                "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                "required": ["b"],
            },
            "first words",
            {"b": "first"},
        ),
        ({"properties": {"n": {"type": "integer"}}}, "", {"q": ""}),
    ],
)
def test_tool_arguments(schema: dict[str, object], prompt: str, expected: object) -> None:
    assert orjson.loads(tools.arguments(schema, prompt)) == expected


def test_tool_pick_and_answer_after_results() -> None:
    specs = [{"name": "Read"}, {"name": "Bash"}]
    user = [{"role": "user", "content": "please Bash it"}]
    assert tools.pick(specs, None, "please Bash it", user, dialect="messages") == ("Bash", {})
    result = [*user, {"role": "user", "content": [{"type": "tool_result", "content": "ok"}]}]
    assert tools.pick(specs, None, "ok", result, dialect="messages") is None
    forced = {"type": "tool", "name": "Read"}
    assert tools.pick(specs, forced, "ok", result, dialect="messages") == ("Read", {})
    assert tools.pick(specs, {"type": "none"}, "x", user, dialect="messages") is None
    chat_result = [*user, {"role": "tool", "content": "ok"}]
    assert tools.pick(specs, "auto", "ok", chat_result, dialect="chat") is None
    assert tools.pick(specs, "required", "ok", chat_result, dialect="chat") == ("Read", {})


def test_signature_binds_text_account_flavor_and_prefix() -> None:
    system, tool_list = "be brief", [{"name": "t"}]
    earlier = [{"role": "user", "content": "hi"}]
    prefix = reasoning.Prefix(system, tool_list, earlier)
    sig = reasoning.sign("anthropic", "key-a", "I think", prefix)
    ok = reasoning.Verdict.OK, 0
    assert reasoning.verify("anthropic", "key-a", "I think", sig, prefix) == ok
    same = reasoning.Prefix(
        [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        tool_list,
        [{"role": "user", "content": [{"type": "text", "text": "hi", "citations": None}]}],
    )
    assert reasoning.verify("anthropic", "key-a", "I think", sig, same) == ok
    forged = reasoning.Verdict.FORGED
    assert reasoning.verify("anthropic", "key-b", "I think", sig, prefix)[0] is forged
    assert reasoning.verify("deepseek", "key-a", "I think", sig, prefix)[0] is forged
    assert reasoning.verify("anthropic", "key-a", "I think!", sig, prefix)[0] is forged
    assert reasoning.verify("anthropic", "key-a", "I think", "not base64!", prefix)[0] is forged
    assert reasoning.verify("anthropic", "key-a", "I think", None, prefix)[0] is forged
    moved = reasoning.Prefix(system, tool_list, [{"role": "user", "content": "bye"}])
    verdict = reasoning.verify("anthropic", "key-a", "I think", sig, moved)
    assert verdict[0] is reasoning.Verdict.MESSAGES


def test_reasoning_memory_is_bounded() -> None:
    memory = reasoning.ReasoningMemory(size=2)
    for i in range(3):
        memory.remember("acct", f"call_{i}", f"r{i}")
    assert memory.recall("acct", "call_0") is None
    assert memory.recall("acct", "call_2") == "r2"
    assert memory.recall("other", "call_2") is None


def test_resolve_unknown() -> None:
    assert resolve("/nowhere/v1/chat/completions") is None
    assert resolve("/qwen/v2/chat/completions") is None


def test_mounted_under_root_path() -> None:
    """Embedding the fake inside another ASGI app: routing ignores the mount prefix."""
    import asyncio

    import httpx

    from fake_upstream import create_app

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(), root_path="/demo")
        async with httpx.AsyncClient(transport=transport, base_url="http://fake") as client:
            return await client.post(
                "/demo/v1/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                headers={"Authorization": "Bearer k"},
            )

    response = asyncio.run(call())
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"].startswith("Echo: hi")
