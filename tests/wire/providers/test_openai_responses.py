"""Non-stream responses of OpenAI-compatible providers: pass-through plus usage."""

from __future__ import annotations

import orjson
import pytest

from wire.providers import UpstreamError, Usage, get_adapter

from .helpers import fixture, upstream

ADAPTER = get_adapter("openai")


def _completion(usage: object, /, **choice_extra: object) -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello there"},
                    "finish_reason": "stop",
                    **choice_extra,
                }
            ],
            "usage": usage,
        }
    )


def test_body_passes_through_unchanged_with_usage_read() -> None:
    body = _completion(
        {
            "prompt_tokens": 30,
            "completion_tokens": 12,
            "total_tokens": 42,
            "prompt_tokens_details": {"cached_tokens": 16},
            "completion_tokens_details": {"reasoning_tokens": 4},
        }
    )

    out, usage = ADAPTER.parse_response("chat", body, upstream())

    assert out is body
    assert usage == Usage(
        prompt_tokens=30, completion_tokens=12, cached_tokens=16, reasoning_tokens=4
    )


def test_deepseek_cache_hit_fields() -> None:
    body = _completion(
        {
            "prompt_tokens": 100,
            "completion_tokens": 5,
            "total_tokens": 105,
            "prompt_cache_hit_tokens": 64,
            "prompt_cache_miss_tokens": 36,
        }
    )
    _, usage = ADAPTER.parse_response("chat", body, upstream("deepseek"))

    assert usage == Usage(prompt_tokens=100, completion_tokens=5, cached_tokens=64)


def test_stepfun_top_level_cached_tokens() -> None:
    body = _completion(
        {"prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55, "cached_tokens": 32}
    )
    _, usage = ADAPTER.parse_response("chat", body, upstream("stepfun"))

    assert usage.cached_tokens == 32


def test_only_a_total_gives_completion_as_total_minus_prompt() -> None:
    body = _completion({"prompt_tokens": 10, "total_tokens": 25})
    _, usage = ADAPTER.parse_response("chat", body, upstream("hunyuan"))

    assert usage == Usage(prompt_tokens=10, completion_tokens=15)


def test_moonshot_usage_in_the_choice_is_also_put_at_top_level() -> None:
    choice_usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    body = _completion(None, usage=choice_usage)

    out, usage = ADAPTER.parse_response("chat", body, upstream("moonshot"))

    assert usage == Usage(prompt_tokens=7, completion_tokens=3)
    assert orjson.loads(out)["usage"] == choice_usage


def test_missing_usage_is_estimated_from_the_output() -> None:
    body = _completion(None)
    out, usage = ADAPTER.parse_response("chat", body, upstream("hunyuan"))

    assert out is body
    # "Hello there" is 11 ASCII characters; the prompt side is left to the caller.
    assert usage == Usage(prompt_tokens=0, completion_tokens=3, estimated=True)


def test_embeddings_usage_is_prompt_only() -> None:
    body = b'{"object":"list","data":[],"model":"m","usage":{"prompt_tokens":8,"total_tokens":8}}'

    out, usage = ADAPTER.parse_response("embeddings", body, upstream())

    assert out is body
    assert usage == Usage(prompt_tokens=8)


def test_minimax_error_inside_a_200_body_is_raised() -> None:
    with pytest.raises(UpstreamError) as caught:
        ADAPTER.parse_response("chat", fixture("minimax_base_resp_error.json"), upstream("minimax"))

    error = caught.value
    assert (error.status, error.kind, error.code, error.retryable) == (
        429,
        "quota",
        "insufficient_quota",
        True,
    )
    assert error.message == "insufficient balance"


@pytest.mark.parametrize(
    ("code", "status", "kind", "retryable"),
    [
        (1004, 401, "auth", True),
        (1002, 429, "rate_limit", True),
        (1000, 500, "server", True),
        (1001, 500, "server", True),
        (1024, 500, "server", True),
        (2013, 400, "bad_request", False),
    ],
)
def test_minimax_base_resp_codes(code: int, status: int, kind: str, retryable: bool) -> None:
    body = orjson.dumps({"base_resp": {"status_code": code, "status_msg": "x"}})
    with pytest.raises(UpstreamError) as caught:
        ADAPTER.parse_response("chat", body, upstream("minimax"))

    assert (caught.value.status, caught.value.kind, caught.value.retryable) == (
        status,
        kind,
        retryable,
    )


def test_an_error_object_in_a_200_body_is_raised() -> None:
    body = b'{"error":{"message":"model overloaded","type":"server_error","code":null}}'
    with pytest.raises(UpstreamError) as caught:
        ADAPTER.parse_response("chat", body, upstream("ollama"))

    assert (caught.value.status, caught.value.kind) == (500, "server")


def test_an_unparseable_200_body_is_a_retryable_bad_gateway() -> None:
    with pytest.raises(UpstreamError) as caught:
        ADAPTER.parse_response("chat", b"<html>oops</html>", upstream())

    assert (caught.value.status, caught.value.code, caught.value.retryable) == (
        502,
        "upstream_malformed_response",
        True,
    )
