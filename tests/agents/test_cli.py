"""The agent CLI harness end to end: the real Claude Code and Codex CLIs against the fake upstream.

These prove the harness (tests/agents/cli.py), not Baton: the CLIs talk straight to Baton's
fake upstream. Claude Code uses the fake's native Anthropic flavor (``/anthropic``). The Codex
tests stop at its first request: a fault directive makes the fake answer it with an error, so
they show what Codex sends and how it fails. Codex's tool loops run through Baton in
tests/agents/test_codex_relay.py.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fake_upstream.tokens import DEFAULT_REPLY_TOKENS, last_user_text, reply_words
from tests.agents import cli
from tests.agents.cli import AgentCLIMissing, run_claude, run_codex
from tests.fake_upstream.conftest import KEY, Fake

pytestmark = pytest.mark.agents

CLAUDE_MODEL = "claude-sonnet-4-5"
CODEX_MODEL = "gpt-5.5"


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A loopback URL whose port refuses connections: bound (so nobody else takes it), never
    listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def _blocks(message: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    content = message["content"]
    return [b for b in content if isinstance(b, dict) and b.get("type") == kind]


# --- Claude Code ------------------------------------------------------------------------------


def test_claude_plain_prompt_returns_the_fakes_text(fake: Fake, tmp_path: Path) -> None:
    run = run_claude(
        "Say hello",
        base_url=f"{fake.base_url}/anthropic",
        api_key=KEY,
        model=CLAUDE_MODEL,
        root=tmp_path,
        tools="",
        max_turns=1,
    )
    assert run.exit_code == 0, run.diagnostics()
    assert run.result is not None, run.diagnostics()
    assert (run.result["is_error"], run.result["subtype"]) == (False, "success")

    [record] = fake.requests()
    assert (record["method"], record["path"], record["query"]) == (
        "POST",
        "/anthropic/v1/messages",
        "beta=true",
    )
    assert record["key_last4"] == KEY[-4:]  # x-api-key, the header the fake's flavor reads
    body = record["body"]
    assert (body["model"], body["stream"]) == (CLAUDE_MODEL, True)
    assert not body.get("tools")
    prompt = last_user_text(body["messages"])
    assert "Say hello" in prompt
    # The fake echoes the last user turn; Claude Code's JSON result is exactly that text.
    assert run.result["result"] == " ".join(reply_words(prompt, DEFAULT_REPLY_TOKENS))
    # Claude Code asks known Claude models to think: the thinking block's tokens are output too.
    assert run.result["usage"]["output_tokens"] >= DEFAULT_REPLY_TOKENS


def test_claude_tool_turn_runs_the_tool_and_finishes(fake: Fake, tmp_path: Path) -> None:
    """The fake calls the tool the prompt names with the command it quotes; Claude Code
    runs it (allowed), sends the result back, and the fake's text answer ends the task."""
    run = run_claude(
        "Use Bash to run `echo hello-from-the-tool`",
        base_url=f"{fake.base_url}/anthropic",
        api_key=KEY,
        model=CLAUDE_MODEL,
        root=tmp_path,
        allowed_tools=["Bash(echo *)"],
        max_turns=3,
    )
    assert (run.exit_code, run.result and run.result["subtype"]) == (0, "success"), (
        run.diagnostics()
    )
    history = fake.requests()
    assert {r["path"] for r in history} == {"/anthropic/v1/messages"}
    answered = []
    for record in history:
        messages = record["body"]["messages"]
        for assistant, user in itertools.pairwise(messages):
            if assistant["role"] != "assistant" or user["role"] != "user":
                continue
            for tool_use in _blocks(assistant, "tool_use"):
                for result in _blocks(user, "tool_result"):
                    if result["tool_use_id"] == tool_use["id"]:
                        answered.append((tool_use, result))
    assert answered, run.diagnostics()
    tool_use, result = answered[-1]
    assert tool_use["name"] == "Bash"
    assert tool_use["input"]["command"] == "echo hello-from-the-tool"
    content = result["content"]
    text = content if isinstance(content, str) else "".join(b.get("text", "") for b in content)
    assert "hello-from-the-tool" in text  # the command really ran


def test_claude_upstream_error_fails_at_once(fake: Fake, tmp_path: Path) -> None:
    run = run_claude(
        "Say hello",
        base_url=f"{fake.base_url}/_f/status=503/anthropic",
        api_key=KEY,
        root=tmp_path,
        tools="",
        max_turns=1,
    )
    assert run.exit_code == 1, run.diagnostics()
    assert run.result is not None, run.diagnostics()
    assert (run.result["is_error"], run.result["api_error_status"]) == (True, 503)
    assert len(fake.requests()) == 1  # CLAUDE_CODE_MAX_RETRIES=0: no retry


def test_claude_refused_connection_fails_at_once(refused_url: str, tmp_path: Path) -> None:
    run = run_claude("Say hello", base_url=refused_url, api_key=KEY, root=tmp_path, tools="")
    assert run.exit_code == 1, run.diagnostics()
    assert run.result is not None, run.diagnostics()
    assert run.result["is_error"] is True
    assert "ConnectionRefused" in run.result["result"]


# --- Codex CLI --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 503])
def test_codex_sends_one_responses_request_then_fails_cleanly(
    fake: Fake, tmp_path: Path, status: int
) -> None:
    run = run_codex(
        "Say hello",
        base_url=f"{fake.base_url}/_f/status={status}/v1",
        api_key=KEY,
        model=CODEX_MODEL,
        root=tmp_path,
    )
    assert run.exit_code == 1, run.diagnostics()
    assert run.events, run.diagnostics()
    assert run.events[0]["type"] == "thread.started"
    assert run.events[-1]["type"] == "turn.failed", run.diagnostics()
    assert not run.last_message  # no answer (codex leaves the -o file empty)

    # request_max_retries = 0: exactly one attempt, even for a retryable 503.
    [record] = fake.requests()
    assert (record["method"], record["path"], record["query"]) == (
        "POST",
        f"/_f/status={status}/v1/responses",
        "",
    )
    assert record["status"] == status
    assert record["key_last4"] == KEY[-4:]  # Authorization: Bearer from the env_key variable
    body = record["body"]
    assert (body["model"], body["stream"], body["store"]) == (CODEX_MODEL, True, False)
    last = body["input"][-1]
    assert (last["type"], last["role"]) == ("message", "user")
    assert last["content"] == [{"type": "input_text", "text": "Say hello"}]
    functions = [t["name"] for t in body["tools"] if t["type"] == "function"]
    assert "exec_command" in functions


def test_codex_refused_connection_fails_at_once(refused_url: str, tmp_path: Path) -> None:
    # Without unbounded_connection_retries = false Codex retries "waiting for network" until
    # the harness's timeout kills it (AgentTimeout).
    run = run_codex("Say hello", base_url=f"{refused_url}/v1", api_key=KEY, root=tmp_path)
    assert run.exit_code == 1, run.diagnostics()
    assert run.events[-1]["type"] == "turn.failed", run.diagnostics()


# --- the harness itself -----------------------------------------------------------------------


def test_codex_config_is_valid_toml_with_overrides() -> None:
    import tomllib

    text = cli.codex_config(
        base_url="http://127.0.0.1:1/v1",
        overrides={"model_reasoning_effort": "high", "model_providers": {"baton": {"x": 1}}},
    )
    config = tomllib.loads(text)
    provider = config["model_providers"]["baton"]
    assert provider["base_url"] == "http://127.0.0.1:1/v1"
    assert (provider["request_max_retries"], provider["stream_max_retries"], provider["x"]) == (
        0,
        0,
        1,
    )
    assert config["model_reasoning_effort"] == "high"
    assert config["features"] == {"plugins": False, "unbounded_connection_retries": False}


def test_missing_clis_fail_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(cli, "NODE_MODULES", tmp_path)
    for run in (
        lambda: run_claude("x", base_url="http://127.0.0.1:1", api_key=KEY, root=tmp_path),
        lambda: run_codex("x", base_url="http://127.0.0.1:1/v1", api_key=KEY, root=tmp_path),
    ):
        with pytest.raises(AgentCLIMissing, match="make agents"):
            run()
