"""The Responses dialect's pure parts: the chat pivot both ways and the native pass-through's
reading of a stream, on Codex-shaped bodies and hand-made streams (no network)."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from wire.base import Refusal, Upstream, UpstreamError
from wire.providers.responses_native import ResponsesNativeAdapter
from wire.translate.responses import Reply, responses_to_chat
from wire.translate.responses_stream import ChatToResponsesStream
from wire.usage import usage_from_responses

SECRET = "sk-Qf3vT9xLm2Rk8Wp4Zc7Hn1234"
CODEX_TOOLS: Any = [
    {
        "type": "function",
        "name": "exec_command",
        "description": "Run a command",
        "strict": False,
        "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}},
    },
    {
        "type": "custom",
        "name": "apply_patch",
        "description": "Patch files",
        "format": {"type": "text"},
    },
    {"type": "web_search"},
    {"type": "tool_search", "execution": "client"},
]


def frames(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if block.strip():
            name, data = block.split("\n")
            payload = orjson.loads(data.removeprefix("data: "))
            assert name == "event: " + payload["type"]
            out.append(payload)
    return out


def chat_sse(*chunks: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def delta(**fields: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "model": "glm-4.7", "choices": [{"index": 0, "delta": fields}]}


def test_a_codex_turn_becomes_one_chat_request() -> None:
    body: Any = {
        "model": "coder",
        "input": [
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "Rules"}],
            },
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "<env/>"}],
            },
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "run ls"}],
            },
            {
                "type": "reasoning",
                "id": "rs_baton_1",
                "summary": [{"type": "summary_text", "text": "shown"}],
                "content": [{"type": "reasoning_text", "text": "exact thought"}],
                "encrypted_content": "baton:v1:sealed",
            },
            {
                "type": "message",
                "role": "assistant",
                "phase": "commentary",
                "content": [{"type": "output_text", "text": "Listing."}],
            },
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_a",
                "name": "exec_command",
                "arguments": '{"cmd":"ls"}',
            },
            {
                "type": "custom_tool_call",
                "id": "ctc_1",
                "call_id": "call_b",
                "name": "apply_patch",
                "input": "*** Begin",
            },
            {
                "type": "custom_tool_call_output",
                "id": "cto_1",
                "call_id": "call_b",
                "output": "patched",
            },
            {"type": "function_call_output", "id": "fco_1", "call_id": "call_a", "output": "a.txt"},
        ],
        "tools": CODEX_TOOLS,
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"effort": "medium"},
        "text": {"verbosity": "low"},
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "session-1",
        "client_metadata": {"x": "y"},
        "stream": True,
    }
    chat = responses_to_chat(body)
    assert chat == {
        "model": "coder",
        "messages": [
            {"role": "system", "content": "Rules"},
            {"role": "user", "content": "<env/>"},
            {"role": "user", "content": "run ls"},
            {
                "role": "assistant",
                "content": "Listing.",
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "exec_command", "arguments": '{"cmd":"ls"}'},
                    },
                    {
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "apply_patch", "arguments": '{"input":"*** Begin"}'},
                    },
                ],
                "reasoning_content": "exact thought",
            },
            {"role": "tool", "tool_call_id": "call_a", "content": "a.txt"},
            {"role": "tool", "tool_call_id": "call_b", "content": "patched"},
        ],
        "prompt_cache_key": "session-1",
        "reasoning_effort": "medium",
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "exec_command",
                    "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}},
                    "strict": False,
                    "description": "Run a command",
                },
            },
            {
                "type": "function",
                "function": {
                    "name": "apply_patch",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "input": {
                                "type": "string",
                                "description": "The tool's whole input, as free text.",
                            }
                        },
                        "required": ["input"],
                    },
                    "description": "Patch files",
                },
            },
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_reasoning_goes_only_on_tool_call_turns_and_effort_none_turns_thinking_off() -> None:
    chat = responses_to_chat(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "hi"},
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [{"type": "summary_text", "text": "t"}],
                },
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "bye"},
            ],
            "reasoning": {"effort": "none"},
            "max_output_tokens": 100,
            "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
        }
    )
    assert chat["messages"][1] == {"role": "assistant", "content": "hello"}
    assert chat["thinking"] == {"type": "disabled"} and "reasoning_effort" not in chat
    assert chat["max_tokens"] == 100
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "x", "schema": {"type": "object"}},
    }


def _moved_loop(*turn: Any) -> Any:
    return {
        "model": "deepseek-v4-pro",
        "input": [
            {"role": "user", "content": "run ls"},
            *turn,
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_a",
                "name": "exec_command",
                "arguments": '{"cmd":"ls"}',
            },
            {"type": "function_call_output", "call_id": "call_a", "output": "a.txt"},
        ],
        "tools": CODEX_TOOLS,
        "reasoning": {"effort": "high"},
    }


SEALED_ELSEWHERE: Any = {  # OpenAI's reasoning as Codex keeps it: no summary asked, sealed
    "type": "reasoning",
    "id": "rs_0a1b",
    "summary": [],
    "content": None,
    "encrypted_content": "gAAAAABopenai-account-only",
}


def test_a_tool_call_turn_whose_reasoning_chat_cannot_read_is_sent_with_thinking_off() -> None:
    """A loop moved from a native target to a chat one: the turn's reasoning is another
    provider's encrypted_content, never sent; DeepSeek V4, Kimi and GLM in thinking mode
    refuse a tool-call turn without its reasoning_content, so thinking is turned off."""
    chat = responses_to_chat(_moved_loop(SEALED_ELSEWHERE))
    assert chat["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_a",
                "type": "function",
                "function": {"name": "exec_command", "arguments": '{"cmd":"ls"}'},
            }
        ],
    }
    assert "gAAAAA" not in orjson.dumps(chat).decode()
    assert chat["thinking"] == {"type": "disabled"} and "reasoning_effort" not in chat

    # Readable reasoning (a summary, a provider's reasoning_text) goes back: thinking stays on.
    shown = {**SEALED_ELSEWHERE, "summary": [{"type": "summary_text", "text": "Listing."}]}
    chat = responses_to_chat(_moved_loop(shown))
    assert chat["messages"][1]["reasoning_content"] == "Listing."
    assert "thinking" not in chat and chat["reasoning_effort"] == "high"
    # So does a turn with no reasoning item at all (the client's own history), and one whose
    # unreadable reasoning came before a message, not a tool call.
    assert "thinking" not in responses_to_chat(_moved_loop())
    answered: Any = _moved_loop()
    answered["input"][1:1] = [
        SEALED_ELSEWHERE,
        {"role": "assistant", "content": "Done before."},
        {"role": "user", "content": "and again"},
    ]
    assert "thinking" not in responses_to_chat(answered)


def test_refusals_say_what_chat_cannot_carry() -> None:
    for body, said in (
        ({"previous_response_id": "resp_1", "input": "x"}, "previous_response_id needs"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "item_reference needs"),
        (
            {"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}]},
            "No tool output found for function call c.",
        ),
        ({"background": True, "input": "x"}, "Background mode"),
    ):
        with pytest.raises(UpstreamError) as refused:
            responses_to_chat({"model": "m", **body})
        assert refused.value.status == 400 and said in refused.value.message


def test_a_chat_stream_becomes_the_responses_event_sequence() -> None:
    reply = Reply(
        {
            "tools": [{"type": "function", "name": "exec_command"}],
            "include": ["reasoning.encrypted_content"],
        },
        "coder",
        seal=lambda text: "sealed(" + text + ")",
    )
    stream = ChatToResponsesStream(reply)
    upstream = chat_sse(
        delta(role="assistant", reasoning_content="I should "),
        delta(reasoning_content="run it."),
        delta(content="Running."),
        delta(
            tool_calls=[
                {
                    "index": 0,
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "exec_command", "arguments": ""},
                }
            ]
        ),
        delta(tool_calls=[{"index": 0, "function": {"arguments": '{"cmd":'}}]),
        delta(tool_calls=[{"index": 0, "function": {"arguments": '"ls"}'}}]),
        {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {
            "id": "chatcmpl-1",
            "choices": [],
            "usage": {
                "prompt_tokens": 9,
                "completion_tokens": 7,
                "completion_tokens_details": {"reasoning_tokens": 4},
            },
        },
    )
    rng = random.Random(7)
    out = b""
    cut = 0
    while cut < len(upstream):  # any chunking gives the same events
        step = rng.randint(1, 40)
        out += stream.feed(upstream[cut : cut + step])
        cut += step
    out += stream.finish()
    events = frames(out)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = events[-1]["response"]
    reasoning, message, call = final["output"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "I should run it."}]
    assert reasoning["encrypted_content"] == "baton:sealed(I should run it.)"
    assert message["content"][0]["text"] == "Running."
    assert (call["call_id"], call["name"], call["arguments"]) == (
        "call_1",
        "exec_command",
        '{"cmd":"ls"}',
    )
    assert final["usage"] == {
        "input_tokens": 9,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 4},
        "total_tokens": 16,
    }
    assert {e["response"]["id"] for e in events if "response" in e} == {final["id"]}


def test_a_cut_translated_stream_fails_on_with_its_own_numbering() -> None:
    stream = ChatToResponsesStream(Reply({}, "m"))
    events = frames(stream.feed(chat_sse(delta(content="Hel"))[: -len(b"data: [DONE]\n\n")]))
    tail = frames(
        stream.failure_tail(Refusal(502, "broke off", "server_error", "upstream_stream_broken"))
    )
    assert [e["type"] for e in tail] == ["error", "response.failed"]
    assert tail[0]["sequence_number"] == events[-1]["sequence_number"] + 1
    assert tail[0]["code"] == "upstream_stream_broken"
    assert tail[1]["response"]["id"] == events[0]["response"]["id"]
    assert stream.finish() == b"" and stream.failure_tail(Refusal(502, "again")) == b""


NATIVE = Upstream(
    "openai",
    "openai",
    "https://api.openai.com/v1",
    SECRET,
    "gpt-5.5",
    natives={"responses": "https://api.openai.com/v1"},
)


def native_stream(*events: dict[str, Any]) -> bytes:
    out = b""
    for i, event in enumerate(events):
        payload = {**event, "sequence_number": i}
        out += b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
    return out


CREATED: Any = {
    "type": "response.created",
    "response": {"id": "resp_1", "model": "gpt-5.5", "created_at": 5},
}
USAGE: Any = {
    "input_tokens": 10,
    "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 6},
    "output_tokens": 12,
    "output_tokens_details": {"reasoning_tokens": 8},
    "total_tokens": 22,
}


def test_the_pass_through_reads_usage_ids_and_storage_from_the_stream() -> None:
    translator = ResponsesNativeAdapter().stream_translator(
        "responses", NATIVE, client_wants_usage=True
    )
    upstream = native_stream(
        CREATED,
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {"type": "reasoning", "id": "rs_1", "summary": []},
        },
        {
            "type": "response.function_call_arguments.delta",
            "item_id": "fc_1",
            "output_index": 1,
            "delta": '{"cmd":"ls"}',
        },
        {
            "type": "response.output_item.done",
            "output_index": 1,
            "item": {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_1",
                "name": "x",
                "arguments": "{}",
            },
        },
        {"type": "response.completed", "response": {"id": "resp_1", "store": True, "usage": USAGE}},
    )
    out = (
        b"".join(translator.feed(upstream[i : i + 1]) for i in range(len(upstream)))
        + translator.finish()
    )
    assert out == upstream  # byte for byte
    assert translator.tool_ids == ["rs_1", "call_1"]
    assert translator.stored_response == "resp_1" and translator.saw_done
    assert translator.settle_usage(0) == usage_from_responses(USAGE)
    usage = translator.settle_usage(0)
    assert (usage.prompt_tokens, usage.cached_tokens, usage.cache_write_tokens) == (10, 4, 6)
    assert (usage.completion_tokens, usage.reasoning_tokens, usage.estimated) == (12, 8, False)


@pytest.mark.parametrize("ends_with_failed", [True, False])
def test_an_upstream_error_event_is_scrubbed_and_the_stream_ends_failed(
    ends_with_failed: bool,
) -> None:
    translator = ResponsesNativeAdapter().stream_translator(
        "responses", NATIVE, client_wants_usage=True
    )
    leaked = f"Incorrect API key provided: {SECRET}"
    events: list[Any] = [
        CREATED,
        {"type": "error", "code": "server_error", "message": leaked, "param": None},
    ]
    if ends_with_failed:
        events.append(
            {
                "type": "response.failed",
                "response": {
                    "id": "resp_1",
                    "status": "failed",
                    "error": {"code": "server_error", "message": leaked},
                    "usage": USAGE,
                },
            }
        )
    out = translator.feed(native_stream(*events)) + translator.finish()
    assert SECRET not in out.decode() and "…1234" in out.decode()
    sent = frames(out)
    assert [e["type"] for e in sent] == ["response.created", "error", "response.failed"]
    assert [e["sequence_number"] for e in sent] == [0, 1, 2]
    assert sent[2]["response"]["id"] == "resp_1" and sent[2]["response"]["status"] == "failed"
    assert translator.error is not None and translator.error.code == "server_error"
    usage = translator.settle_usage(3)
    assert usage.completion_tokens == (12 if ends_with_failed else 0)


def test_a_malformed_upstream_event_ends_the_stream_as_a_failed_response() -> None:
    translator = ResponsesNativeAdapter().stream_translator(
        "responses", NATIVE, client_wants_usage=True
    )
    out = translator.feed(native_stream(CREATED) + b"event: response.in_progress\ndata: {oops\n\n")
    sent = frames(out)
    assert [e["type"] for e in sent] == ["response.created", "error", "response.failed"]
    assert [e["sequence_number"] for e in sent] == [0, 1, 2]
    assert sent[1]["code"] == "upstream_malformed_chunk"
    assert sent[2]["response"]["id"] == "resp_1"
    assert translator.error is not None and translator.finish() == b""
