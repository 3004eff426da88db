"""Claude Code, unmodified and headless, through a running Baton to the fake upstream.

The real ``claude -p`` (tests/agents/cli.py) is pointed at Baton's root with a Baton key as
``ANTHROPIC_AUTH_TOKEN`` (or ``ANTHROPIC_API_KEY``); the model names it sends (``ANTHROPIC_MODEL`` and the small/fast
model) are team aliases, as the relocation helper sets them up. Each target is one way a
Messages request can leave Baton:

- native: Anthropic's own Messages (the fake's ``anthropic`` flavor) and a Chinese provider's
  Anthropic-compatible endpoint (DeepSeek ``/anthropic``): the body passes through, with
  ``anthropic-version`` and ``anthropic-beta`` forwarded (DeepSeek's betas filtered);
- translated: a chat-only credential (provider ``openai`` in front of the fake's DeepSeek chat
  flavor, which thinks and answers with ``reasoning_content``), through the chat pivot;
- strict: the same with the fake's ``strict_reasoning`` directive, which refuses a tool-use
  turn whose reasoning (signed thinking, or ``reasoning_content``) was lost or altered.

The fake's chat flavors take ``max_tokens`` as the reply length and Claude Code sends 32000, so
the chat credentials carry the ``chunks=20`` directive (a natural 20-token answer).

A plain prompt and a tool-using task (``Use Bash to run `echo ...```, allowed by
``--allowedTools "Bash(echo *)"``: the fake calls Bash with the quoted command, Claude Code
runs it and sends its output back, the fake answers in text) must end in success with the
command's output in the tool result; the fake's history shows what went upstream, and the
usage events that every request was billed once, dialect ``messages``, the right egress,
with the token classes Claude Code was told.

The aliases point at other models (``deepseek-v4-pro``, ``claude-sonnet-5-5``) on purpose:
Claude Code drops the thinking of every earlier reply whose ``model`` is not the one it asks
for, so unless Baton's replies name the alias, strict targets refuse the tool loop.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fake_upstream.tokens import DEFAULT_REPLY_TOKENS, last_user_text, reply_words
from tests.agents.cli import run_claude
from tests.relay.conftest import Relay, make_credential, make_route
from tests.relay.test_relay_sdk import usage_events

pytestmark = pytest.mark.agents

MODEL = "claude-sonnet-4-5"  # ANTHROPIC_MODEL: what Claude Code names in its main requests
SMALL_MODEL = "claude-haiku-4-5"  # ANTHROPIC_SMALL_FAST_MODEL
ANTHROPIC_VERSION = "2023-06-01"  # what Claude Code sends
CHAT_REPLY_TOKENS = 20  # the chunks directive of the chat targets


@dataclass(frozen=True)
class Way:
    """One target: where the credential points, as which provider, and what Baton must send."""

    base: str  # under the fake's root
    provider: str
    upstream_model: str
    egress: str  # the dialect Baton speaks upstream
    path: str  # the upstream path every request must reach
    dialects: dict[str, str] = field(default_factory=dict)  # extras["dialects"], under the fake


WAYS = {
    "anthropic": Way("/anthropic/v1", "anthropic", MODEL, "messages", "/anthropic/v1/messages"),
    "deepseek-anthropic": Way(
        "/deepseek/v1",
        "deepseek",
        "deepseek-v4-pro",
        "messages",
        "/deepseek/anthropic/v1/messages",
        {"messages": "/deepseek/anthropic/v1"},
    ),
    "translated": Way(
        f"/_f/chunks={CHAT_REPLY_TOKENS}/deepseek/v1",
        "openai",  # chat only: no Messages endpoint, so through the pivot
        "deepseek-v4-pro",
        "chat",
        f"/_f/chunks={CHAT_REPLY_TOKENS}/deepseek/v1/chat/completions",
    ),
    "strict-anthropic": Way(
        "/_f/strict_reasoning/anthropic/v1",
        "anthropic",
        "claude-sonnet-5-5",  # an alias to another model: replies must still name MODEL
        "messages",
        "/_f/strict_reasoning/anthropic/v1/messages",
    ),
    "strict-deepseek-anthropic": Way(
        "/deepseek/v1",
        "deepseek",
        "deepseek-v4-pro",
        "messages",
        "/_f/strict_reasoning/deepseek/anthropic/v1/messages",
        {"messages": "/_f/strict_reasoning/deepseek/anthropic/v1"},
    ),
    "strict-translated": Way(
        f"/_f/strict_reasoning;chunks={CHAT_REPLY_TOKENS}/deepseek/v1",
        "openai",
        "deepseek-v4-pro",
        "chat",
        f"/_f/strict_reasoning;chunks={CHAT_REPLY_TOKENS}/deepseek/v1/chat/completions",
    ),
}


@pytest.fixture
def claude_relay(request: pytest.FixtureRequest, relay: Relay, fake: Any) -> tuple[Relay, Way]:
    way = WAYS[request.param]
    extras = {"dialects": {k: fake.base_url + v for k, v in way.dialects.items()}}
    credential = make_credential(
        relay.team,
        request.param,
        fake.base_url + way.base,
        provider=way.provider,
        extras=extras if way.dialects else {},
    )
    # The relocation helper's aliases: both names Claude Code sends go to the target.
    make_route(relay.team, MODEL, (credential, way.upstream_model, 0))
    make_route(relay.team, SMALL_MODEL, (credential, way.upstream_model, 0))
    return relay, way


def claude(relay: Relay, root: Path, prompt: str, *, bearer: bool = True, **kwargs: Any) -> Any:
    """``claude -p`` at Baton's root, the key as ``ANTHROPIC_AUTH_TOKEN`` (Bearer) or as
    ``ANTHROPIC_API_KEY`` (x-api-key)."""
    return run_claude(
        prompt,
        base_url=relay.base_url,
        auth_token=relay.key if bearer else None,
        api_key=None if bearer else relay.key,
        model=MODEL,
        small_model=SMALL_MODEL,
        root=root,
        **kwargs,
    )


def _blocks(message: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    content = message.get("content")
    if not isinstance(content, list):
        return []
    return [b for b in content if isinstance(b, dict) and b.get("type") == kind]


def check_run(run: Any) -> dict[str, Any]:
    assert run.exit_code == 0, run.diagnostics()
    assert run.result is not None, run.diagnostics()
    assert (run.result["is_error"], run.result["subtype"]) == (False, "success"), run.diagnostics()
    assert run.result["result"], run.diagnostics()
    result: dict[str, Any] = run.result
    return result


def check_upstream(
    fake: Any, redis_client: Any, way: Way, reported: dict[str, Any]
) -> list[dict[str, Any]]:
    """What went upstream, and what was billed: every request once, in the right dialects,
    with the token classes Claude Code itself was told."""
    history = fake.requests()
    assert history
    assert [(r["method"], r["path"], r["status"]) for r in history] == [
        ("POST", way.path, 200)
    ] * len(history), history
    for record in history:
        body = record["body"]
        assert body["model"] == way.upstream_model
        if way.egress == "messages":
            # Passed through: Claude Code's own fields and headers.
            assert {"thinking", "metadata", "context_management", "system", "tools"} <= set(body)
            assert record["anthropic_version"] == ANTHROPIC_VERSION
            if way.provider == "anthropic":
                assert "claude-code-20250219" in (record["anthropic_beta"] or "")
            else:
                assert record["anthropic_beta"] is None  # DeepSeek ignores betas: not sent
        else:
            assert record["anthropic_version"] is None  # a chat request
            assert body["messages"][0]["role"] == "system"  # Claude Code's system prompt
    events = usage_events(redis_client, len(history))
    assert len(events) == len(history)  # billed once each
    assert len({e.request_id for e in events}) == len(events)
    assert {
        (e.endpoint, e.dialect, e.egress, e.provider, e.status, e.attempts) for e in events
    } == {("messages", "messages", way.egress, way.provider, 200, 1)}
    assert {(e.alias, e.upstream_model) for e in events} == {(MODEL, way.upstream_model)}
    assert all(e.completion_tokens > 0 and not e.estimated for e in events)
    # Claude Code adds up the usage of every reply: the same token classes as billed.
    billed = {
        "input_tokens": sum(
            e.prompt_tokens - e.cached_tokens - e.cache_write_tokens for e in events
        ),
        "cache_read_input_tokens": sum(e.cached_tokens for e in events),
        "cache_creation_input_tokens": sum(e.cache_write_tokens for e in events),
        "output_tokens": sum(e.completion_tokens for e in events),
    }
    assert {k: reported["usage"][k] for k in billed} == billed
    assert reported["usage"]["cache_creation"]["ephemeral_1h_input_tokens"] == sum(
        e.cache_write_1h_tokens for e in events
    )
    return history


@pytest.mark.parametrize(
    "claude_relay", ["anthropic", "deepseek-anthropic", "translated"], indirect=True
)
def test_a_plain_prompt(
    claude_relay: tuple[Relay, Way], fake: Any, redis_client: Any, tmp_path: Path
) -> None:
    relay, way = claude_relay
    run = claude(relay, tmp_path, "Say hello", bearer=False, tools="", max_turns=1)
    result = check_run(run)
    [record] = check_upstream(fake, redis_client, way, result)
    prompt = last_user_text(record["body"]["messages"])
    assert "Say hello" in prompt
    # The fake's answer (it echoes the last user turn) is Claude Code's result, whole.
    length = DEFAULT_REPLY_TOKENS if way.egress == "messages" else CHAT_REPLY_TOKENS
    assert result["result"] == " ".join(reply_words(prompt, length))


def native_tool_turn(messages: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The assistant's Bash call and the tool result answering it, in a Messages history."""
    for assistant, user in itertools.pairwise(messages):
        for call in _blocks(assistant, "tool_use") if assistant["role"] == "assistant" else ():
            for result in _blocks(user, "tool_result"):
                if result["tool_use_id"] == call["id"]:
                    # Nothing lost: the turn starts with its signed thinking.
                    first = assistant["content"][0]
                    assert first["type"] == "thinking" and first["thinking"], assistant
                    assert first["signature"], assistant
                    content = result["content"]
                    text = content if isinstance(content, str) else str(content)
                    return call["input"], {"text": text}
    raise AssertionError(f"no answered tool_use in {messages}")


def chat_tool_turn(messages: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same in the chat history the pivot sent: tool_calls, then a tool message."""
    for assistant, tool in itertools.pairwise(messages):
        for call in assistant.get("tool_calls") or ():
            if tool.get("role") == "tool" and tool.get("tool_call_id") == call["id"]:
                # Nothing lost: the thinking came back as the provider's reasoning_content.
                assert assistant.get("reasoning_content"), assistant
                assert call["function"]["name"] == "Bash"
                return json.loads(call["function"]["arguments"]), {"text": str(tool["content"])}
    raise AssertionError(f"no answered tool call in {messages}")


@pytest.mark.parametrize("claude_relay", sorted(WAYS), indirect=True)
def test_a_tool_using_task(
    claude_relay: tuple[Relay, Way], fake: Any, redis_client: Any, tmp_path: Path
) -> None:
    """Claude Code runs the tool the fake calls and sends its output back; the fake's text
    answer ends the task. Strict targets refuse the second turn unless its reasoning came
    back whole, so their success proves nothing was lost."""
    relay, way = claude_relay
    run = claude(
        relay,
        tmp_path,
        "Use Bash to run `echo baton-relayed-this`",
        allowed_tools=["Bash(echo *)"],
        max_turns=3,
    )
    result = check_run(run)
    first, second = check_upstream(fake, redis_client, way, result)
    assert "tools" in first["body"] and "Bash" in json.dumps(first["body"]["tools"])
    turn = native_tool_turn if way.egress == "messages" else chat_tool_turn
    arguments, output = turn(second["body"]["messages"])
    assert arguments == {"command": "echo baton-relayed-this"}
    assert "baton-relayed-this" in output["text"]  # the command really ran
    assert result["num_turns"] == 2
