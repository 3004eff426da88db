"""Reasoning on chat endpoints: reasoning_content, MiniMax's <think>, and strict echo rules."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.fake_upstream.conftest import AUTH, KEY, Fake, ServerThread

TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
            },
        },
    }
]
PROMPT: Any = [{"role": "user", "content": "Please read_file `notes.txt` for me"}]
# flavor: (base, a model that thinks by default, exact refusal in strict mode)
THINKERS: dict[str, tuple[str, str, str]] = {
    "deepseek": (
        "/deepseek/v1",
        "deepseek-v4-flash",
        "The `reasoning_content` in the thinking mode must be passed back to the API.",
    ),
    "moonshot": (
        "/moonshot/v1",
        "kimi-k2.6",
        "thinking is enabled but reasoning_content is missing in assistant tool call message at "
        "index 1",
    ),
    "zhipu": (
        "/zhipu/v1",
        "glm-4.7",
        "messages[1]: reasoning_content of an assistant message with tool_calls must be passed "
        "back unchanged when thinking is enabled",
    ),
}


def client(server: ServerThread, base: str, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + base, api_key=key, max_retries=0)


def extra(obj: Any, name: str) -> Any:
    """A provider field the openai SDK does not declare (kept in ``model_extra``)."""
    return (obj.model_extra or {}).get(name)


def second_turn(assistant: dict[str, Any]) -> Any:
    call_id = assistant["tool_calls"][0]["id"]
    return [
        *PROMPT,
        assistant,
        {"role": "tool", "tool_call_id": call_id, "content": "hello from notes"},
    ]


def streamed_turn(sdk: openai.OpenAI, model: str, **kwargs: Any) -> dict[str, Any]:
    """Turn one streamed; the assistant message rebuilt from the deltas, reasoning included."""
    reasoning, content = "", ""
    calls: dict[int, dict[str, Any]] = {}
    kinds: list[str] = []
    for chunk in sdk.chat.completions.create(
        model=model, messages=PROMPT, tools=TOOLS, stream=True, **kwargs
    ):
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        if extra(delta, "reasoning_content"):
            reasoning += extra(delta, "reasoning_content")
            kinds.append("reasoning")
        if delta.content:
            content += delta.content
            kinds.append("content")
        for call in delta.tool_calls or []:
            kinds.append("tool")
            entry = calls.setdefault(call.index, {"id": None, "name": "", "arguments": ""})
            entry["id"] = call.id or entry["id"]
            if call.function is not None:
                entry["name"] += call.function.name or ""
                entry["arguments"] += call.function.arguments or ""
    assert kinds == sorted(kinds, key=["reasoning", "content", "tool"].index), kinds
    message: dict[str, Any] = {
        "role": "assistant",
        "content": content or None,
        "tool_calls": [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
            }
            for c in calls.values()
        ],
    }
    if reasoning:
        message["reasoning_content"] = reasoning
    return message


@pytest.mark.parametrize("flavor", sorted(THINKERS))
def test_reasoning_content_by_default(fake_server: ServerThread, flavor: str) -> None:
    base, model, _ = THINKERS[flavor]
    sdk = client(fake_server, base)
    hello: Any = [{"role": "user", "content": "Hello there"}]
    result = sdk.chat.completions.create(model=model, messages=hello, max_tokens=3)
    message = result.choices[0].message
    assert extra(message, "reasoning_content") == (
        "The user wrote Hello there and a short answer will do."
    )
    assert message.content == "Echo: Hello there"
    assert result.usage is not None
    assert result.usage.completion_tokens == 3 + 11
    chunks = list(
        sdk.chat.completions.create(
            model=model,
            messages=hello,
            max_tokens=3,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    order = [
        "r" if extra(d, "reasoning_content") else "c" for d in deltas if d.content or d.model_extra
    ]
    assert order == ["r"] * 11 + ["c"] * 3
    assert "".join(extra(d, "reasoning_content") or "" for d in deltas) == (
        "The user wrote Hello there and a short answer will do."
    )
    off = sdk.chat.completions.create(
        model=model, messages=hello, max_tokens=3, extra_body={"thinking": {"type": "disabled"}}
    )
    assert extra(off.choices[0].message, "reasoning_content") is None


def test_deepseek_reports_reasoning_tokens_and_v3_names_do_not_think(
    fake_server: ServerThread,
) -> None:
    sdk = client(fake_server, "/deepseek/v1")
    hello: Any = [{"role": "user", "content": "Hello there"}]
    result = sdk.chat.completions.create(model="deepseek-v4-pro", messages=hello, max_tokens=3)
    assert result.usage is not None and result.usage.completion_tokens_details is not None
    assert result.usage.completion_tokens_details.reasoning_tokens == 11
    plain = sdk.chat.completions.create(model="deepseek-chat", messages=hello, max_tokens=3)
    assert extra(plain.choices[0].message, "reasoning_content") is None
    asked = sdk.chat.completions.create(
        model="deepseek-chat",
        messages=hello,
        max_tokens=3,
        extra_body={"thinking": {"type": "enabled"}},
    )
    assert extra(asked.choices[0].message, "reasoning_content")


@pytest.mark.parametrize("flavor", sorted(THINKERS))
@pytest.mark.parametrize("streamed", [False, True])
def test_strict_reasoning_content_tool_loop(
    fake_server: ServerThread, flavor: str, streamed: bool
) -> None:
    base, model, refusal = THINKERS[flavor]
    strict = client(fake_server, f"/_f/strict_reasoning{base}")
    if streamed:
        assistant = streamed_turn(strict, model)
    else:
        first = strict.chat.completions.create(model=model, messages=PROMPT, tools=TOOLS)
        assert first.choices[0].finish_reason == "tool_calls"
        assistant = first.choices[0].message.model_dump(exclude_none=True)
    assert assistant["reasoning_content"].startswith("The user asks about Please read_file")
    call = assistant["tool_calls"][0]["function"]
    assert (call["name"], call["arguments"]) == ("read_file", '{"path":"notes.txt"}')

    done = strict.chat.completions.create(model=model, messages=second_turn(assistant), tools=TOOLS)
    assert done.choices[0].finish_reason == "stop"
    assert done.choices[0].message.content is not None
    assert done.choices[0].message.content.startswith("Echo: hello from notes")

    dropped = {k: v for k, v in assistant.items() if k != "reasoning_content"}
    with pytest.raises(openai.BadRequestError) as missing:
        strict.chat.completions.create(model=model, messages=second_turn(dropped), tools=TOOLS)
    assert isinstance(missing.value.body, dict)
    assert missing.value.body["message"] == refusal
    altered = {**assistant, "reasoning_content": assistant["reasoning_content"] + " Hmm."}
    with pytest.raises(openai.BadRequestError) as changed:
        strict.chat.completions.create(model=model, messages=second_turn(altered), tools=TOOLS)
    assert isinstance(changed.value.body, dict)
    assert changed.value.body["message"] == refusal
    # Without the directive the same history is fine; with thinking off nothing is checked.
    lenient = client(fake_server, base)
    lenient.chat.completions.create(model=model, messages=second_turn(dropped), tools=TOOLS)
    strict.chat.completions.create(
        model=model,
        messages=second_turn(dropped),
        tools=TOOLS,
        extra_body={"thinking": {"type": "disabled"}},
    )


def test_deepseek_refusal_is_its_exact_body(fake: Fake) -> None:
    history = [
        *PROMPT,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_unknown",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_unknown", "content": "x"},
    ]
    response = fake.http.post(
        "/_f/strict_reasoning/deepseek/v1/chat/completions",
        json={"model": "deepseek-v4-flash", "messages": history},
        headers=AUTH,
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "The `reasoning_content` in the thinking mode must be passed back to the "
            "API.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_request_error",
        }
    }


def test_reasoning_is_checked_against_what_was_produced_for_that_call(
    fake_server: ServerThread,
) -> None:
    strict = client(fake_server, "/_f/strict_reasoning/deepseek/v1")
    first = strict.chat.completions.create(model="deepseek-v4-flash", messages=PROMPT, tools=TOOLS)
    assistant = first.choices[0].message.model_dump(exclude_none=True)
    # A relay that restores the reasoning of another conversation is caught.
    other_prompt: Any = [{"role": "user", "content": "Please read_file `other.txt` now"}]
    other = strict.chat.completions.create(
        model="deepseek-v4-flash", messages=other_prompt, tools=TOOLS
    )
    swapped = {
        **assistant,
        "reasoning_content": extra(other.choices[0].message, "reasoning_content"),
    }
    with pytest.raises(openai.BadRequestError):
        strict.chat.completions.create(
            model="deepseek-v4-flash", messages=second_turn(swapped), tools=TOOLS
        )
    # The memory is per account: another key's history is judged on presence alone.
    stranger = client(fake_server, "/_f/strict_reasoning/deepseek/v1", key="sk-stranger-0000")
    stranger.chat.completions.create(
        model="deepseek-v4-flash", messages=second_turn(swapped), tools=TOOLS
    )


def test_minimax_think_inline_and_split(fake_server: ServerThread, fake: Fake) -> None:
    sdk = client(fake_server, "/minimax/v1")
    hello: Any = [{"role": "user", "content": "Hello there"}]
    inline = sdk.chat.completions.create(model="MiniMax-M2", messages=hello, max_tokens=3)
    content = inline.choices[0].message.content
    assert content == (
        "<think>\nThe user wrote Hello there and a short answer will do.\n</think>\n\n"
        "Echo: Hello there"
    )
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in sdk.chat.completions.create(
            model="MiniMax-M2", messages=hello, max_tokens=3, stream=True
        )
        if c.choices
    )
    assert streamed == content
    split = sdk.chat.completions.create(
        model="MiniMax-M2", messages=hello, max_tokens=3, extra_body={"reasoning_split": True}
    )
    assert split.choices[0].message.content == "Echo: Hello there"
    [detail] = extra(split.choices[0].message, "reasoning_details")
    assert detail["type"] == "reasoning.text"
    assert detail["text"] == "The user wrote Hello there and a short answer will do."
    pieces = [
        d["text"]
        for c in sdk.chat.completions.create(
            model="MiniMax-M2",
            messages=hello,
            max_tokens=3,
            stream=True,
            extra_body={"reasoning_split": True},
        )
        if c.choices
        for d in extra(c.choices[0].delta, "reasoning_details") or []
    ]
    assert "".join(pieces) == detail["text"]
    # MiniMax-Text-01 does not reason; M3 can be told not to; M2 cannot.
    text01 = sdk.chat.completions.create(model="MiniMax-Text-01", messages=hello, max_tokens=3)
    assert text01.choices[0].message.content == "Echo: Hello there"
    off: Any = {"thinking": {"type": "disabled"}}
    m3 = sdk.chat.completions.create(
        model="MiniMax-M3", messages=hello, max_tokens=3, extra_body=off
    )
    assert m3.choices[0].message.content == "Echo: Hello there"
    m2 = sdk.chat.completions.create(
        model="MiniMax-M2", messages=hello, max_tokens=3, extra_body=off
    )
    assert (m2.choices[0].message.content or "").startswith("<think>")


def test_minimax_strict_needs_the_think_block_whole(fake_server: ServerThread, fake: Fake) -> None:
    url = "/_f/strict_reasoning/minimax/v1/chat/completions"
    sdk = client(fake_server, "/_f/strict_reasoning/minimax/v1")
    first = sdk.chat.completions.create(model="MiniMax-M2", messages=PROMPT, tools=TOOLS)
    assistant = first.choices[0].message.model_dump(exclude_none=True)
    assert assistant["content"].startswith("<think>\nThe user asks about")
    assert assistant["content"].endswith("</think>\n\n")
    done = sdk.chat.completions.create(
        model="MiniMax-M2", messages=second_turn(assistant), tools=TOOLS
    )
    assert "</think>\n\nEcho: hello from notes lorem" in (done.choices[0].message.content or "")

    split = sdk.chat.completions.create(
        model="MiniMax-M2", messages=PROMPT, tools=TOOLS, extra_body={"reasoning_split": True}
    )
    kept = split.choices[0].message.model_dump(exclude_none=True)
    assert kept["reasoning_details"] and not kept.get("content")
    sdk.chat.completions.create(model="MiniMax-M2", messages=second_turn(kept), tools=TOOLS)

    for broken in (
        {**assistant, "content": None},
        {**assistant, "content": assistant["content"].replace("asks", "wants")},
        {k: v for k, v in kept.items() if k != "reasoning_details"},
    ):
        response = fake.http.post(
            url,
            json={"model": "MiniMax-M2", "messages": second_turn(broken), "tools": TOOLS},
            headers=AUTH,
        )
        # MiniMax's chat endpoint reports errors with HTTP 200 and a base_resp.
        assert response.status_code == 200
        assert response.json()["base_resp"] == {
            "status_code": 2013,
            "status_msg": "invalid params, the reasoning of the assistant tool call message at "
            "index 1 was not passed back whole (<think> in content or reasoning_details)",
        }


def test_qwen_reasons_only_when_asked(fake_server: ServerThread) -> None:
    sdk = client(fake_server, "/qwen/v1")
    hello: Any = [{"role": "user", "content": "Hello there"}]
    plain = sdk.chat.completions.create(model="qwen3-max", messages=hello, max_tokens=3)
    assert extra(plain.choices[0].message, "reasoning_content") is None
    asked = sdk.chat.completions.create(
        model="qwen3-max", messages=hello, max_tokens=3, extra_body={"enable_thinking": True}
    )
    assert extra(asked.choices[0].message, "reasoning_content")


@pytest.mark.parametrize("streamed", [False, True])
def test_plain_tool_loop_ends_in_text(fake_server: ServerThread, streamed: bool) -> None:
    sdk = client(fake_server, "/v1")
    first = sdk.chat.completions.create(model="gpt-4o", messages=PROMPT, tools=TOOLS)
    assistant = first.choices[0].message.model_dump(exclude_none=True)
    history = second_turn(assistant)
    if streamed:
        chunks = list(
            sdk.chat.completions.create(model="gpt-4o", messages=history, tools=TOOLS, stream=True)
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finishes = [
            c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
        ]
        assert finishes == ["stop"]
    else:
        done = sdk.chat.completions.create(model="gpt-4o", messages=history, tools=TOOLS)
        text = done.choices[0].message.content or ""
    assert text.startswith("Echo: hello from notes")
    forced = sdk.chat.completions.create(
        model="gpt-4o", messages=history, tools=TOOLS, tool_choice="required"
    )
    assert forced.choices[0].finish_reason == "tool_calls"
