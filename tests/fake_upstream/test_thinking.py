"""Signed thinking across a two-turn tool loop, and each provider's strict echo rule."""

from __future__ import annotations

import copy
from typing import Any

import anthropic
import pytest
from anthropic.types import MessageParam, ToolParam

from tests.fake_upstream.conftest import KEY, ServerThread

TOOLS: list[ToolParam] = [
    {
        "name": "Bash",
        "description": "Run a shell command",
        "input_schema": {
            "type": "object",
            "properties": {"command": {"type": "string"}},
            "required": ["command"],
        },
    }
]
PROMPT: list[MessageParam] = [{"role": "user", "content": "Use Bash to run `ls -la`"}]
SYSTEM = "You are a coding agent"
ENABLED: Any = {"type": "enabled", "budget_tokens": 1024}
EXPECTED_THINKING = (
    "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
    "`tool_use`. When `thinking` is enabled, a final `assistant` message must start with a "
    "thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We "
    "recommend you include thinking blocks from previous turns. To avoid this requirement, "
    "disable `thinking`. Please consult our documentation at "
    "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
)
INVALID_SIGNATURE = "messages.1.content.0: Invalid `signature` in `thinking` block"

# flavor: (base, model, thinking setting or None for "thinks by default", refusal for a
# dropped block, refusal for an altered one)
FLAVORS: dict[str, tuple[str, str, Any, str, str]] = {
    "anthropic": (
        "/anthropic",
        "claude-sonnet-5-5",
        ENABLED,
        EXPECTED_THINKING,
        INVALID_SIGNATURE,
    ),
    "qwen": ("/qwen/anthropic", "qwen3-max", ENABLED, EXPECTED_THINKING, INVALID_SIGNATURE),
    "deepseek": (
        "/deepseek/anthropic",
        "deepseek-v4-pro",
        None,
        "The `content[].thinking` in the thinking mode must be passed back to the API.",
        "The `content[].thinking` in the thinking mode must be passed back to the API.",
    ),
    "moonshot": (
        "/moonshot/anthropic",
        "kimi-k2.6",
        None,
        "thinking is enabled but reasoning_content is missing in assistant tool call message "
        "at index 1",
        "thinking is enabled but reasoning_content is missing in assistant tool call message "
        "at index 1",
    ),
    "zhipu": (
        "/zhipu/anthropic",
        "glm-4.7",
        None,
        "messages[1]: the thinking of an assistant message with tool_use must be passed back "
        "unchanged when thinking is enabled",
        "messages[1]: the thinking of an assistant message with tool_use must be passed back "
        "unchanged when thinking is enabled",
    ),
    "minimax": (
        "/minimax/anthropic",
        "MiniMax-M2",
        None,
        "invalid params, the thinking of the assistant tool call message at index 1 was not "
        "passed back whole (2013)",
        "invalid params, the thinking of the assistant tool call message at index 1 was not "
        "passed back whole (2013)",
    ),
}


def client(server: ServerThread, base: str, key: str = KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.base_url + base, api_key=key, max_retries=0)


def options(model: str, thinking: Any, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": model,
        "max_tokens": 2048,
        "tools": TOOLS,
        "system": SYSTEM,
        **extra,
    }
    if thinking is not None:
        out["thinking"] = thinking
    return out


def first_turn(sdk: anthropic.Anthropic, opts: dict[str, Any]) -> list[dict[str, Any]]:
    """Turn one, streamed the way Claude Code does it; the assistant content as plain dicts."""
    with sdk.messages.stream(messages=PROMPT, **opts) as stream:
        message = stream.get_final_message()
    return [block.model_dump() for block in message.content]


def second_turn(assistant: list[dict[str, Any]]) -> list[Any]:
    call = next(b for b in assistant if b["type"] == "tool_use")
    result = {"type": "tool_result", "tool_use_id": call["id"], "content": "README.md"}
    return [
        *PROMPT,
        {"role": "assistant", "content": assistant},
        {"role": "user", "content": [result]},
    ]


def refusal(error: anthropic.APIStatusError) -> str:
    body = error.body
    assert isinstance(body, dict)
    message: str = body["error"]["message"]
    return message


@pytest.mark.parametrize("flavor", sorted(FLAVORS))
def test_thinking_block_is_signed_and_streamed_first(
    fake_server: ServerThread, flavor: str
) -> None:
    base, model, thinking, _, _ = FLAVORS[flavor]
    sdk = client(fake_server, base)
    assistant = first_turn(sdk, options(model, thinking))
    assert [b["type"] for b in assistant] == ["thinking", "tool_use"]
    assert assistant[0]["thinking"].startswith("The user asks about Use Bash to run")
    assert assistant[0]["signature"]
    assert assistant[1]["input"] == {"command": "ls -la"}
    created = sdk.messages.create(messages=PROMPT, **options(model, thinking))
    # Same conversation, same account: the same deterministic text and signature.
    assert created.content[0].type == "thinking"
    assert created.content[0].thinking == assistant[0]["thinking"]
    assert created.content[0].signature == assistant[0]["signature"]
    words = len(assistant[0]["thinking"].split())
    assert created.usage.output_tokens == words + 3  # "Bash" + '{"command":"ls' '-la"}'


@pytest.mark.parametrize("flavor", sorted(FLAVORS))
def test_strict_tool_loop(fake_server: ServerThread, flavor: str) -> None:
    base, model, thinking, dropped_text, altered_text = FLAVORS[flavor]
    strict = client(fake_server, f"/_f/strict_reasoning{base}")
    opts = options(model, thinking)
    assistant = first_turn(strict, opts)

    # Passed back verbatim: accepted, streamed or not, and the loop ends in text.
    verbatim = strict.messages.create(messages=second_turn(assistant), **opts)
    assert [b.type for b in verbatim.content] == ["thinking", "text"]
    assert verbatim.content[1].type == "text"
    assert verbatim.content[1].text.startswith("Echo: README.md")
    with strict.messages.stream(messages=second_turn(assistant), **opts) as stream:
        assert stream.get_final_message().stop_reason == "end_turn"

    # Dropped.
    with pytest.raises(anthropic.BadRequestError) as dropped:
        strict.messages.create(messages=second_turn(assistant[1:]), **opts)
    assert refusal(dropped.value) == dropped_text

    # Altered text, altered signature.
    edited = copy.deepcopy(assistant)
    edited[0]["thinking"] += " More."
    with pytest.raises(anthropic.BadRequestError) as altered:
        strict.messages.create(messages=second_turn(edited), **opts)
    assert refusal(altered.value) == altered_text
    forged = copy.deepcopy(assistant)
    forged[0]["signature"] = forged[0]["signature"][:-8] + "AAAAAAA="
    with pytest.raises(anthropic.BadRequestError) as bad_signature:
        strict.messages.create(messages=second_turn(forged), **opts)
    assert refusal(bad_signature.value) == altered_text

    # Reordered: the tool_use before its thinking.
    with pytest.raises(anthropic.BadRequestError) as reordered:
        strict.messages.create(messages=second_turn(assistant[::-1]), **opts)
    assert refusal(reordered.value) == dropped_text

    # Another account's blocks, verbatim.
    other = client(fake_server, f"/_f/strict_reasoning{base}", key="sk-other-account-9999")
    with pytest.raises(anthropic.BadRequestError) as foreign:
        other.messages.create(messages=second_turn(assistant), **opts)
    assert refusal(foreign.value) == altered_text

    # The lenient base (no directive) accepts all of it, as most tests want.
    lenient = client(fake_server, base)
    assert lenient.messages.create(messages=second_turn(assistant[1:]), **opts).content


def test_signatures_are_bound_to_the_provider(fake_server: ServerThread) -> None:
    assistant = first_turn(client(fake_server, "/anthropic"), options("claude-sonnet-5-5", ENABLED))
    deepseek = client(fake_server, "/_f/strict_reasoning/deepseek/anthropic")
    with pytest.raises(anthropic.BadRequestError):
        deepseek.messages.create(
            messages=second_turn(assistant), **options("deepseek-v4-flash", None)
        )


PREFIX_HEAD = (
    "messages.1.content.0: Invalid `signature` in `thinking` block. The block is bound to a "
    "different conversation. Remove the block, or set "
    '`thinking.block_binding.prefix_mismatch_behavior` to "drop_block". That setting '
    "requires the `thinking-binding-controls-2026-08-01` value in the `anthropic-beta` header. "
)


def test_anthropic_binds_thinking_to_the_conversation_prefix(fake_server: ServerThread) -> None:
    strict = client(fake_server, "/_f/strict_reasoning/anthropic")
    opts = options("claude-opus-5-5", {"type": "adaptive"})
    assistant = first_turn(strict, opts)
    history = second_turn(assistant)

    # cache_control and null fields are not part of the prefix.
    marked = copy.deepcopy(history)
    marked[0]["content"] = [
        {"type": "text", "text": PROMPT[0]["content"], "cache_control": {"type": "ephemeral"}}
    ]
    system = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    assert strict.messages.create(messages=marked, **{**opts, "system": system}).content

    with pytest.raises(anthropic.BadRequestError) as system_changed:
        strict.messages.create(messages=history, **{**opts, "system": "You are a poet"})
    assert refusal(system_changed.value) == (
        PREFIX_HEAD + "The `system` prompt differs from the one this block was created with."
    )
    more_tools = [*TOOLS, {"name": "Read", "input_schema": {"type": "object"}}]
    with pytest.raises(anthropic.BadRequestError) as tools_changed:
        strict.messages.create(messages=history, **{**opts, "tools": more_tools})
    assert refusal(tools_changed.value).endswith(
        "The `tools` differ from the ones this block was created with."
    )
    edited = copy.deepcopy(history)
    edited[0]["content"] = "Use Bash to run `rm -rf /`"
    with pytest.raises(anthropic.BadRequestError) as earlier_changed:
        strict.messages.create(messages=edited, **opts)
    assert refusal(earlier_changed.value).endswith(
        "The earlier `messages` differ from the ones this block was created with."
    )

    # The documented escape hatch: drop the block instead of failing.
    binding: Any = {**opts["thinking"], "block_binding": {"prefix_mismatch_behavior": "drop_block"}}
    dropped = strict.beta.messages.create(
        messages=history,
        betas=["thinking-binding-controls-2026-08-01"],
        **{**opts, "system": "You are a poet", "thinking": binding},
    )
    assert dropped.content[-1].type == "text"


def test_redacted_thinking_must_come_back_whole(fake_server: ServerThread) -> None:
    strict = client(fake_server, "/_f/strict_reasoning,redacted/anthropic")
    opts = options("claude-sonnet-5-5", ENABLED)
    assistant = first_turn(strict, opts)
    assert [b["type"] for b in assistant] == ["thinking", "redacted_thinking", "tool_use"]
    assert assistant[1]["data"]
    assert strict.messages.create(messages=second_turn(assistant), **opts).content
    modified = (
        "messages.1.content.1: `thinking` or `redacted_thinking` blocks in the latest assistant "
        "message cannot be modified. These blocks must remain as they were in the original "
        "response."
    )
    without = [assistant[0], assistant[2]]
    with pytest.raises(anthropic.BadRequestError) as dropped:
        strict.messages.create(messages=second_turn(without), **opts)
    assert refusal(dropped.value) == modified
    edited = copy.deepcopy(assistant)
    edited[1]["data"] = "RVRoaXMgaXMgbm90IGl0"
    with pytest.raises(anthropic.BadRequestError) as altered:
        strict.messages.create(messages=second_turn(edited), **opts)
    assert refusal(altered.value) == modified
    # Only the thinking block dropped: the redacted block moved, which is a modification too.
    with pytest.raises(anthropic.BadRequestError) as headless:
        strict.messages.create(messages=second_turn(assistant[1:]), **opts)
    assert refusal(headless.value) == modified.replace("content.1", "content.0")


def test_thinking_off_means_no_block_and_no_check(fake_server: ServerThread) -> None:
    strict = client(fake_server, "/_f/strict_reasoning/deepseek/anthropic")
    off: Any = {"type": "disabled"}
    opts = options("deepseek-v4-flash", off)
    assistant = first_turn(strict, opts)
    assert [b["type"] for b in assistant] == ["tool_use"]
    assert strict.messages.create(messages=second_turn(assistant), **opts).content
    # deepseek-chat is V4 in non-thinking mode: no thinking unless asked.
    chat = first_turn(strict, options("deepseek-chat", None))
    assert [b["type"] for b in chat] == ["tool_use"]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 512}}, "greater than or equal to 1024"),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 4096}, "max_tokens": 4096},
            "`max_tokens` must be greater than `thinking.budget_tokens`",
        ),
        (
            {"thinking": ENABLED, "tool_choice": {"type": "any"}},
            "Thinking may not be enabled when tool_choice forces tool use.",
        ),
    ],
)
def test_anthropic_refuses_bad_thinking_settings(
    fake_server: ServerThread, extra: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as refused:
        client(fake_server, "/anthropic").messages.create(
            messages=PROMPT, **{**options("claude-sonnet-5-5", None), **extra}
        )
    assert fragment in refusal(refused.value)
