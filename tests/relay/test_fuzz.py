"""The relay fuzzer: hostile requests against the real RelayApp, in process, with a warm key.

Hypothesis generates methods, paths, query strings, headers, bodies (invalid JSON, JSON
too deep or too wide, every known field with every wrong type, huge numbers, unicode)
and model names, and sends them through the ASGI interface of a started ``RelayApp``
whose team's credentials point at the fake upstream. Whatever comes in:

- the answer is one complete HTTP response;
- a 5xx is only ever 502, 503 or 504 (an upstream's failure passed on), never Baton's
  own 500 ``internal_error``;
- an error is JSON in the client's dialect, streamed errors included: Anthropic's shape on the
  Messages routes (and on ``/v1/models`` asked with ``anthropic-version``), OpenAI's elsewhere;
- every response header is a token name and a value a server can write (no CR, LF, NUL
  or other control characters).

The run is bounded (``FUZZ_EXAMPLES`` per test, a fixed seed so that ``make test`` sees
the same inputs every time); ``BATON_FUZZ_EXAMPLES=5000 BATON_FUZZ_RANDOM=1`` explores
further from a random seed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from django.conf import settings as django_settings
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from accounts import actions
from accounts.models import User
from gateway.asgi import RelayApp
from relay.catalog_seed import seed
from relay.models import Provider
from tests.relay.conftest import make_credential, make_key, make_route

FUZZ_EXAMPLES = int(os.environ.get("BATON_FUZZ_EXAMPLES", "500"))
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    derandomize=not os.environ.get("BATON_FUZZ_RANDOM"),
    database=None,  # nothing written into the working tree; failures print their example
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one started relay serves every example
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

ENDPOINTS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"]
MESSAGES_ENDPOINTS = ["/v1/messages", "/v1/messages/count_tokens"]
MODELS = [
    "gpt-4o",
    "claude",
    "claude-strict",
    "deepseek-claude",
    "text-embedding-3-small",
    "openai/demo-chat",
    "anthropic/claude-sonnet-4-5",
    "primary/demo-chat",
    "anthropic-cred/claude-haiku-4-5",
]
# Names a server may send (RFC 9110 tokens, lower-cased as ASGI gives them) and what
# uvicorn refuses in a value.
HEADER_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
BAD_HEADER_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# Anthropic's error types (https://docs.anthropic.com/en/api/errors).
ANTHROPIC_ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "overloaded_error",
    }
)


# --- driving the app -------------------------------------------------------------------


@dataclass
class Exchange:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class LoopThread:
    """An event loop in a thread of its own, as a server runs the relay."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


async def exchange(
    app: RelayApp,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    chunks: list[bytes],
    query: bytes = b"",
) -> Exchange:
    incoming = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks or [b""])
    ]
    finished = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        assert not finished.is_set(), f"sent after the response ended: {message}"
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            finished.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogatepass"),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    async with asyncio.timeout(20):
        await app(scope, receive, send)
    finished.set()
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1 and sent[0] is starts[0], sent
    bodies = sent[1:]
    assert bodies and all(m["type"] == "http.response.body" for m in bodies), sent
    assert not bodies[-1].get("more_body", False), "the response never ended"
    return Exchange(
        starts[0]["status"], list(starts[0]["headers"]), b"".join(m["body"] for m in bodies)
    )


def check_error(payload: Any) -> dict[str, Any]:
    assert isinstance(payload, dict) and set(payload) == {"error"}, payload
    error = payload["error"]
    assert isinstance(error, dict), payload
    assert isinstance(error.get("message"), str) and error["message"], payload
    assert isinstance(error.get("type"), str) and error["type"], payload
    assert "param" in error and isinstance(error["param"], str | None), payload
    assert "code" in error and isinstance(error["code"], str | None), payload
    return error


def check_anthropic_error(payload: Any) -> dict[str, Any]:
    assert isinstance(payload, dict) and set(payload) == {"type", "error"}, payload
    assert payload["type"] == "error", payload
    error = payload["error"]
    assert isinstance(error, dict) and set(error) == {"type", "message"}, payload
    assert error["type"] in ANTHROPIC_ERROR_TYPES, payload
    assert isinstance(error["message"], str) and error["message"], payload
    assert not error["message"].startswith("Baton hit an internal error"), payload
    return error


def speaks_anthropic(path: str, headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether Baton must answer this request in Anthropic's shapes."""
    if path in MESSAGES_ENDPOINTS:
        return True
    models = path == "/v1/models" or path.startswith("/v1/models/")
    return models and any(name == b"anthropic-version" for name, _ in headers)


def check(result: Exchange, anthropic: bool = False) -> None:
    """What holds for every response, whatever the request."""
    assert 200 <= result.status < 600, result
    for name, value in result.headers:
        assert isinstance(name, bytes) and HEADER_NAME.fullmatch(name), name
        assert isinstance(value, bytes) and not BAD_HEADER_VALUE.search(value), (name, value)
        value.decode("latin-1")
    content_type = dict(result.headers).get(b"content-type", b"")
    if content_type == b"text/event-stream":
        assert result.status == 200, result
        for line in result.body.decode().split("\n"):
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = orjson.loads(line[6:])
            if anthropic:
                assert isinstance(event, dict) and isinstance(event.get("type"), str), event
                if event["type"] == "error":
                    check_anthropic_error(event)
            elif isinstance(event, dict) and "error" in event:
                code = check_error(event)["code"]
                assert code != "internal_error", event
        return
    assert content_type == b"application/json", result
    payload = orjson.loads(result.body)
    if result.status >= 400:
        if anthropic:
            check_anthropic_error(payload)
        else:
            assert check_error(payload)["code"] != "internal_error", result
        if result.status >= 500:
            # An upstream's failure passed on (Anthropic's overloaded is 529), never Baton's own.
            assert result.status in ((502, 503, 504, 529) if anthropic else (502, 503, 504)), result
    else:
        assert isinstance(payload, dict), result


def error_label(result: Exchange, anthropic: bool) -> str:
    """The error's code (OpenAI) or type (Anthropic), for statistics and asserts."""
    if result.status < 400:
        return ""
    error = orjson.loads(result.body)["error"]
    return str(error["type"] if anthropic else error["code"])


# --- the relay under test ----------------------------------------------------------------


@dataclass
class Target:
    app: RelayApp
    runner: LoopThread
    key: str
    errors: list[logging.LogRecord]

    def send(
        self,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        chunks: list[bytes],
        query: bytes = b"",
    ) -> Exchange:
        self.errors.clear()
        result = self.runner.run(exchange(self.app, method, path, headers, chunks, query))
        anthropic = speaks_anthropic(path, headers)
        check(result, anthropic)
        # The spread of answers, shown by --hypothesis-show-statistics.
        streamed = dict(result.headers).get(b"content-type") == b"text/event-stream"
        event(f"{path} {result.status} {'' if streamed else error_label(result, anthropic)}")
        assert not self.errors, [r.getMessage() for r in self.errors]
        return result

    def auth(self) -> list[tuple[bytes, bytes]]:
        return [(b"authorization", b"Bearer " + self.key.encode())]


class ErrorCollector(logging.Handler):
    def __init__(self, sink: list[logging.LogRecord]) -> None:
        super().__init__(logging.ERROR)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record)


@pytest.fixture
def target(transactional_db: None, settings: Any, fake: Any, redis_client: Any) -> Iterator[Target]:
    settings.BATON_ALLOW_LOOPBACK_UPSTREAMS = True
    settings.BATON_FIRST_BYTE_TIMEOUT = 5.0
    settings.BATON_REQUEST_LOG = "off"
    seed(Provider)
    owner = User.objects.create_user("fuzz-owner@example.com", "x-sturdy-passphrase-1")
    team = actions.create_team(owner, name="Fuzz team")
    primary = make_credential(team, "primary", fake.base_url + "/v1")
    claude = make_credential(
        team, "anthropic-cred", fake.base_url + "/anthropic/v1", provider="anthropic"
    )
    strict = make_credential(
        team,
        "strict-cred",
        fake.base_url + "/_f/strict_reasoning;redacted/anthropic/v1",
        provider="anthropic",
    )
    deepseek = make_credential(
        team,
        "deepseek-cred",
        fake.base_url + "/deepseek/v1",
        provider="deepseek",
        extras={"dialects": {"messages": fake.base_url + "/deepseek/anthropic/v1"}},
    )
    make_route(team, "gpt-4o", (primary, "demo-chat", 0))
    make_route(team, "claude", (claude, "claude-sonnet-4-5", 0))
    make_route(team, "claude-strict", (strict, "claude-sonnet-4-5", 0))
    make_route(team, "deepseek-claude", (deepseek, "deepseek-v4-flash", 0))
    key = make_key(team)
    errors: list[logging.LogRecord] = []
    collector = ErrorCollector(errors)
    logging.getLogger("baton").addHandler(collector)
    runner = LoopThread()
    app = RelayApp()
    runner.run(app.startup())
    fuzz = Target(app, runner, key, errors)
    try:
        hello = orjson.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
        warm = runner.run(exchange(app, "POST", ENDPOINTS[0], fuzz.auth(), [hello]))
        assert warm.status == 200, warm  # the key and the team are in the relay's cache now
        yield fuzz
    finally:
        logging.getLogger("baton").removeHandler(collector)
        runner.run(app.shutdown())
        runner.close()


# --- strategies ------------------------------------------------------------------------


def mostly(usual: Any, unusual: Any) -> Any:
    """``usual`` four times in five: hostile input that is mostly well-formed gets past
    the first check and exercises what lies behind it."""
    return st.integers(0, 4).flatmap(lambda i: unusual if i == 4 else usual)


numbers = st.one_of(
    st.integers(min_value=-(2**31), max_value=2**31),
    st.integers(),  # beyond 64 bits now and then
    st.sampled_from([0, -1, 2**63, -(2**63) - 1, 10**30, 2**64]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e308, -1e308, 5e-324, -0.0]),
)
texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "\n", "\x00", "\u2028", "\ufeff", "🦜" * 10, "%s%n", "'; --"]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
roles = st.sampled_from(["system", "user", "assistant", "tool", "developer", "function"]) | texts
parts = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": texts | json_values}),
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["image_url", "input_audio", "file", "image"]),
            "image_url": st.fixed_dictionaries({"url": texts}) | json_values,
        }
    ),
    json_values,
)
tool_calls = st.lists(
    st.fixed_dictionaries(
        {
            "id": texts,
            "type": st.just("function") | texts,
            "function": st.fixed_dictionaries({"name": texts, "arguments": texts | json_values})
            | json_values,
        }
    )
    | json_values,
    max_size=3,
)
messages = st.one_of(
    st.lists(
        st.fixed_dictionaries(
            {"role": roles, "content": st.one_of(texts, st.lists(parts, max_size=3), json_values)},
            optional={"name": texts | json_values, "tool_calls": tool_calls | json_values},
        )
        | json_values,
        max_size=4,
    ),
    json_values,
)
# Responses input items: messages, tool calls and their outputs, reasoning, references.
response_items = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {
                "type": st.just("message"),
                "role": roles,
                "content": st.one_of(
                    texts,
                    st.lists(
                        st.fixed_dictionaries(
                            {
                                "type": st.sampled_from(
                                    ["input_text", "output_text", "input_image", "input_file"]
                                )
                                | texts,
                                "text": texts | json_values,
                            }
                        ),
                        max_size=3,
                    ),
                    json_values,
                ),
            },
            optional={"phase": texts | json_values},
        ),
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(["function_call", "custom_tool_call"]),
                "call_id": st.sampled_from(["call_1", "call_2"]) | texts,
                "name": texts | json_values,
                "arguments": texts | json_values,
            }
        ),
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(["function_call_output", "custom_tool_call_output"]),
                "call_id": st.sampled_from(["call_1", "call_2"]) | texts,
                "output": texts | json_values,
            }
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("reasoning"),
                "id": texts,
                "summary": json_values,
                "encrypted_content": st.sampled_from(["baton:v1:x", "gAAAAA"]) | texts,
            }
        ),
        st.fixed_dictionaries(
            {"type": st.sampled_from(["item_reference", "compaction", "web_search_call"]) | texts}
        ),
        json_values,
    ),
    max_size=5,
)
tools = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.just("function") | texts,
            "function": st.fixed_dictionaries(
                {"name": texts, "parameters": json_values}, optional={"description": texts}
            )
            | json_values,
        }
    )
    | st.fixed_dictionaries(  # Responses' shape: the name at the top, hosted tools, namespaces
        {
            "type": st.sampled_from(["function", "custom", "namespace", "web_search"]) | texts,
            "name": texts | json_values,
        },
        optional={"parameters": json_values, "tools": json_values, "format": json_values},
    )
    | json_values,
    max_size=3,
)
model_names = mostly(
    st.sampled_from(MODELS),
    st.one_of(
        texts,
        st.builds(
            "{}/{}".format,
            st.sampled_from(["openai", "anthropic", "primary", "anthropic-cred", "nope", ""]),
            st.text(max_size=60),
        ),
        st.text(min_size=250, max_size=300),
        json_values,
    ),
)
FIELDS: dict[str, Any] = {
    "stream": mostly(st.booleans(), json_values),
    "stream_options": mostly(
        st.fixed_dictionaries({"include_usage": st.booleans() | json_values}), json_values
    ),
    "messages": messages,
    "tools": tools | json_values,
    "tool_choice": st.sampled_from(["auto", "none", "required"]) | json_values,
    "max_tokens": numbers | json_values,
    "max_completion_tokens": numbers | json_values,
    "n": numbers | json_values,
    "temperature": numbers | json_values,
    "top_p": numbers | json_values,
    "stop": texts | st.lists(texts, max_size=5) | json_values,
    "seed": numbers | json_values,
    "user": texts | json_values,
    "response_format": st.fixed_dictionaries(
        {"type": st.sampled_from(["json_object", "json_schema", "text"]) | texts}
    )
    | json_values,
    "logit_bias": st.dictionaries(texts, numbers, max_size=3) | json_values,
    "logprobs": st.booleans() | json_values,
    "top_logprobs": numbers | json_values,
    "presence_penalty": numbers | json_values,
    "frequency_penalty": numbers | json_values,
    "functions": tools | json_values,
    "function_call": json_values,
    "parallel_tool_calls": st.booleans() | json_values,
    "prompt": texts | st.lists(texts | numbers, max_size=4) | json_values,
    "input": texts
    | st.lists(texts | numbers | st.lists(numbers), max_size=4)
    | response_items
    | json_values,
    "encoding_format": st.sampled_from(["float", "base64"]) | json_values,
    "dimensions": numbers | json_values,
    "suffix": texts | json_values,
    "echo": st.booleans() | json_values,
    "best_of": numbers | json_values,
    "metadata": json_values,
    "reasoning_effort": st.sampled_from(["low", "medium", "high"]) | json_values,
    "thinking": json_values,
    "system": json_values,
    "store": json_values,
    # The Responses API's own fields (input as items is below, with the other inputs).
    "instructions": texts | json_values,
    "max_output_tokens": numbers | json_values,
    "previous_response_id": texts | json_values,
    "include": st.lists(st.sampled_from(["reasoning.encrypted_content"]) | texts) | json_values,
    "reasoning": st.fixed_dictionaries(
        {"effort": st.sampled_from(["none", "low", "medium", "high"]) | texts}
    )
    | json_values,
    "text": st.fixed_dictionaries(
        {"format": st.fixed_dictionaries({"type": st.sampled_from(["json_object", "text"])})}
    )
    | json_values,
    "prompt_cache_key": texts | json_values,
}
bodies = st.fixed_dictionaries(
    {"model": model_names}, optional={name: strategy for name, strategy in FIELDS.items()}
)


# Anthropic Messages: content blocks of every kind Claude Code and the SDKs send, and junk.
cache_controls = st.fixed_dictionaries(
    {"type": st.just("ephemeral") | texts}, optional={"ttl": st.sampled_from(["5m", "1h"]) | texts}
)
blocks = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("text"), "text": texts | json_values},
        optional={"cache_control": cache_controls | json_values},
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("image"),
            "source": st.fixed_dictionaries(
                {
                    "type": st.sampled_from(["base64", "url", "file"]) | texts,
                    "media_type": st.just("image/png") | texts,
                    "data": texts,
                },
                optional={"url": texts},
            )
            | json_values,
        }
    ),
    st.fixed_dictionaries(
        {"type": st.just("tool_use"), "id": texts, "name": texts, "input": json_values}
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("tool_result"),
            "tool_use_id": texts | json_values,
            "content": texts | st.lists(json_values, max_size=2) | json_values,
        },
        optional={"is_error": json_values},
    ),
    st.fixed_dictionaries(
        {"type": st.just("thinking"), "thinking": texts | json_values, "signature": texts}
    ),
    st.fixed_dictionaries({"type": st.just("redacted_thinking"), "data": texts | json_values}),
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                ["document", "server_tool_use", "web_search_tool_result", "search_result"]
            )
            | texts
        }
    ),
    json_values,
)
anthropic_messages = mostly(
    st.lists(
        st.fixed_dictionaries(
            {
                "role": st.sampled_from(["user", "assistant"]),
                "content": mostly(texts, st.lists(blocks, max_size=3)),
            }
        ),
        min_size=1,
        max_size=4,
    ),
    st.one_of(
        st.lists(
            st.fixed_dictionaries(
                {"role": roles, "content": texts | st.lists(blocks, max_size=3) | json_values}
            )
            | json_values,
            max_size=4,
        ),
        json_values,
    ),
)
anthropic_tools = st.lists(
    st.fixed_dictionaries(
        {"name": texts, "input_schema": json_values},
        optional={
            "description": texts,
            "type": st.sampled_from(["custom", "web_search_20250305", "bash_20250124"]) | texts,
            "cache_control": cache_controls | json_values,
        },
    )
    | json_values,
    max_size=3,
)
good_tools = st.lists(
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(["read_file", "Bash", "get_weather"]),
            "input_schema": st.just({"type": "object", "properties": {"path": {"type": "string"}}}),
        }
    ),
    min_size=1,
    max_size=2,
)
MESSAGES_FIELDS: dict[str, Any] = {
    "stream": mostly(st.booleans(), json_values),
    "system": mostly(
        texts | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": texts})),
        st.lists(blocks, max_size=3) | json_values,
    ),
    "tools": mostly(good_tools, anthropic_tools | json_values),
    "tool_choice": mostly(
        st.sampled_from([{"type": "auto"}, {"type": "none"}]),
        st.fixed_dictionaries(
            {"type": st.sampled_from(["auto", "any", "tool", "none"]) | texts},
            optional={"name": texts, "disable_parallel_tool_use": json_values},
        )
        | json_values,
    ),
    "thinking": mostly(
        st.sampled_from(
            [
                {"type": "adaptive"},
                {"type": "disabled"},
                {"type": "enabled", "budget_tokens": 1024},
            ]
        ),
        st.fixed_dictionaries(
            {"type": st.sampled_from(["enabled", "adaptive", "disabled"]) | texts},
            optional={"budget_tokens": numbers | json_values},
        )
        | json_values,
    ),
    "metadata": st.fixed_dictionaries({"user_id": texts | json_values}) | json_values,
    "stop_sequences": st.lists(texts, max_size=3) | json_values,
    "temperature": numbers | json_values,
    "top_p": numbers | json_values,
    "top_k": numbers | json_values,
    "cache_control": cache_controls | json_values,
    "context_management": json_values,
    "output_config": st.fixed_dictionaries({"effort": texts}) | json_values,
    "service_tier": texts | json_values,
}
messages_bodies = st.builds(
    lambda body, drop: {k: v for k, v in body.items() if k != drop},
    st.fixed_dictionaries(
        {
            "model": model_names,
            "max_tokens": mostly(st.integers(1, 64) | st.just(2048), numbers | json_values),
            "messages": anthropic_messages,
        },
        optional=MESSAGES_FIELDS,
    ),
    st.sampled_from([None, None, None, None, "model", "max_tokens", "messages"]),
)
anthropic_headers = st.lists(
    st.tuples(
        st.sampled_from([b"anthropic-version", b"anthropic-beta"]),
        mostly(
            st.sampled_from(
                [
                    b"2023-06-01",
                    b"claude-code-20250219,interleaved-thinking-2025-05-14",
                    b"mid-conversation-system-2026-04-07",
                    b"token-counting-2024-11-01",
                ]
            ),
            st.binary(max_size=60),
        ),
    ),
    max_size=3,
)


@st.composite
def encoded(draw: st.DrawFn, body: Any) -> bytes:
    """``body`` as JSON text, ASCII-escaped or not, as the stdlib writes it (any int size)."""
    return json.dumps(body, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")


@st.composite
def chunked(draw: st.DrawFn, raw: bytes) -> list[bytes]:
    """``raw`` split into one to four ASGI body messages."""
    cuts = sorted(draw(st.lists(st.integers(0, len(raw)), max_size=3)))
    edges = [0, *cuts, len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(edges)]


@st.composite
def deep_or_wide(draw: st.DrawFn) -> tuple[bytes, int]:
    """A chat body with one field nested very deep, or very wide, written by hand (the
    JSON libraries refuse to write what is too deep), and how deep the body is."""
    field = draw(st.sampled_from(["messages", "tools", "metadata", "model", "stream_options"]))
    base = {"model": draw(st.sampled_from(MODELS)), "messages": [{"role": "user", "content": "x"}]}
    base.pop(field, None)
    if draw(st.booleans()):
        repeat = draw(st.integers(1, 1100))
        opener, closer, levels = draw(
            st.sampled_from([(b"[", b"]", 1), (b'{"a":', b"}", 1), (b'[{"a":', b"}]", 2)])
        )
        leaf = draw(st.sampled_from([b"1", b'"x"', b"null"]))
        inner, depth = opener * repeat + leaf + closer * repeat, 1 + levels * repeat
    else:
        width = draw(st.integers(1, 20000))
        item = draw(st.sampled_from([b"1", b'{"role":"user","content":"w"}', b'"w"', b"[]"]))
        inner, depth = b"[" + b",".join([item] * width) + b"]", 3
    return orjson.dumps(base)[:-1] + b',"' + field.encode() + b'":' + inner + b"}", depth


raw_bodies = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [b"", b"{", b"null", b"[]", b'"x"', b"1e999", b'{"model": NaN}', b"\xff\xfe", b"{}" * 3]
    ),
    bodies.flatmap(encoded),
    deep_or_wide().map(lambda pair: pair[0]),
    st.builds(lambda b: b.replace(b"}", b',"model":"gpt-4o"}', 1), st.just(b'{"messages":[]}')),
)
header_names = st.one_of(
    st.sampled_from(
        [
            *(b"authorization", b"api-key", b"x-api-key", b"content-length", b"content-type"),
            *(b"transfer-encoding", b"x-forwarded-for", b"host", b"accept"),
            *(b"anthropic-version", b"anthropic-beta"),
        ]
    ),
    st.binary(min_size=1, max_size=20),
)
header_values = st.one_of(
    st.binary(max_size=80),
    st.sampled_from([b"Bearer", b"Bearer ", b"bearer  x", b"-1", b"99999999999999999999", b""]),
)


@st.composite
def auth_headers(draw: st.DrawFn, key: str) -> list[tuple[bytes, bytes]]:
    good = key.encode()
    choice = draw(st.sampled_from(["bearer", "api-key", "x-api-key", "none", "garbage"]))
    if choice == "bearer":
        return [
            (b"authorization", draw(st.sampled_from([b"Bearer ", b"bearer ", b"BEARER "])) + good)
        ]
    if choice in ("api-key", "x-api-key"):
        return [(choice.encode(), good)]
    if choice == "garbage":
        mangled = draw(
            st.one_of(
                st.binary(max_size=60),
                st.builds(lambda b: b"sk-baton-" + b, st.binary(max_size=40)),
                st.just(good[:-1] + b"\x00"),
                st.just(good + b"\xff"),
            )
        )
        return [(draw(st.sampled_from([b"authorization", b"api-key", b"x-api-key"])), mangled)]
    return []


# --- the fuzz tests ------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_hostile_requests(target: Target, data: st.DataObject) -> None:
    path = data.draw(
        mostly(
            st.sampled_from(
                [
                    *ENDPOINTS,
                    *MESSAGES_ENDPOINTS,
                    "/v1/models",
                    "/v1/models/gpt-4o",
                    "/v1/responses/resp_1",
                ]
            ),
            st.builds("/v1/{}".format, st.text(max_size=30))
            | st.builds("/v1/messages{}".format, st.text(max_size=30))
            | st.builds("/v1/models/{}".format, st.text(max_size=30)),
        ),
        label="path",
    )
    method = data.draw(
        mostly(
            st.just("POST" if path in ENDPOINTS or path in MESSAGES_ENDPOINTS else "GET"),
            st.sampled_from(["POST", "GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
            | st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ-", min_size=1, max_size=12),
        ),
        label="method",
    )
    headers = data.draw(auth_headers(target.key), label="auth")
    headers += data.draw(st.lists(st.tuples(header_names, header_values), max_size=4))
    headers += data.draw(anthropic_headers, label="anthropic headers")
    body = data.draw(raw_bodies | messages_bodies.flatmap(encoded), label="body")
    query = data.draw(st.binary(max_size=40), label="query")
    target.send(method, path, headers, data.draw(chunked(body)), query)


@FUZZ
@given(data=st.data())
def test_hostile_bodies_with_a_good_key(target: Target, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(ENDPOINTS), label="path")
    body = data.draw(bodies, label="body")
    raw = data.draw(encoded(body))
    result = target.send("POST", path, target.auth(), data.draw(chunked(raw)))
    model = body["model"]
    if isinstance(model, str) and model and (len(model) > 256 or not model.isprintable()):
        assert result.status == 400 and orjson.loads(result.body)["error"]["code"] == (
            "invalid_model"
        )


@FUZZ
@given(data=st.data())
def test_hostile_messages_bodies_with_a_good_key(target: Target, data: st.DataObject) -> None:
    """Messages bodies of every shape, through native targets (Anthropic's own, DeepSeek's
    Anthropic endpoint, a strict one) and the chat pivot, with Anthropic's headers."""
    path = data.draw(st.sampled_from(MESSAGES_ENDPOINTS), label="path")
    body = data.draw(messages_bodies, label="body")
    raw = data.draw(encoded(body))
    key = data.draw(st.sampled_from([b"x-api-key", b"authorization"]), label="key header")
    auth = target.key.encode() if key == b"x-api-key" else b"Bearer " + target.key.encode()
    headers = [(key, auth), *data.draw(anthropic_headers, label="anthropic headers")]
    query = data.draw(st.sampled_from([b"", b"beta=true"]) | st.binary(max_size=20), label="query")
    result = target.send("POST", path, headers, data.draw(chunked(raw)), query)
    model = body.get("model")
    if isinstance(model, str) and model and (len(model) > 256 or not model.isprintable()):
        assert result.status == 400, result
    if "max_tokens" not in body and path == "/v1/messages" and result.status != 401:
        assert result.status in (400, 404), result  # refused before any upstream sees it


@FUZZ
@given(data=st.data())
def test_deep_and_wide_json(target: Target, data: st.DataObject) -> None:
    raw, depth = data.draw(deep_or_wide(), label="body")
    path = data.draw(st.sampled_from([*ENDPOINTS, *MESSAGES_ENDPOINTS]), label="path")
    result = target.send("POST", path, target.auth(), [raw])
    if path in MESSAGES_ENDPOINTS:
        error = orjson.loads(result.body).get("error") if result.status == 400 else None
        refused = error is not None and "JSON" in error["message"]
    else:
        refused = result.status == 400 and orjson.loads(result.body)["error"]["code"] == (
            "invalid_json"
        )
    if depth > 254:  # deeper than Baton can write back (past 1,024 the parser says so)
        assert refused, (depth, result)
    else:
        assert b"deeper than" not in result.body, (depth, result)


@FUZZ
@given(
    model=st.one_of(
        st.text(max_size=300),
        st.builds(
            "{}/{}".format,
            st.sampled_from(["openai", "anthropic", "primary", "anthropic-cred"]),
            st.text(min_size=1, max_size=80),
        ),
    ),
    stream=st.booleans(),
)
def test_model_names(target: Target, model: str, stream: bool) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    raw = json.dumps(body).encode()
    result = target.send("POST", "/v1/chat/completions", target.auth(), [raw])
    if model and (len(model) > 256 or not model.isprintable()):
        assert result.status == 400, result
    if result.status == 200:
        echoed = dict(result.headers)[b"x-baton-model"]
        assert echoed.isascii(), echoed


def test_the_checks_catch_a_broken_response() -> None:
    """The fuzzer's own assertions fail on what they exist to catch."""
    ok_headers = [(b"content-type", b"application/json")]
    internal = orjson.dumps(
        {"error": {"message": "x", "type": "server_error", "param": None, "code": "internal_error"}}
    )
    for broken in (
        Exchange(500, ok_headers, internal),
        Exchange(200, [*ok_headers, (b"x-baton-model", b"a\nb")], b"{}"),
        Exchange(400, ok_headers, b'{"detail": "not the OpenAI shape"}'),
        Exchange(200, [(b"content-type", b"text/html")], b"<html>"),
    ):
        with pytest.raises(AssertionError):
            check(broken)
    anthropic_internal = orjson.dumps(
        {"type": "error", "error": {"type": "api_error", "message": "Baton hit an internal error."}}
    )
    sse = [(b"content-type", b"text/event-stream")]
    for broken in (
        Exchange(500, ok_headers, anthropic_internal),
        Exchange(400, ok_headers, internal),  # OpenAI's shape on a Messages route
        Exchange(200, sse, b'event: error\ndata: {"type":"error","error":{"message":"x"}}\n\n'),
    ):
        with pytest.raises(AssertionError):
            check(broken, anthropic=True)
    good = orjson.dumps(
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    )
    check(Exchange(529, ok_headers, good), anthropic=True)
    assert django_settings.BATON_MAX_BODY_BYTES > 1_000_000  # the wide bodies fit


def test_anthropic_headers_that_cannot_be_forwarded_are_a_400(target: Target, fake: Any) -> None:
    """Found by the fuzzer: a control character in anthropic-version or anthropic-beta, which
    Baton forwards to native targets, made the upstream request fail (a 500)."""
    body = orjson.dumps(
        {"model": "claude", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    )
    fake.http.delete("/_fake/requests")
    for name, value in (
        (b"anthropic-version", b"2023-06-01\r\nx-injected: 1"),
        (b"anthropic-beta", b"interleaved-thinking-2025-05-14\x00"),
        (b"anthropic-beta", "über-beta".encode()),
    ):
        headers = [*target.auth(), (name, value)]
        result = target.runner.run(exchange(target.app, "POST", "/v1/messages", headers, [body]))
        check(result, anthropic=True)
        assert result.status == 400, result
        assert name.decode() in orjson.loads(result.body)["error"]["message"]
    assert fake.requests() == []
    ok = [*target.auth(), (b"anthropic-beta", b"interleaved-thinking-2025-05-14")]
    result = target.runner.run(exchange(target.app, "POST", "/v1/messages", ok, [body]))
    assert result.status == 200, result
    assert not target.errors
