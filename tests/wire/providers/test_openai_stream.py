"""Pass-through translation of OpenAI-style streams, one provider quirk per test."""

from __future__ import annotations

import orjson

from wire.providers import Usage, get_adapter
from wire.providers.openai_compat import OpenAIStreamTranslator

from .helpers import fixture, payloads, sse_events, translate, upstream


def _translator(provider: str = "openai", *, wants_usage: bool = True) -> OpenAIStreamTranslator:
    translator = get_adapter("openai").stream_translator(
        "chat", upstream(provider), client_wants_usage=wants_usage
    )
    assert isinstance(translator, OpenAIStreamTranslator)
    return translator


def test_openai_stream_with_usage_is_forwarded_byte_for_byte() -> None:
    data = fixture("openai_stream_usage.sse")
    translator = _translator()

    assert translate(translator, [data]) == data
    assert translator.usage == Usage(prompt_tokens=19, completion_tokens=3)
    assert translator.completion_chars == len("Hello world!")
    assert translator.saw_done
    assert translator.error is None


def test_usage_chunk_is_dropped_when_the_client_did_not_ask_for_usage() -> None:
    data = fixture("openai_stream_usage.sse")
    events = sse_events(data)
    translator = _translator(wants_usage=False)

    out = translate(translator, [data])

    assert out == b"".join(events[:4]) + b"data: [DONE]\n\n"
    # Baton still bills what the dropped chunk said.
    assert translator.usage == Usage(prompt_tokens=19, completion_tokens=3)


def test_tool_call_names_and_argument_fragments_count_as_generated_text() -> None:
    translator = _translator()
    translate(translator, [fixture("openai_stream_tools.sse")])

    assert translator.completion_chars == len("get_weather") + len('{"location":"Paris"}')
    assert translator.usage == Usage(prompt_tokens=81, completion_tokens=16)


def test_moonshot_usage_inside_the_choice_gets_a_standard_usage_chunk() -> None:
    data = fixture("moonshot_stream.sse")
    translator = _translator("moonshot")

    out = translate(translator, [data])

    usage_chunk = {
        "id": "chatcmpl-6810567267ee4cfc",
        "object": "chat.completion.chunk",
        "created": 1745901362,
        "model": "moonshot-v1-8k",
        "choices": [],
        "usage": {
            "prompt_tokens": 19,
            "completion_tokens": 13,
            "total_tokens": 32,
            "prompt_tokens_details": {"cached_tokens": 8},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
    events = sse_events(data)
    assert out == (
        b"".join(events[:4]) + b"data: " + orjson.dumps(usage_chunk) + b"\n\n" + events[4]
    )
    assert translator.usage == Usage(prompt_tokens=19, completion_tokens=13, cached_tokens=8)
    assert translator.completion_chars == len("你好！")  # noqa: RUF001 - the fixture's text


def test_moonshot_stream_is_untouched_when_the_client_did_not_ask_for_usage() -> None:
    data = fixture("moonshot_stream.sse")
    translator = _translator("moonshot", wants_usage=False)

    assert translate(translator, [data]) == data
    assert translator.usage == Usage(prompt_tokens=19, completion_tokens=13, cached_tokens=8)


def test_siliconflow_running_totals_are_taken_as_the_last_value_not_summed() -> None:
    data = fixture("siliconflow_stream.sse")
    translator = _translator("siliconflow")

    out = translate(translator, [data])

    assert translator.usage == Usage(prompt_tokens=12, completion_tokens=3)
    *forwarded, usage_chunk, done = payloads(out)
    assert len(forwarded) == 4  # every content chunk, although each carries usage
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["prompt_tokens"] == 12
    assert usage_chunk["usage"]["completion_tokens"] == 3
    assert done == "[DONE]"


def test_deepseek_keep_alive_comments_are_forwarded_and_cache_hits_read() -> None:
    data = fixture("deepseek_stream.sse")
    translator = _translator("deepseek")

    out = translate(translator, [data])

    assert out == data
    assert out.startswith(b": keep-alive\n\n: keep-alive\n\n")
    assert translator.usage == Usage(
        prompt_tokens=1200, completion_tokens=7, cached_tokens=1024, reasoning_tokens=5
    )
    assert translator.completion_chars == len("Two plus two.") + len("4")


def test_zhipu_usage_on_the_finish_chunk_gets_a_usage_chunk() -> None:
    translator = _translator("zhipu")

    out = translate(translator, [fixture("zhipu_stream.sse")])

    *content, usage_chunk, done = payloads(out)
    assert [c["choices"][0]["delta"]["content"] for c in content] == ["你", "好", ""]
    assert usage_chunk == {
        "id": "20251126104512f1a2b3c4d5e6f7a8",
        "object": "chat.completion.chunk",
        "created": 1764125112,
        "model": "glm-4.6",
        "choices": [],
        "usage": {
            "prompt_tokens": 8,
            "completion_tokens": 2,
            "total_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
    assert done == "[DONE]"


def test_gemini_usage_on_the_last_chunk_counts_thinking_from_the_total() -> None:
    translator = _translator("gemini")

    out = translate(translator, [fixture("gemini_stream.sse")])

    # total 31 - prompt 5: the 24 thinking tokens Gemini leaves out of completion_tokens.
    assert translator.usage == Usage(prompt_tokens=5, completion_tokens=26)
    assert payloads(out)[-2]["usage"]["completion_tokens"] == 26


def test_minimax_final_chunk_usage_and_successful_base_resp() -> None:
    data = fixture("minimax_stream.sse")
    translator = _translator("minimax", wants_usage=False)

    assert translate(translator, [data]) == data
    assert translator.error is None
    assert translator.usage == Usage(prompt_tokens=71, completion_tokens=2)


def test_an_in_stream_error_becomes_an_openai_error_event_and_ends_the_stream() -> None:
    first = sse_events(fixture("openai_stream_usage.sse"))[1]
    error = b'data: {"error":{"message":"The server had an error","type":"server_error"}}\n\n'
    translator = _translator()

    out = translator.feed(first + error + b"data: [DONE]\n\n")

    assert out == first + (
        b'data: {"error":{"message":"The server had an error","type":"server_error",'
        b'"param":null,"code":null}}\n\n'
    )
    assert translator.error is not None
    assert (translator.error.status, translator.error.kind) == (500, "server")
    assert not translator.saw_done
    assert translator.feed(b"data: {}\n\n") == b""
    assert translator.finish() == b""


def test_a_minimax_base_resp_error_in_the_stream_is_an_error_event() -> None:
    event = (
        b'data: {"id":"x","choices":null,"base_resp":'
        b'{"status_code":1002,"status_msg":"rate limit exceeded(RPM)"}}\n\n'
    )
    translator = _translator("minimax")

    out = translator.feed(event)

    assert payloads(out) == [
        {
            "error": {
                "message": "rate limit exceeded(RPM)",
                "type": "rate_limit_error",
                "param": None,
                "code": "1002",
            }
        }
    ]
    assert translator.error is not None
    assert (translator.error.status, translator.error.retryable) == (429, True)


def test_a_malformed_chunk_is_not_forwarded_and_closes_the_stream() -> None:
    translator = _translator()

    out = translator.feed(b'data: {"id":"chatcmpl-1","choices":[{"delta"\n\ndata: [DONE]\n\n')

    assert payloads(out) == [
        {
            "error": {
                "message": "upstream sent a stream event that is not valid JSON",
                "type": "server_error",
                "param": None,
                "code": "upstream_malformed_chunk",
            }
        }
    ]
    assert translator.error is not None
    assert translator.error.status == 502
    assert translator.finish() == b""


def test_an_event_over_one_mebibyte_is_an_error_not_a_bigger_buffer() -> None:
    translator = _translator()
    head = b'data: {"choices":[{"index":0,"delta":{"content":"'
    piece = b"a" * 65536

    out = translator.feed(head)
    for _ in range(15):
        out += translator.feed(piece)
    out += translator.feed(b"a" * (65536 - len(head)))
    assert translator.error is None  # exactly 1 MiB buffered: at the limit, not over it
    out += translator.feed(b"a")

    assert translator.error is not None
    assert translator.error.code == "upstream_malformed_chunk"
    assert payloads(out)[0]["error"]["message"] == "upstream sent a stream event larger than 1 MiB"
    assert translator._splitter.take_tail() == b""  # the buffer was released
    assert translator.feed(piece) == b""


def test_done_is_emitted_when_the_upstream_ends_without_it() -> None:
    events = sse_events(fixture("openai_stream_usage.sse"))
    translator = _translator()

    out = translate(translator, [b"".join(events[:5])])

    assert out == b"".join(events)
    assert not translator.saw_done


def test_a_last_event_without_its_blank_line_is_still_read() -> None:
    events = sse_events(fixture("openai_stream_usage.sse"))
    translator = _translator()

    out = translate(translator, [b"".join(events[:5]) + b"data: [DONE]"])

    assert out == b"".join(events)
    assert translator.saw_done


def test_crlf_framed_streams_are_split_and_forwarded_as_received() -> None:
    data = fixture("openai_stream_usage.sse").replace(b"\n", b"\r\n")
    translator = _translator()

    out = translate(translator, [data])

    assert out == data.replace(b"data: [DONE]\r\n\r\n", b"data: [DONE]\n\n")
    assert translator.usage == Usage(prompt_tokens=19, completion_tokens=3)


def test_legacy_completions_stream_counts_text_and_labels_the_usage_chunk() -> None:
    translator = get_adapter("openai").stream_translator(
        "completions", upstream("vllm"), client_wants_usage=True
    )
    data = (
        b'data: {"id":"cmpl-1","object":"text_completion","created":1,"model":"m",'
        b'"choices":[{"index":0,"text":"Once upon","finish_reason":null}]}\n\n'
        b'data: {"id":"cmpl-1","object":"text_completion","created":1,"model":"m",'
        b'"choices":[{"index":0,"text":" a time","finish_reason":"length"}],'
        b'"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}\n\n'
        b"data: [DONE]\n\n"
    )

    out = translate(translator, [data])

    assert translator.completion_chars == len("Once upon a time")
    assert payloads(out)[-2]["object"] == "text_completion"
    assert payloads(out)[-2]["usage"]["completion_tokens"] == 4


def test_settle_usage_estimates_when_the_provider_sent_none() -> None:
    translator = _translator("hunyuan")
    events = sse_events(fixture("openai_stream_usage.sse"))
    translator.feed(b"".join(events[:4]))

    assert translator.usage is None
    assert translator.estimated_completion_tokens == 3  # "Hello world!": 12 ASCII characters
    assert translator.settle_usage(40) == Usage(
        prompt_tokens=40, completion_tokens=3, estimated=True
    )
    # Nothing to report to a client that asked for usage: no invented numbers.
    assert translator.finish() == b"data: [DONE]\n\n"


def test_settle_usage_fills_a_missing_completion_count() -> None:
    translator = _translator("gemini")
    translator.feed(
        b'data: {"id":"g","created":1,"model":"gemini-2.5-flash","object":"chat.completion.chunk",'
        b'"choices":[{"index":0,"delta":{"content":"12345678"},"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":5}}\n\n'
    )

    assert translator.settle_usage(99) == Usage(
        prompt_tokens=5, completion_tokens=2, estimated=True
    )
