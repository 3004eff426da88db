"""Reasoning through Baton in agent loops, against the fake's strict flavors: providers that
refuse a tool-call turn whose reasoning was not passed back whole."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from accounts.models import Team
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
