"""Reasoning through Baton in agent loops, against the fake's strict flavors: providers that
refuse a tool-call turn whose reasoning was not passed back whole."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import openai
import pytest

from accounts.models import Team
from gateway.turns import TurnMemory
from relay.models import ProviderCredential
from tests.fake_upstream.test_chat_reasoning import PROMPT, THINKERS, TOOLS, second_turn
from tests.relay.conftest import Relay, make_credential, make_route
from tests.relay.test_relay_sdk import usage_events

MESSAGES_TOOLS: Any = [
    {
        "name": "read_file",
        "input_schema": {
            "type": "object",
            "properties": {"path": {"type": "string"}},
            "required": ["path"],
        },
    }
]
ASK: Any = [{"role": "user", "content": "Please read_file `notes.txt` for me"}]
THINK: Any = {"type": "enabled", "budget_tokens": 1024}


def chat_turn(sdk: openai.OpenAI, model: str) -> dict[str, Any]:
    first = sdk.chat.completions.create(model=model, messages=PROMPT, tools=TOOLS)
    assert first.choices[0].finish_reason == "tool_calls"
    return first.choices[0].message.model_dump(exclude_none=True)


@pytest.mark.parametrize("flavor", sorted(THINKERS))
def test_a_chat_client_that_drops_reasoning_content_still_completes_the_loop(
    relay: Relay, fake: Any, redis_client: Any, flavor: str
) -> None:
    base, model, refusal = THINKERS[flavor]
    strict = make_credential(
        relay.team, "strict", fake.base_url + "/_f/strict_reasoning" + base, provider=flavor
    )
    make_route(relay.team, "thinker", (strict, model, 0))
    sdk = relay.client()
    assistant = chat_turn(sdk, "thinker")
    assert assistant.get("reasoning_content")
    # What most OpenAI SDK apps send back: the message without the field OpenAI lacks.
    dropped = {k: v for k, v in assistant.items() if k != "reasoning_content"}
    done = sdk.chat.completions.create(model="thinker", messages=second_turn(dropped), tools=TOOLS)
    assert done.choices[0].finish_reason == "stop"
    sent = fake.requests()[-1]["body"]["messages"][1]
    assert sent["reasoning_content"] == assistant["reasoning_content"]  # byte for byte
    events = usage_events(redis_client, 2)
    assert [e.reasoning for e in events] == ["", "restored"]

    # A team that keeps no content: nothing is remembered, and the provider says why.
    Team.objects.filter(pk=relay.team.pk).update(remember_reasoning=False)
    ProviderCredential.objects.get(pk=strict.pk).save()  # the relay reloads the team
    forgetful = chat_turn(sdk, "thinker")
    without = {k: v for k, v in forgetful.items() if k != "reasoning_content"}
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(model="thinker", messages=second_turn(without), tools=TOOLS)
    assert refusal in str(refused.value)


def test_native_messages_keep_signed_thinking_through_a_tool_loop(relay: Relay, fake: Any) -> None:
    strict = make_credential(
        relay.team,
        "claude-strict",
        fake.base_url + "/_f/strict_reasoning/anthropic/v1",
        provider="anthropic",
    )
    make_route(relay.team, "claude", (strict, "claude-sonnet-5-5", 0))
    sdk = anthropic.Anthropic(base_url=relay.base_url, api_key=relay.key, max_retries=0)
    with sdk.messages.stream(
        model="claude", max_tokens=2048, thinking=THINK, tools=MESSAGES_TOOLS, messages=ASK
    ) as stream:
        first = stream.get_final_message()
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    thinking, tool_use = first.content
    assert thinking.type == "thinking" and thinking.signature
    assert tool_use.type == "tool_use"
    result = {"type": "tool_result", "tool_use_id": tool_use.id, "content": "hello from notes"}
    history = [
        *ASK,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [result]},
    ]
    done = sdk.messages.create(
        model="claude", max_tokens=2048, thinking=THINK, tools=MESSAGES_TOOLS, messages=history
    )
    assert done.stop_reason == "end_turn"
    sent = fake.requests()[-1]["body"]["messages"][1]["content"][0]
    assert (sent["thinking"], sent["signature"]) == (thinking.thinking, thinking.signature)


def test_messages_through_the_chat_pivot_pass_reasoning_back(relay: Relay, fake: Any) -> None:
    """A Messages client on a chat-only thinking provider: reasoning_content becomes a
    thinking block for the client, and the client's block becomes reasoning_content again."""
    base, model, _ = THINKERS["deepseek"]
    # chunks=20: the fake's chat flavors take max_tokens as the length wanted, which a
    # Messages client always sends; a natural 20-token answer ends with end_turn.
    strict = make_credential(
        relay.team,
        "deepseek-chat",
        fake.base_url + "/_f/strict_reasoning;chunks=20" + base,
        provider="openai",  # chat only: no Messages endpoint, so translated
    )
    make_route(relay.team, "coder", (strict, model, 0))
    sdk = anthropic.Anthropic(base_url=relay.base_url, api_key=relay.key, max_retries=0)
    first = sdk.messages.create(model="coder", max_tokens=2048, tools=MESSAGES_TOOLS, messages=ASK)
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    assert fake.requests()[-1]["path"].endswith("/chat/completions")
    tool_use = first.content[1]
    assert tool_use.type == "tool_use"
    history = [
        *ASK,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": tool_use.id, "content": "hello from notes"}
            ],
        },
    ]
    done = sdk.messages.create(
        model="coder", max_tokens=2048, tools=MESSAGES_TOOLS, messages=history
    )
    assert done.stop_reason == "end_turn"
    assert done.content[-1].type == "text"


def test_a_loop_stays_on_its_target_and_drops_reasoning_only_when_it_must_move(
    relay: Relay, fake: Any, redis_client: Any
) -> None:
    first_account = make_credential(
        relay.team,
        "claude-a",
        fake.base_url + "/_f/strict_reasoning/anthropic/v1",
        provider="anthropic",
        secret="sk-ant-account-a-0001",
    )
    second_account = make_credential(
        relay.team,
        "claude-b",
        fake.base_url + "/_f/strict_reasoning/anthropic/v1",
        provider="anthropic",
        secret="sk-ant-account-b-0002",
    )
    # Equal priority and weight: a new loop may start on either account.
    make_route(
        relay.team,
        "claude",
        (first_account, "claude-sonnet-5-5", 0),
        (second_account, "claude-sonnet-5-5", 0),
    )
    sdk = anthropic.Anthropic(base_url=relay.base_url, api_key=relay.key, max_retries=0)

    def start() -> tuple[Any, list[Any]]:
        first = sdk.messages.create(
            model="claude", max_tokens=2048, thinking=THINK, tools=MESSAGES_TOOLS, messages=ASK
        )
        served = fake.requests()[-1]["key_last4"]
        tool_use = first.content[-1]
        assert tool_use.type == "tool_use"
        history = [
            *ASK,
            {
                "role": "assistant",
                "content": [b.model_dump(exclude_none=True) for b in first.content],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "ok"}],
            },
        ]
        return served, history

    for _ in range(6):  # every follow-up goes back to the account that signed the thinking
        served, history = start()
        sdk.messages.create(
            model="claude", max_tokens=2048, thinking=THINK, tools=MESSAGES_TOOLS, messages=history
        )
        assert fake.requests()[-1]["key_last4"] == served

    # The account that served the loop fails: the loop moves, without the thinking the
    # other account would refuse, rather than failing.
    served, history = start()
    failing = first_account if served == "0001" else second_account
    failing.base_url = fake.base_url + "/_f/status=503/anthropic/v1"
    failing.save()
    done = sdk.messages.create(
        model="claude", max_tokens=2048, thinking=THINK, tools=MESSAGES_TOOLS, messages=history
    )
    assert done.stop_reason == "end_turn"
    moved = fake.requests()[-1]
    assert moved["key_last4"] != served
    assert [b["type"] for b in moved["body"]["messages"][1]["content"]] == ["tool_use"]
    assert usage_events(redis_client, 14)[-1].reasoning == "dropped"


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_redacted_thinking_comes_back_byte_for_byte_on_the_native_path(
    relay: Relay, fake: Any, redis_client: Any, stream: bool
) -> None:
    """A reply with signed thinking and a redacted_thinking block (the ``redacted``
    directive), passed back whole on the next turn: the strict flavor verifies every
    signature and the redacted data against its account and the conversation, so any byte
    lost or changed on the way through Baton (either way) is a 400."""
    strict = make_credential(
        relay.team,
        "claude-redacting",
        fake.base_url + "/_f/strict_reasoning;redacted/anthropic/v1",
        provider="anthropic",
    )
    make_route(relay.team, "claude", (strict, "claude-sonnet-5-5", 0))
    sdk = anthropic.Anthropic(base_url=relay.base_url, api_key=relay.key, max_retries=0)

    def turn(history: Any) -> Any:
        if not stream:
            return sdk.messages.create(
                model="claude",
                max_tokens=2048,
                thinking=THINK,
                tools=MESSAGES_TOOLS,
                messages=history,
            )
        with sdk.messages.stream(
            model="claude", max_tokens=2048, thinking=THINK, tools=MESSAGES_TOOLS, messages=history
        ) as events:
            return events.get_final_message()

    first = turn(ASK)
    assert [b.type for b in first.content] == ["thinking", "redacted_thinking", "tool_use"]
    blocks = [b.model_dump(exclude_none=True) for b in first.content]
    thinking, redacted, tool_use = blocks
    assert thinking["signature"] and redacted["data"]
    history = [
        *ASK,
        {"role": "assistant", "content": blocks},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": tool_use["id"], "content": "hello"}],
        },
    ]
    done = turn(history)
    assert done.stop_reason == "end_turn"
    assert [b.type for b in done.content] == ["thinking", "redacted_thinking", "text"]
    sent = fake.requests()[-1]
    assert sent["status"] == 200
    assert sent["body"]["messages"][1]["content"] == blocks  # as the client had them

    # A client that changes a byte of the redacted data is refused by the provider, through
    # Baton, with the provider's words.
    tampered = [dict(b) for b in blocks]
    data = tampered[1]["data"]
    middle = len(data) // 2
    tampered[1]["data"] = data[:middle] + ("B" if data[middle] == "A" else "A") + data[middle + 1 :]
    with pytest.raises(anthropic.BadRequestError) as refused:
        turn([*ASK, {"role": "assistant", "content": tampered}, history[2]])
    assert "cannot be modified" in refused.value.message
    events = usage_events(redis_client, 3)
    assert [(e.dialect, e.egress, e.status) for e in events] == [
        ("messages", "messages", 200),
        ("messages", "messages", 200),
        ("messages", "messages", 400),
    ]


READ_TASKS = [
    "Please read_file `notes.txt` for me",
    "Now read_file `todo.txt` too",
    "And finally read_file `done.txt`",
]


def app_turn(sdk: openai.OpenAI, model: str, history: Any, stream: bool) -> dict[str, Any]:
    """One turn of a typical OpenAI-SDK app: the assistant message it keeps, which has no
    ``reasoning_content`` (not in OpenAI's schema, so the app never reads it)."""
    if not stream:
        message = (
            sdk.chat.completions.create(model=model, messages=history, tools=TOOLS)
            .choices[0]
            .message
        )
        kept: dict[str, Any] = {"role": "assistant", "content": message.content}
        if message.tool_calls:
            kept["tool_calls"] = [
                {"id": c.id, "type": "function", "function": c.function.model_dump()}
                for c in message.tool_calls
                if c.type == "function"
            ]
        return kept
    content = ""
    calls: dict[int, dict[str, Any]] = {}
    for chunk in sdk.chat.completions.create(
        model=model, messages=history, tools=TOOLS, stream=True
    ):
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        content += delta.content or ""
        for call in delta.tool_calls or []:
            entry = calls.setdefault(
                call.index,
                {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
            )
            entry["id"] = call.id or entry["id"]
            if call.function is not None:
                entry["function"]["name"] += call.function.name or ""
                entry["function"]["arguments"] += call.function.arguments or ""
    kept = {"role": "assistant", "content": content or None}
    if calls:
        kept["tool_calls"] = list(calls.values())
    return kept


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("flavor", sorted(THINKERS))
def test_an_openai_sdk_app_that_drops_reasoning_completes_a_multi_turn_tool_loop(
    relay: Relay, fake: Any, redis_client: Any, flavor: str, stream: bool
) -> None:
    """Three tasks, each a tool call and its answer: six requests, each carrying every
    earlier tool-call turn without its reasoning. The strict provider refuses any such turn
    whose reasoning is not the one it produced; Baton gives each back."""
    base, model, _ = THINKERS[flavor]
    strict = make_credential(
        relay.team, "strict", fake.base_url + "/_f/strict_reasoning" + base, provider=flavor
    )
    make_route(relay.team, "thinker", (strict, model, 0))
    sdk = relay.client()
    history: list[dict[str, Any]] = []
    for task in READ_TASKS:
        history.append({"role": "user", "content": task})
        assistant = app_turn(sdk, "thinker", history, stream)
        history.append(assistant)
        [call] = assistant["tool_calls"]
        assert json.loads(call["function"]["arguments"]) == {"path": task.split("`")[1]}
        history.append({"role": "tool", "tool_call_id": call["id"], "content": f"read {task}"})
        answer = app_turn(sdk, "thinker", history, stream)
        assert answer["content"] and "tool_calls" not in answer
        history.append(answer)
    assert all("reasoning_content" not in m for m in history)  # the app never kept any

    upstream = fake.requests()
    assert [r["status"] for r in upstream] == [200] * 6
    last = upstream[-1]["body"]["messages"]
    restored = [m for m in last if m["role"] == "assistant" and m.get("tool_calls")]
    assert len(restored) == 3 and all(m["reasoning_content"] for m in restored)
    events = usage_events(redis_client, 6)
    assert [e.reasoning for e in events] == ["", *["restored"] * 5]
    assert {(e.dialect, e.egress, e.streamed) for e in events} == {("chat", "chat", stream)}


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_the_turn_is_remembered_before_the_client_sees_its_tool_call(
    relay: Relay, fake: Any, monkeypatch: pytest.MonkeyPatch, stream: bool
) -> None:
    """An agent answers a tool call the moment it reads it. With the turn memory's write
    slowed down (a loaded Redis), the follow-up must still find the reasoning: the write is
    awaited before the bytes carrying the tool call's id go out, not left to finish later."""
    original = TurnMemory._set

    async def slow_set(self: TurnMemory, keys: list[str], value: bytes, ttl: int) -> None:
        await asyncio.sleep(0.2)
        await original(self, keys, value, ttl)

    monkeypatch.setattr(TurnMemory, "_set", slow_set)
    base, model, _ = THINKERS["deepseek"]
    strict = make_credential(
        relay.team, "strict", fake.base_url + "/_f/strict_reasoning" + base, provider="deepseek"
    )
    make_route(relay.team, "thinker", (strict, model, 0))
    sdk = relay.client()
    history: list[dict[str, Any]] = [{"role": "user", "content": READ_TASKS[0]}]
    assistant = app_turn(sdk, "thinker", history, stream)
    [call] = assistant["tool_calls"]
    history += [assistant, {"role": "tool", "tool_call_id": call["id"], "content": "notes"}]
    assert app_turn(sdk, "thinker", history, stream)["content"]
    assert [r["status"] for r in fake.requests()] == [200, 200]
