"""The openai flavor driven by the official ``openai`` SDK, the strictest client we have."""

from __future__ import annotations

import math
from collections.abc import Iterator

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from tests.fake_upstream.conftest import KEY, Fake, ServerThread

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello there"}]
TOOLS: list[ChatCompletionToolParam] = [
    {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}},
]


@pytest.fixture(scope="module")
def client(fake_server: ServerThread) -> Iterator[openai.OpenAI]:
    base_url = f"{fake_server.base_url}/v1"
    with openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0) as c:
        yield c


def test_chat_non_stream(client: openai.OpenAI, fake: Fake) -> None:
    result = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    choice = result.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content is not None
    assert choice.message.content.startswith("Echo: Hello there lorem ipsum")
    assert choice.finish_reason == "stop"
    assert result.model == "gpt-4o"
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (5, 20)
    assert result.usage.total_tokens == 25
    [record] = fake.requests()
    assert record["flavor"] == "openai"
    assert record["key_last4"] == KEY[-4:]
    assert record["body"]["messages"] == MESSAGES
    assert record["completed"] and not record["cancelled"]


def test_chat_max_tokens_and_n(client: openai.OpenAI) -> None:
    result = client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        max_completion_tokens=4,
        n=3,
    )
    assert len(result.choices) == 3
    assert [c.message.content for c in result.choices] == ["Echo: Hello there lorem"] * 3
    assert {c.finish_reason for c in result.choices} == {"length"}
    assert result.usage is not None
    assert result.usage.completion_tokens == 12


def test_cached_tokens_are_deterministic(client: openai.OpenAI) -> None:
    long: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "one two three four five six seven eight"}
    ]
    result = client.chat.completions.create(model="gpt-4o", messages=long)
    assert result.usage is not None
    assert result.usage.prompt_tokens == 11
    assert result.usage.prompt_tokens_details is not None
    assert result.usage.prompt_tokens_details.cached_tokens == 5


def test_chat_stream_with_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            max_tokens=6,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: Hello there lorem ipsum dolor"
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) == 6  # one token per chunk
    assert chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (5, 6)
    assert all(c.usage is None for c in chunks[:-1])


def test_chat_stream_without_usage_has_none(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            stream=True,
        )
    )
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_tool_call_stream(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            tools=TOOLS,
            stream=True,
        )
    )
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    first, *rest = calls
    assert first.index == 0
    assert first.id is not None and first.id.startswith("call_")
    assert first.type == "function"
    assert first.function is not None
    assert (first.function.name, first.function.arguments) == ("lookup", "")
    assert len(rest) >= 3
    arguments = "".join(tc.function.arguments or "" for tc in rest if tc.function)
    assert arguments == '{"q":"Hello"}'
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_tool_call_non_stream_named_and_none(client: openai.OpenAI) -> None:
    named = client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "other"}},
    )
    assert named.choices[0].finish_reason == "tool_calls"
    [call] = named.choices[0].message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == "other"
    assert call.function.arguments == '{"q":"Hello"}'
    plain = client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        tools=TOOLS,
        tool_choice="none",
    )
    assert plain.choices[0].message.tool_calls is None
    assert plain.choices[0].finish_reason == "stop"


def test_embeddings(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="text-embedding-3-small", input=["a b", "c"])
    assert [d.index for d in result.data] == [0, 1]
    assert all(len(d.embedding) == 8 for d in result.data)
    assert math.isclose(sum(v * v for v in result.data[0].embedding), 1.0, rel_tol=1e-3)
    assert result.usage.prompt_tokens == 3
    again = client.embeddings.create(model="text-embedding-3-small", input="a b", dimensions=32)
    assert len(again.data[0].embedding) == 32
    assert again.data[0].embedding[:2] != result.data[0].embedding[:2]  # dims change the hash


def test_models(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "gpt-4o" in ids
    assert client.models.retrieve("gpt-4o").owned_by == "openai"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_legacy_completions(client: openai.OpenAI) -> None:
    result = client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt="Say hi", max_tokens=4
    )
    assert result.choices[0].text == "Echo: Say hi lorem"
    assert result.choices[0].finish_reason == "length"
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (2, 4)
    chunks = list(
        client.completions.create(
            model="x", prompt="Say hi", stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices).startswith("Echo: Say hi")
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 20


def test_bad_key_is_rejected(fake: Fake) -> None:
    with (
        openai.OpenAI(base_url=f"{fake.base_url}/v1", api_key="bad-key-0000", max_retries=0) as bad,
        pytest.raises(openai.AuthenticationError) as info,
    ):
        bad.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert info.value.code == "invalid_api_key"
    assert fake.requests()[0]["key_last4"] == "0000"
