"""The Anthropic Messages adapter: request conversion, responses, streams."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from wire.providers import Endpoint, UpstreamError, Usage, get_adapter
from wire.providers import anthropic as anthropic_module
from wire.providers.anthropic import AnthropicStreamTranslator

from .helpers import body_of, fixture, payloads, random_pieces, translate, upstream

ANTHROPIC = get_adapter("anthropic")
CREATED = 1764000000


@pytest.fixture(autouse=True)
def _frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(anthropic_module, "_now", lambda: float(CREATED))


def _claude(**overrides: Any) -> Any:
    fields: dict[str, Any] = {
        "base_url": "https://api.anthropic.com/v1",
        "api_key": "sk-ant-test",
        "model": "claude-sonnet-4-5",
    }
    fields.update(overrides)
    return upstream("anthropic", "anthropic", **fields)


def _build(body: dict[str, Any], *, stream: bool = False, **overrides: Any) -> dict[str, Any]:
    return body_of(ANTHROPIC.build_request("chat", body, _claude(**overrides), stream=stream).body)


def test_request_conversion_of_a_full_tool_conversation() -> None:
    body = {
        "model": "alias",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather here?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
                    },
                    {"type": "image_url", "image_url": {"url": "https://example.com/sky.jpg"}},
                ],
            },
            {"role": "user", "content": "Paris, please."},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": ""},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C, cloudy"},
            {"role": "tool", "tool_call_id": "call_2", "content": "14:05"},
            {"role": "user", "content": "Thanks. Summarise."},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            },
            {"type": "function", "function": {"name": "get_time"}},
        ],
        "tool_choice": "required",
        "stop": "END",
        "temperature": 1.5,
        "top_p": 0.9,
        "user": "user-42",
        "n": 1,
        "frequency_penalty": 0.5,
        "presence_penalty": 0.1,
        "logprobs": True,
        "seed": 7,
        "stream_options": {"include_usage": True},
    }

    request = ANTHROPIC.build_request("chat", body, _claude(), stream=True)

    assert request.method == "POST"
    assert request.url == "https://api.anthropic.com/v1/messages"
    assert request.headers == {
        "x-api-key": "sk-ant-test",
        "anthropic-version": "2023-06-01",
        "Content-Type": "application/json",
    }
    assert body_of(request.body) == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "stream": True,
        "system": [
            {"type": "text", "text": "You are terse."},
            {"type": "text", "text": "Use metric units."},
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather here?"},
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/png",
                            "data": "iVBORw0KGgo=",
                        },
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/sky.jpg"},
                    },
                    {"type": "text", "text": "Paris, please."},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "call_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                    {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "18C, cloudy"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "14:05"},
                    {"type": "text", "text": "Thanks. Summarise."},
                ],
            },
        ],
        "tools": [
            {
                "name": "get_weather",
                "description": "Current weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
            {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
        ],
        "tool_choice": {"type": "any"},
        "stop_sequences": ["END"],
        "temperature": 1.0,
        "top_p": 0.9,
        "metadata": {"user_id": "user-42"},
    }


def test_max_tokens_comes_from_the_client_then_the_target_default() -> None:
    messages = [{"role": "user", "content": "Hi"}]

    assert _build({"messages": messages, "max_tokens": 300})["max_tokens"] == 300
    assert (
        _build({"messages": messages, "max_completion_tokens": 200, "max_tokens": 300})[
            "max_tokens"
        ]
        == 200
    )
    assert _build({"messages": messages}, extras={"default_max_tokens": 1024})["max_tokens"] == 1024


def test_version_beta_and_models_request() -> None:
    target = _claude(extras={"anthropic_version": "2024-01-01", "anthropic_beta": ["a-1", "b-2"]})

    request = ANTHROPIC.build_request("models", {}, target, stream=False)

    assert (request.method, request.url, request.body) == (
        "GET",
        "https://api.anthropic.com/v1/models",
        None,
    )
    assert request.headers == {
        "x-api-key": "sk-ant-test",
        "anthropic-version": "2024-01-01",
        "anthropic-beta": "a-1,b-2",
    }


def test_tool_choice_forms_and_parallel_tool_calls() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    messages = [{"role": "user", "content": "Hi"}]
    named = {"type": "function", "function": {"name": "f"}}

    assert _build({"messages": messages, "tools": tools, "tool_choice": "auto"})["tool_choice"] == {
        "type": "auto"
    }
    assert _build({"messages": messages, "tools": tools, "tool_choice": "none"})["tool_choice"] == {
        "type": "none"
    }
    assert _build({"messages": messages, "tools": tools, "tool_choice": named})["tool_choice"] == {
        "type": "tool",
        "name": "f",
    }
    assert _build({"messages": messages, "tools": tools, "parallel_tool_calls": False})[
        "tool_choice"
    ] == {"type": "auto", "disable_parallel_tool_use": True}
    # tool_choice without tools is refused by Anthropic: it is not sent.
    assert "tool_choice" not in _build({"messages": messages, "tool_choice": "auto"})


def test_json_response_format_becomes_a_system_instruction() -> None:
    body = {
        "messages": [{"role": "user", "content": "List two colours"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "c", "schema": {"type": "object"}},
        },
    }

    assert _build(body)["system"] == [
        {
            "type": "text",
            "text": "Respond with a single valid JSON object, and nothing else, that conforms "
            'to this JSON Schema: {"type":"object"}',
        }
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "Hi"}], "n": 2}, "n"),
        ({"messages": []}, "messages"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}
                ]
            },
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "function": {"name": "f", "arguments": "{oops"}}
                        ],
                    }
                ]
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
    ],
)
def test_requests_anthropic_cannot_express_fail_early(body: dict[str, Any], param: str) -> None:
    with pytest.raises(UpstreamError) as caught:
        ANTHROPIC.build_request("chat", body, _claude(), stream=False)

    assert (caught.value.status, caught.value.kind, caught.value.param) == (
        400,
        "bad_request",
        param,
    )
    assert not caught.value.retryable


def test_completions_and_embeddings_are_unsupported_endpoints() -> None:
    endpoints: tuple[Endpoint, ...] = ("completions", "embeddings")
    for endpoint in endpoints:
        with pytest.raises(UpstreamError) as caught:
            ANTHROPIC.build_request(endpoint, {"prompt": "x"}, _claude(), stream=False)
        assert (caught.value.status, caught.value.code) == (400, "unsupported_endpoint")


def test_response_conversion_with_thinking_tool_use_and_cache_tokens() -> None:
    out, usage = ANTHROPIC.parse_response("chat", fixture("anthropic_response.json"), _claude())

    assert orjson.loads(out) == {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "object": "chat.completion",
        "created": CREATED,
        "model": "claude-sonnet-4-5-20250929",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Let me check.",
                    "tool_calls": [
                        {
                            "id": "toolu_01A09q90qw90lq917835lq9",
                            "type": "function",
                            "function": {
                                "name": "get_weather",
                                "arguments": '{"location":"Paris","unit":"celsius"}',
                            },
                        }
                    ],
                    "reasoning_content": "The user asks for Paris weather.",
                    # Whole, signature included (LiteLLM's convention): a client that keeps
                    # it can send the turn back to Anthropic, which checks the signature.
                    "thinking_blocks": [
                        {
                            "type": "thinking",
                            "thinking": "The user asks for Paris weather.",
                            "signature": "EqQBCgIYAhIM",
                        }
                    ],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 2050,
            "completion_tokens": 40,
            "total_tokens": 2090,
            "prompt_tokens_details": {"cached_tokens": 1800, "cache_write_tokens": 200},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
    assert usage == Usage(
        prompt_tokens=2050, completion_tokens=40, cached_tokens=1800, cache_write_tokens=200
    )


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
    ],
)
def test_stop_reasons(stop_reason: str, finish_reason: str) -> None:
    body = orjson.dumps(
        {
            "id": "msg_1",
            "model": "m",
            "content": [{"type": "text", "text": "x"}],
            "stop_reason": stop_reason,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }
    )
    out, _ = ANTHROPIC.parse_response("chat", body, _claude())

    assert orjson.loads(out)["choices"][0]["finish_reason"] == finish_reason


def test_models_list_becomes_an_openai_list() -> None:
    body = (
        b'{"data":[{"type":"model","id":"claude-sonnet-4-5-20250929","display_name":"Claude '
        b'Sonnet 4.5","created_at":"2025-09-29T00:00:00Z"}],"has_more":false,'
        b'"first_id":"claude-sonnet-4-5-20250929","last_id":"claude-sonnet-4-5-20250929"}'
    )
    out, usage = ANTHROPIC.parse_response("models", body, _claude())

    assert orjson.loads(out) == {
        "object": "list",
        "data": [
            {
                "id": "claude-sonnet-4-5-20250929",
                "object": "model",
                "created": 1759104000,
                "owned_by": "anthropic",
            }
        ],
    }
    assert usage == Usage()


def _stream(name: str, *, wants_usage: bool = True) -> tuple[bytes, AnthropicStreamTranslator]:
    translator = ANTHROPIC.stream_translator("chat", _claude(), client_wants_usage=wants_usage)
    assert isinstance(translator, AnthropicStreamTranslator)
    return translate(translator, [fixture(name)]), translator


def test_stream_with_thinking_text_and_tool_use() -> None:
    out, translator = _stream("anthropic_stream.sse")

    head = {
        "id": "msg_014p7gG3wDgGV9EUtLvnow3U",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": "claude-sonnet-4-5-20250929",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**head, "choices": [choice]}

    usage = {
        "prompt_tokens": 2620,
        "completion_tokens": 89,
        "total_tokens": 2709,
        "prompt_tokens_details": {"cached_tokens": 2048, "cache_write_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    assert payloads(out) == [
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning_content": "User wants weather."}),
        chunk(
            {
                "thinking_blocks": [
                    {
                        "type": "thinking",
                        "thinking": "",
                        "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",
                    }
                ]
            }
        ),
        chunk({"content": "Okay, let's check"}),
        chunk({"content": " the weather."}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"location":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Paris"}'}}]}),
        chunk({}, "tool_calls"),
        {**head, "choices": [], "usage": usage},
        "[DONE]",
    ]
    assert translator.usage == Usage(
        prompt_tokens=2620, completion_tokens=89, cached_tokens=2048, cache_write_tokens=100
    )
    assert translator.saw_done
    assert translator.completion_chars == len(
        'User wants weather.Okay, let\'s check the weather.get_weather{"location": "Paris"}'
    )


def test_stream_without_usage_request_has_no_usage_chunk() -> None:
    out, translator = _stream("anthropic_stream.sse", wants_usage=False)

    assert payloads(out)[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert payloads(out)[-1] == "[DONE]"
    assert translator.usage is not None


def test_stream_takes_the_larger_input_count_from_message_delta() -> None:
    _, translator = _stream("anthropic_stream_late_input.sse")

    assert translator.usage == Usage(prompt_tokens=25, completion_tokens=3)


def test_stream_error_event_is_an_openai_error_and_overloaded_is_503() -> None:
    out, translator = _stream("anthropic_stream_error.sse")

    assert payloads(out)[-1] == {
        "error": {
            "message": "Overloaded",
            "type": "server_error",
            "param": None,
            "code": "overloaded_error",
        }
    }
    assert translator.error is not None
    assert (translator.error.status, translator.error.kind) == (503, "overloaded")
    assert not translator.saw_done


def test_a_cut_stream_bills_the_larger_of_reported_and_estimated_output() -> None:
    translator = ANTHROPIC.stream_translator("chat", _claude(), client_wants_usage=True)
    data = fixture("anthropic_stream.sse")
    translator.feed(
        data[
            : data.index(
                b'event: content_block_stop\ndata: {"type":"content_block_stop","index":1}'
            )
        ]
    )

    settled = translator.settle_usage(999)
    # message_start said output_tokens=2; the text seen so far is worth more.
    assert settled.prompt_tokens == 2620
    assert settled.completion_tokens == translator.estimated_completion_tokens > 2
    assert settled.estimated


def test_anthropic_stream_chunking_does_not_change_the_output() -> None:
    data = fixture("anthropic_stream.sse")
    whole, _ = _stream("anthropic_stream.sse")
    rng = random.Random(7)
    for _ in range(20):
        translator = ANTHROPIC.stream_translator("chat", _claude(), client_wants_usage=True)
        assert translate(translator, random_pieces(data, rng)) == whole
