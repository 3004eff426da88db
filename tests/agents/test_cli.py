"""The agent CLI harness end to end: the real Claude Code and Codex CLIs against the fake upstream.

These prove the harness (tests/agents/cli.py), not Baton: the CLIs talk straight to Baton's
fake upstream. Claude Code uses the fake's native Anthropic flavor (``/anthropic``). The fake
has no Responses endpoint yet, so the Codex tests stop at its first request: a fault directive
makes the fake answer it with an error, whatever endpoints it gains later.
"""

from __future__ import annotations

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
    assert run.result["usage"]["output_tokens"] == DEFAULT_REPLY_TOKENS


def test_claude_tool_turn_sends_the_tool_result_back(fake: Fake, tmp_path: Path) -> None:
    max_turns = 2
    run = run_claude(
        "Run echo hello",
        base_url=f"{fake.base_url}/anthropic",
        api_key=KEY,
        model=CLAUDE_MODEL,
        root=tmp_path,
        allowed_tools=["Bash(echo *)"],
        max_turns=max_turns,
    )
    assert run.result is not None, run.diagnostics()
    history = fake.requests()
    assert [r["path"] for r in history] == ["/anthropic/v1/messages"] * len(history)
    assert len(history) >= 2, run.diagnostics()

    # Claude Code offers its own tool set (24 tools in 2.1.197, Agent first). The fake calls
    # the first tool offered with input of its own ({"q": ...}) that the tool does not accept,
    # so Claude Code runs nothing and answers with an InputValidationError tool_result; every
    # later request carries the fake's tool_use back and the result for it.
    offered = [tool["name"] for tool in history[0]["body"]["tools"]]
    assert "Bash" in offered
    for later in history[1:]:
        *_, assistant, user = later["body"]["messages"]
        [tool_use] = _blocks(assistant, "tool_use")
        assert tool_use["name"] in offered
        [tool_result] = _blocks(user, "tool_result")
        assert tool_result["tool_use_id"] == tool_use["id"]

    if run.result["subtype"] == "error_max_turns":
        # The fake calls a tool whenever tools are offered, so the loop ends at --max-turns.
        assert (run.exit_code, len(history)) == (1, max_turns), run.diagnostics()
    else:
        # An upstream that answers after the tool result lets Claude Code finish the task.
        assert (run.exit_code, run.result["subtype"]) == (0, "success"), run.diagnostics()
        assert run.result["is_error"] is False


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
