"""Codex CLI, unmodified and headless, through a running Baton to the fake upstream.

The real ``codex exec`` (tests/agents/cli.py) gets a ``config.toml`` whose model provider is
Baton: ``base_url`` = Baton's ``/v1``, ``wire_api = "responses"``, ``env_key = "BATON_API_KEY"``
holding a Baton key, analytics, feedback, OpenTelemetry, update checks and plugins off. The
model it names (``gpt-5.5``) is a team alias, as the relocation helper sets it up. Each target
is one way a Responses request can leave Baton:

- native (egress ``responses``): OpenAI's own Responses endpoint, and two Chinese providers
  that serve Responses (DeepSeek, whose reasoning items show their text, and DashScope, whose
  items carry ``encrypted_content`` bound to the account); all under the fake's
  ``strict_reasoning`` directive, which refuses a ``function_call`` passed back without the
  reasoning item it came with and any ``encrypted_content`` another account issued or anyone
  edited;
- translated (egress ``chat``): GLM, which has no Responses endpoint, through the chat pivot;
- strict translated: DeepSeek V4, Kimi and GLM chat in thinking mode under ``strict_reasoning``,
  which refuse a tool-call turn whose ``reasoning_content`` did not come back whole.

Every test is one agent loop: the fake calls the tool named last in the prompt
(``exec_command``) with the prompt's last backticked text as its command, Codex runs it in its
read-only sandbox and sends the output back, and the fake's text answer (the output, echoed)
ends the task. The fake's request log shows what went upstream; the usage records that every
request was billed once, dialect ``responses``, with the egress, reasoning and token classes
Codex itself was told.

The last tests change the team's routes while Codex's tool is running (the command waits for
a file the test creates after the change). Moved from OpenAI to a translated target, the
second turn carries reasoning sealed for the OpenAI account that no chat provider can read:
Baton leaves it out (``reasoning: dropped``), never sends it on, turns thinking off for that
turn (a strict thinking-mode provider refuses a tool-call turn without reasoning), and the loop
completes. With another OpenAI account put ahead of the first, the loop stays on the account
its reasoning is sealed for.
"""

from __future__ import annotations

import itertools
import json
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fake_upstream.tokens import DEFAULT_REPLY_TOKENS, reply_words
from relay.models import ProviderCredential, RouteTarget
from tests.agents.cli import CodexRun, run_codex
from tests.relay.conftest import UPSTREAM_SECRET, Relay, make_credential, make_route
from tests.relay.test_relay_sdk import usage_events
from wire.translate.responses import BATON_REASONING_PREFIX

pytestmark = pytest.mark.agents

ALIAS = "gpt-5.5"  # the model Codex names: a team alias
COMMAND = "echo baton-relayed-this"
PROMPT = f"Use exec_command to run `{COMMAND}`"
SEALED = "gAAAAA"  # how the fake's (and OpenAI's) encrypted_content starts
HOSTED = {"web_search", "tool_search"}  # OpenAI's built-in tools Codex 0.171.0 offers


@dataclass(frozen=True)
class Way:
    """One target: where the credential points, as which provider, and how Baton reaches it."""

    base: str  # the credential's base URL, under the fake's root
    provider: str
    upstream_model: str
    egress: str  # "responses": native, declared by the credential; "chat": the pivot
    sealed: bool = False  # native: its reasoning items carry encrypted_content

    @property
    def path(self) -> str:
        """Where every request of this way must arrive."""
        return self.base + ("/responses" if self.egress == "responses" else "/chat/completions")


STRICT = "/_f/strict_reasoning"
WAYS = {
    "openai": Way(f"{STRICT}/v1", "openai", "gpt-5.5", "responses", sealed=True),
    "deepseek": Way(f"{STRICT}/deepseek/v1", "deepseek", "deepseek-v4-pro", "responses"),
    "dashscope": Way(f"{STRICT}/qwen/v1", "qwen", "qwen3-max", "responses", sealed=True),
    "glm": Way("/zhipu/v1", "zhipu", "glm-4.7", "chat"),
    "strict-deepseek": Way(f"{STRICT}/deepseek/v1", "deepseek", "deepseek-v4-pro", "chat"),
    "strict-kimi": Way(f"{STRICT}/moonshot/v1", "moonshot", "kimi-k2.6", "chat"),
    "strict-glm": Way(f"{STRICT}/zhipu/v1", "zhipu", "glm-4.7", "chat"),
}


def credential(
    relay: Relay, fake: Any, name: str, way: Way, secret: str = UPSTREAM_SECRET
) -> ProviderCredential:
    """A credential for ``way``: a custom base URL serves chat only unless it declares the
    Responses dialect, so the native ones declare it, as an operator would."""
    url = fake.base_url + way.base
    extras = {"dialects": {"responses": url}} if way.egress == "responses" else {}
    return make_credential(
        relay.team, name, url, provider=way.provider, secret=secret, extras=extras
    )


@pytest.fixture
def codex_relay(request: pytest.FixtureRequest, relay: Relay, fake: Any) -> tuple[Relay, Way]:
    way = WAYS[request.param]
    make_route(
        relay.team, ALIAS, (credential(relay, fake, request.param, way), way.upstream_model, 0)
    )
    return relay, way


def codex(relay: Relay, root: Path, prompt: str = PROMPT) -> CodexRun:
    """``codex exec`` with Baton as its model provider and a Baton key in BATON_API_KEY."""
    run = run_codex(
        prompt, base_url=relay.base_url + "/v1", api_key=relay.key, root=root, model=ALIAS
    )
    config = tomllib.loads(run.config)
    provider = config["model_providers"][config["model_provider"]]
    assert (provider["base_url"], provider["wire_api"]) == (relay.base_url + "/v1", "responses")
    assert run.env[provider["env_key"]] == relay.key
    # Nothing phones home: no telemetry, feedback, update check or plugin sync.
    assert config["check_for_update_on_startup"] is False
    assert (config["analytics"], config["feedback"]) == ({"enabled": False}, {"enabled": False})
    assert config["otel"] == {"exporter": "none"} and config["features"]["plugins"] is False
    return run


def _items(run: CodexRun, kind: str) -> list[dict[str, Any]]:
    return [
        e["item"]
        for e in run.events
        if e.get("type") == "item.completed" and e["item"].get("type") == kind
    ]


def check_run(run: CodexRun, command: str) -> str:
    """Codex ended its turn in success, having run ``command`` once; its final message."""
    assert run.exit_code == 0, run.diagnostics()
    kinds = [e.get("type") for e in run.events]
    assert kinds[0] == "thread.started" and kinds[-1] == "turn.completed", run.diagnostics()
    assert "turn.failed" not in kinds and "error" not in kinds, run.diagnostics()
    [executed] = _items(run, "command_execution")
    assert command in executed["command"] and executed["exit_code"] == 0, run.diagnostics()
    *_, answer = _items(run, "agent_message")
    assert run.last_message == answer["text"], run.diagnostics()
    return answer["text"]


def check_billing(redis_client: Any, ways: list[Way], run: CodexRun) -> list[Any]:
    """One usage record per upstream request, each the way it went, with the token classes
    Codex added up in its ``turn.completed``."""
    events = usage_events(redis_client, len(ways))
    assert len(events) == len(ways)  # billed once each
    assert len({e.request_id for e in events}) == len(events)
    for event, way in zip(events, ways, strict=True):
        assert (event.endpoint, event.dialect, event.egress) == (
            "responses",
            "responses",
            way.egress,
        )
        assert (event.provider, event.upstream_model, event.alias) == (
            way.provider,
            way.upstream_model,
            ALIAS,
        )
        assert (event.status, event.attempts, event.streamed, event.estimated) == (
            200,
            1,
            True,
            False,
        )
        assert event.completion_tokens > 0
    [turn] = [e for e in run.events if e.get("type") == "turn.completed"]
    assert turn["usage"] == {
        "input_tokens": sum(e.prompt_tokens for e in events),
        "cached_input_tokens": sum(e.cached_tokens for e in events),
        "cache_write_input_tokens": sum(e.cache_write_tokens for e in events),
        "output_tokens": sum(e.completion_tokens for e in events),
        "reasoning_output_tokens": sum(e.reasoning_tokens for e in events),
    }
    return events


def check_requests(fake: Any, ways: list[Way]) -> list[dict[str, Any]]:
    """The upstream requests: one per way, in order, each answered 200, naming the target's
    model, streamed as Codex streams, with the team's provider key (never the Baton key)."""
    history = fake.requests()
    assert [(r["method"], r["path"], r["status"]) for r in history] == [
        ("POST", way.path, 200) for way in ways
    ], history
    assert {r["key_last4"] for r in history} == {UPSTREAM_SECRET[-4:]}
    for record, way in zip(history, ways, strict=True):
        assert (record["body"]["model"], record["body"]["stream"]) == (way.upstream_model, True)
    return history


def native_turn(
    first: dict[str, Any], second: dict[str, Any], way: Way, command: str = COMMAND
) -> dict[str, Any]:
    """The second request to a native target: Codex's first input again, then the first
    reply's reasoning item, its function call and the call's output, all as the target made
    them. Returns the output item."""
    body = first["body"]
    # Passed through: Codex's own fields, and no hosted tool where the provider cannot run it.
    assert {"include", "store", "prompt_cache_key", "client_metadata", "text"} <= set(body)
    assert body["include"] == ["reasoning.encrypted_content"] and body["store"] is False
    assert body["input"][0]["role"] == "developer"  # Codex's system prompt, as Codex sent it
    offered = {t["type"] for t in body["tools"]}
    assert offered & HOSTED == (HOSTED if way.provider == "openai" else set())
    sent = second["body"]["input"]
    assert sent[: len(body["input"])] == body["input"]
    reasoning, call, output = sent[len(body["input"]) :]
    assert (reasoning["type"], call["type"], output["type"]) == (
        "reasoning",
        "function_call",
        "function_call_output",
    )
    assert reasoning["id"].startswith("rs_") and "_baton_" not in reasoning["id"]
    if way.sealed:
        # The account's own sealed reasoning, back to that account (the strict fake verified
        # it, and would have refused it edited or from another account).
        assert reasoning["encrypted_content"].startswith(SEALED)
    else:
        [thought] = reasoning["content"]  # DeepSeek shows its reasoning as reasoning_text
        assert thought["type"] == "reasoning_text" and thought["text"].startswith("Thinking: ")
    assert call["call_id"] == output["call_id"]
    assert (call["name"], json.loads(call["arguments"])) == ("exec_command", {"cmd": command})
    return output


def chat_turn(body: dict[str, Any], command: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A request to a translated target after the tool ran: Codex's system prompt and its own
    tools, no sealed reasoning anywhere, and the tool call with the tool message that answers
    it, paired by id. Returns (assistant message, tool message)."""
    system = body["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("You are Codex")
    names = {t["function"]["name"] for t in body["tools"]}
    assert {"exec_command", "apply_patch"} <= names and not names & HOSTED
    raw = json.dumps(body)
    assert "encrypted_content" not in raw and BATON_REASONING_PREFIX not in raw
    for assistant, tool in itertools.pairwise(body["messages"]):
        for call in assistant.get("tool_calls") or ():
            if tool.get("role") == "tool" and tool.get("tool_call_id") == call["id"]:
                function = call["function"]
                assert (function["name"], json.loads(function["arguments"])) == (
                    "exec_command",
                    {"cmd": command},
                )
                return assistant, tool
    raise AssertionError(f"no answered tool call in {body['messages']}")


@pytest.mark.parametrize("codex_relay", sorted(WAYS), indirect=True)
def test_a_tool_loop(
    codex_relay: tuple[Relay, Way], fake: Any, redis_client: Any, tmp_path: Path
) -> None:
    """Codex runs the command the fake asks for and sends its output back; the fake's answer
    ends the task. Strict targets refuse the second turn unless its reasoning came back whole,
    so their success proves nothing was lost."""
    relay, way = codex_relay
    run = codex(relay, tmp_path)
    answer = check_run(run, COMMAND)
    first, second = check_requests(fake, [way, way])
    events = check_billing(redis_client, [way, way], run)
    assert {e.reasoning for e in events} == {""}  # nothing restored, nothing dropped
    assert all(e.reasoning_tokens > 0 for e in events)  # it thought on every turn
    if way.egress == "responses":
        output = native_turn(first, second, way)["output"]
    else:
        assistant, tool = chat_turn(second["body"], COMMAND)
        output = tool["content"]
        # The reasoning Codex was shown (Baton's reasoning item) came back as the provider's
        # reasoning_content, byte for byte.
        shown = [item["text"] for item in _items(run, "reasoning")]
        assert assistant["reasoning_content"] == shown[0], shown
    assert "baton-relayed-this" in output  # the command really ran
    # The fake echoes the tool's output: Codex's final message is that text, whole.
    assert answer == " ".join(reply_words(output, DEFAULT_REPLY_TOKENS))


def loop_changed_midway(relay: Relay, fake: Any, root: Path, change: Any) -> tuple[CodexRun, str]:
    """A Codex tool loop with ``change()`` made between its two turns: the command Codex runs
    waits for a file that the test creates once the first turn is over and the change made.
    Returns the run and the command."""
    flag = root / "work" / "changed"
    command = f"until [ -e {flag.name} ]; do sleep 0.02; done; echo baton-relayed-this"
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(codex, relay, root, f"Use exec_command to run `{command}`")
        try:
            deadline = time.monotonic() + 30
            while not running.done() and not any(r["completed"] for r in fake.requests()):
                assert time.monotonic() < deadline, "the first turn did not end"
                time.sleep(0.02)
            if not running.done():
                change()
        finally:
            flag.parent.mkdir(parents=True, exist_ok=True)
            flag.touch()  # never leave Codex waiting
        return running.result(), command


@pytest.mark.parametrize("to", ["glm", "strict-deepseek"])
def test_an_alias_moved_mid_loop_to_a_translated_target(
    relay: Relay, fake: Any, redis_client: Any, tmp_path: Path, to: str
) -> None:
    """The team moves Codex's alias from OpenAI to a chat-only provider while Codex runs the
    tool of the first turn. The second turn carries OpenAI's reasoning item, sealed for the
    OpenAI account: Baton leaves it out for the chat provider (``reasoning: dropped``), sends
    the call and its output paired, turns thinking off for a turn that lost its reasoning (a
    strict thinking-mode provider refuses it otherwise), and the same Codex config finishes
    the task."""
    native, moved = WAYS["openai"], WAYS[to]
    route = make_route(
        relay.team, ALIAS, (credential(relay, fake, "openai", native), native.upstream_model, 0)
    )
    chat_only = credential(relay, fake, to, moved)

    def move() -> None:
        target = RouteTarget.objects.get(route=route)
        target.credential, target.upstream_model = chat_only, moved.upstream_model
        target.save()  # as the routes API does: the relay's cache follows at once

    run, command = loop_changed_midway(relay, fake, tmp_path, move)
    answer = check_run(run, command)
    _, second = check_requests(fake, [native, moved])
    events = check_billing(redis_client, [native, moved], run)
    assert [e.reasoning for e in events] == ["", "dropped"]
    assistant, tool = chat_turn(second["body"], command)
    # OpenAI's reasoning is not readable, and not sent: the turn has no reasoning_content, and
    # the request goes with thinking off, since thinking-mode providers refuse such a turn.
    assert "reasoning_content" not in assistant
    assert SEALED not in json.dumps(second["body"])
    assert second["body"]["thinking"] == {"type": "disabled"}
    assert "reasoning_effort" not in second["body"]
    assert [e.reasoning_tokens > 0 for e in events] == [True, False]
    assert "baton-relayed-this" in tool["content"]
    assert answer == " ".join(reply_words(tool["content"], DEFAULT_REPLY_TOKENS))


def test_a_loop_stays_on_the_account_its_reasoning_is_sealed_for(
    relay: Relay, fake: Any, redis_client: Any, tmp_path: Path
) -> None:
    """Another OpenAI account is put ahead of the alias's while Codex runs the first turn's
    tool: new conversations go there, but this loop's reasoning is sealed for the first
    account, so its second turn goes back to that account (no other could read it)."""
    way = WAYS["openai"]
    issuer = credential(relay, fake, "openai-a", way)
    route = make_route(relay.team, ALIAS, (issuer, way.upstream_model, 1))
    other_secret = "sk-Zr8Kp2Vn6Wq1Xs5Ty9Bu0042"
    other = credential(relay, fake, "openai-b", way, secret=other_secret)

    def put_ahead() -> None:
        RouteTarget.objects.create(
            team=relay.team,
            route=route,
            credential=other,
            upstream_model=way.upstream_model,
            priority=0,
        )

    run, command = loop_changed_midway(relay, fake, tmp_path, put_ahead)
    check_run(run, command)
    first, second = check_requests(fake, [way, way])
    check_billing(redis_client, [way, way], run)
    output = native_turn(first, second, way, command)
    assert "baton-relayed-this" in output["output"]
    # A new conversation now starts on the other account.
    relay.client().responses.create(model=ALIAS, input="Hello")
    assert fake.requests()[-1]["key_last4"] == other_secret[-4:]
