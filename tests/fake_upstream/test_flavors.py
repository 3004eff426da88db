"""Each provider flavor's exact wire quirks, checked with raw HTTP (no SDK smoothing)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fake_upstream.conftest import AUTH, KEY, Fake, chat, sse_data

LONG = "one two three four five six seven eight"  # 8 words + 3 overhead = 11 prompt tokens
ON_REQUEST = [
    "/v1",
    "/openai/v1",
    "/qwen/v1",
    "/ark/v1",
    "/ollama/v1",
    "/vllm/v1",
    "/deepseek/v1",
    "/azure/openai/v1",
]
ALL_OPENAI_SHAPED = [
    *ON_REQUEST,
    "/moonshot/v1",
    "/siliconflow/v1",
    "/zhipu/v1",
    "/minimax/v1",
    "/gemini/v1beta/openai",
]


def headers_for(base: str) -> dict[str, str]:
    return {"api-key": KEY} if base.startswith("/azure") else AUTH


def stream(
    fake: Fake, url: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[str, list[Any]]:
    response = fake.http.post(url, json={**body, "stream": True}, headers=headers or AUTH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/event-stream"
    return response.text, sse_data(response.text)


@pytest.mark.parametrize("base", ALL_OPENAI_SHAPED)
def test_every_flavor_answers_chat(fake: Fake, base: str) -> None:
    response = fake.http.post(
        f"{base}/chat/completions", json=chat(max_tokens=3), headers=headers_for(base)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["choices"][0]["message"]["content"] == "Echo: Hello there"
    assert body["usage"]["prompt_tokens"] == 5
    assert body["usage"]["completion_tokens"] == 3
    _, events = stream(fake, f"{base}/chat/completions", chat(max_tokens=3), headers_for(base))
    assert events[-1] == "[DONE]"
    role_chunk = next(e for e in events if isinstance(e, dict) and e.get("choices"))
    assert role_chunk["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(
        e["choices"][0]["delta"].get("content") or ""
        for e in events
        if isinstance(e, dict) and e.get("choices")
    )
    assert text == "Echo: Hello there"


@pytest.mark.parametrize("base", ON_REQUEST)
def test_usage_only_on_request(fake: Fake, base: str) -> None:
    _, events = stream(fake, f"{base}/chat/completions", chat(), headers_for(base))
    assert not any("usage" in e for e in events if isinstance(e, dict))
    _, events = stream(
        fake,
        f"{base}/chat/completions",
        chat(stream_options={"include_usage": True}),
        headers_for(base),
    )
    *chunks, usage_chunk, done = events
    assert done == "[DONE]"
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == 20
    assert all(c["usage"] is None for c in chunks)


def test_deepseek_keep_alive_and_cache_fields(fake: Fake) -> None:
    text, events = stream(
        fake, "/deepseek/v1/chat/completions", chat(LONG, stream_options={"include_usage": True})
    )
    assert text.startswith(": keep-alive\n\n")
    usage = events[-2]["usage"]
    assert usage["prompt_tokens"] == 11
    assert usage["prompt_cache_hit_tokens"] == 5
    assert usage["prompt_cache_miss_tokens"] == 6
    assert usage["prompt_tokens_details"]["cached_tokens"] == 5
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0


def test_moonshot_usage_inside_choice(fake: Fake) -> None:
    _, events = stream(fake, "/moonshot/v1/chat/completions", chat(LONG))
    chunks = [e for e in events if isinstance(e, dict)]
    assert not any("usage" in c for c in chunks)
    final = chunks[-1]["choices"][0]
    assert final["finish_reason"] == "stop"
    assert final["usage"] == {
        "prompt_tokens": 11,
        "completion_tokens": 20,
        "total_tokens": 31,
        "cached_tokens": 5,
    }
    assert all("usage" not in c["choices"][0] for c in chunks[:-1])


def test_siliconflow_cumulative_usage_everywhere(fake: Fake) -> None:
    _, events = stream(fake, "/siliconflow/v1/chat/completions", chat(max_tokens=4))
    chunks = [e for e in events if isinstance(e, dict)]
    completions = [c["usage"]["completion_tokens"] for c in chunks]
    assert completions == [0, 1, 2, 3, 4, 4]
    assert {c["usage"]["prompt_tokens"] for c in chunks} == {5}


def test_zhipu_usage_on_finish_chunk(fake: Fake) -> None:
    _, events = stream(fake, "/zhipu/v1/chat/completions", chat(LONG))
    chunks = [e for e in events if isinstance(e, dict)]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 5}
    assert not any("usage" in c for c in chunks[:-1])


def test_gemini_usage_on_last_content_chunk(fake: Fake) -> None:
    _, events = stream(fake, "/gemini/v1beta/openai/chat/completions", chat(max_tokens=2))
    chunks = [e for e in events if isinstance(e, dict)]
    last = chunks[-1]
    assert last["choices"][0]["delta"] == {"content": "Hello"}
    assert last["choices"][0]["finish_reason"] == "length"
    assert last["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    assert not any("usage" in c for c in chunks[:-1])


@pytest.mark.parametrize("field", ["thinking", "web_search_options"])
def test_gemini_rejects_unknown_fields_with_an_array(fake: Fake, field: str) -> None:
    response = fake.http.post(
        "/gemini/v1beta/openai/chat/completions", json=chat(**{field: {}}), headers=AUTH
    )
    assert response.status_code == 400
    [item] = response.json()
    assert item["error"]["status"] == "INVALID_ARGUMENT"
    assert field in item["error"]["message"]


@pytest.mark.parametrize("field", ["stream_options", "parallel_tool_calls"])
def test_minimax_rejects_params_with_http_200(fake: Fake, field: str) -> None:
    response = fake.http.post(
        "/minimax/v1/chat/completions",
        json=chat(stream=True, **{field: {"include_usage": True}}),
        headers=AUTH,
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["base_resp"]["status_code"] == 2013
    assert response.json()["base_resp"]["status_msg"].startswith("invalid params")


def test_minimax_final_chunk_usage_and_ok_base_resp(fake: Fake) -> None:
    _, events = stream(fake, "/minimax/v1/chat/completions", chat())
    final = [e for e in events if isinstance(e, dict)][-1]
    assert final["usage"]["completion_tokens"] == 20
    assert final["base_resp"] == {"status_code": 0, "status_msg": ""}


def test_azure_classic_path(fake: Fake) -> None:
    url = "/azure/openai/deployments/gpt-4o-prod/chat/completions"
    missing = fake.http.post(url, json=chat(), headers={"api-key": KEY})
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": "404", "message": "Resource not found"}}
    body = {"messages": chat()["messages"], "stream_options": {"include_usage": True}}
    _, events = stream(fake, f"{url}?api-version=2024-10-21", body, {"api-key": KEY})
    first, role, content, *_ = events
    assert first["choices"] == []
    assert first["prompt_filter_results"][0]["content_filter_results"]["hate"]["filtered"] is False
    assert role["model"] == "gpt-4o-prod"
    assert role["choices"][0]["content_filter_results"] == {}
    assert content["choices"][0]["content_filter_results"]["violence"]["severity"] == "safe"
    assert events[-2]["choices"] == []
    assert events[-2]["usage"]["total_tokens"] == 25
    plain = fake.http.post(
        f"{url}?api-version=2024-10-21",
        json={"messages": body["messages"]},
        headers={"Authorization": f"Bearer {KEY}"},
    ).json()
    assert plain["prompt_filter_results"]
    assert plain["choices"][0]["content_filter_results"]["sexual"]["filtered"] is False
    assert fake.requests()[-1]["query"] == "api-version=2024-10-21"


AUTH_FAILURES: list[tuple[str, int, Any]] = [
    ("/v1", 401, {"error": {"type": "invalid_request_error", "code": "invalid_api_key"}}),
    ("/qwen/v1", 401, {"error": {"code": "invalid_api_key"}}),
    ("/deepseek/v1", 401, {"error": {"type": "authentication_error"}}),
    ("/moonshot/v1", 401, {"error": {"type": "invalid_authentication_error"}}),
    ("/zhipu/v1", 401, {"error": {"code": "1000"}}),
    ("/minimax/v1", 200, {"base_resp": {"status_code": 1004}}),
    ("/ark/v1", 401, {"error": {"code": "AuthenticationError", "type": "Unauthorized"}}),
    ("/azure/openai/v1", 401, {"error": {"code": "401"}}),
    ("/vllm/v1", 401, {"error": "Unauthorized"}),
    ("/siliconflow/v1", 401, {"message": "Invalid token"}),
    ("/ollama/v1", 401, {"error": {"message": "unauthorized"}}),
    ("/gemini/v1beta/openai", 400, [{"error": {"status": "INVALID_ARGUMENT"}}]),
]


def contains(actual: Any, expected: Any) -> bool:
    """``expected`` is a sub-structure of ``actual`` (dict keys subset, lists item-wise)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and contains(actual[k], v) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(contains(a, e) for a, e in zip(actual, expected, strict=True))
        )
    return bool(actual == expected)


@pytest.mark.parametrize(("base", "status", "shape"), AUTH_FAILURES)
def test_bad_key_shapes(fake: Fake, base: str, status: int, shape: Any) -> None:
    header = "api-key" if base.startswith("/azure") else "Authorization"
    value = "bad-key" if header == "api-key" else "Bearer bad-key"
    response = fake.http.post(f"{base}/chat/completions", json=chat(), headers={header: value})
    assert response.status_code == status
    assert contains(response.json(), shape), response.text


# Each provider's answer to a request without a key, as its error page documents it (the
# pages are listed in docs/providers.md): 401 in its own error shape; MiniMax answers
# HTTP 200 with a non-zero base_resp (1004, its auth code).
MISSING_KEY: dict[str, tuple[int, Any]] = {
    "/v1": (
        401,
        lambda b: (
            b["error"]["type"] == "invalid_request_error"
            and b["error"]["message"].startswith("You didn't provide an API key")
        ),
    ),
    "/openai/v1": (
        401,
        lambda b: (
            b["error"]["type"] == "invalid_request_error"
            and b["error"]["message"].startswith("You didn't provide an API key")
        ),
    ),
    "/qwen/v1": (401, lambda b: b["error"]["code"] == "invalid_api_key" and b["request_id"]),
    "/ark/v1": (
        401,
        lambda b: (
            (b["error"]["code"], b["error"]["type"]) == ("AuthenticationError", "Unauthorized")
        ),
    ),
    "/vllm/v1": (401, lambda b: b == {"error": "Unauthorized"}),
    "/deepseek/v1": (
        401,
        lambda b: (
            b["error"]["type"] == "authentication_error"
            and "no api key provided" in b["error"]["message"]
        ),
    ),
    "/azure/openai/v1": (
        401,
        lambda b: b["error"]["code"] == "401" and b["error"]["message"].startswith("Access denied"),
    ),
    "/moonshot/v1": (401, lambda b: b["error"]["type"] == "invalid_authentication_error"),
    "/siliconflow/v1": (401, lambda b: (b["code"], b["message"]) == (401, "Invalid token")),
    "/zhipu/v1": (401, lambda b: b["error"]["code"] == "1001"),
    "/minimax/v1": (200, lambda b: b["base_resp"]["status_code"] == 1004 and "choices" not in b),
    "/gemini/v1beta/openai": (
        401,
        lambda b: b[0]["error"]["code"] == 401 and b[0]["error"]["status"] == "UNAUTHENTICATED",
    ),
}


def test_every_openai_shaped_flavor_but_ollama_has_a_missing_key_answer() -> None:
    assert sorted(MISSING_KEY) == sorted(b for b in ALL_OPENAI_SHAPED if b != "/ollama/v1")


@pytest.mark.parametrize("base", sorted(MISSING_KEY))
def test_missing_key_is_rejected(fake: Fake, base: str) -> None:
    status, shape = MISSING_KEY[base]
    response = fake.http.post(f"{base}/chat/completions", json=chat())
    assert response.status_code == status, response.text
    assert shape(response.json()), response.text
    recorded = fake.requests()[-1]
    assert recorded["path"].endswith("/chat/completions") and recorded["key_last4"] is None


def test_ollama_ignores_missing_keys(fake: Fake) -> None:
    response = fake.http.post("/ollama/v1/chat/completions", json=chat())
    assert response.status_code == 200
    assert fake.requests()[-1]["key_last4"] is None


@pytest.mark.parametrize(
    ("base", "check"),
    [
        ("/v1", lambda b: b["error"]["type"] == "invalid_request_error"),
        ("/gemini/v1beta/openai", lambda b: b[0]["error"]["code"] == 400),
        ("/zhipu/v1", lambda b: b["error"]["code"] == "1214"),
        ("/moonshot/v1", lambda b: b["error"]["type"] == "invalid_request_error"),
    ],
)
def test_invalid_json_is_400_in_flavor_shape(fake: Fake, base: str, check: Any) -> None:
    response = fake.http.post(f"{base}/chat/completions", content=b"{nope", headers=AUTH)
    assert response.status_code == 400
    assert check(response.json())
    assert fake.requests()[-1]["body"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"messages": [{"role": "user", "content": "x"}]},
        {"model": "m", "messages": []},
        {"model": "m"},
    ],
)
def test_missing_model_or_messages(fake: Fake, body: dict[str, Any]) -> None:
    response = fake.http.post("/v1/chat/completions", json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["param"] in ("model", "messages")


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("/v1", "gpt-4o"),
        ("/siliconflow/v1", "Qwen/Qwen3-8B"),
        ("/gemini/v1beta/openai", "models/gemini-2.5-flash"),
        ("/ollama/v1", "llama3.2"),
    ],
)
def test_models_per_flavor(fake: Fake, base: str, expected: str) -> None:
    listing = fake.http.get(f"{base}/models", headers=AUTH).json()
    assert listing["object"] == "list"
    assert expected in [m["id"] for m in listing["data"]]
    detail = fake.http.get(f"{base}/models/{expected}", headers=AUTH)
    assert detail.status_code == 200
    assert detail.json()["id"] == expected
    assert fake.http.get(f"{base}/models/nope", headers=AUTH).status_code == 404


def test_embeddings_base64_and_token_arrays(fake: Fake) -> None:
    import base64
    import struct

    floats = fake.http.post(
        "/qwen/v1/embeddings", headers=AUTH, json={"model": "text-embedding-v4", "input": "hi"}
    ).json()
    encoded = fake.http.post(
        "/qwen/v1/embeddings",
        headers=AUTH,
        json={"model": "text-embedding-v4", "input": "hi", "encoding_format": "base64"},
    ).json()
    raw = base64.b64decode(encoded["data"][0]["embedding"])
    decoded = struct.unpack("<8f", raw)
    assert [round(v, 5) for v in decoded] == [round(v, 5) for v in floats["data"][0]["embedding"]]
    tokens = fake.http.post(
        "/v1/embeddings", headers=AUTH, json={"model": "m", "input": [[1, 2, 3], [4]]}
    ).json()
    assert tokens["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
    assert (
        fake.http.post("/v1/embeddings", headers=AUTH, json={"model": "m", "input": ""}).status_code
        == 400
    )


def test_wrong_method_and_unknown_paths(fake: Fake) -> None:
    assert fake.http.get("/v1/chat/completions", headers=AUTH).status_code == 405
    assert fake.http.post("/v1/nothing", headers=AUTH, json={}).status_code == 404
    assert fake.http.post("/mystery/v1/chat/completions", json={}).status_code == 404


def test_gemini_tool_stream_finishes_on_last_fragment(fake: Fake) -> None:
    tools = [{"type": "function", "function": {"name": "lookup"}}]
    _, events = stream(fake, "/gemini/v1beta/openai/chat/completions", chat(tools=tools))
    chunks = [e for e in events if isinstance(e, dict)]
    last = chunks[-1]["choices"][0]
    assert last["finish_reason"] == "tool_calls"
    assert last["delta"]["tool_calls"][0]["function"]["arguments"]
    assert chunks[-1]["usage"]["completion_tokens"] == 2  # "lookup" + '{"q":"Hello"}'
