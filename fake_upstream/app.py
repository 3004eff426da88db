"""The fake upstream as a bare ASGI app: routing, auth, validation, timing, faults, recording.

No framework on purpose: the benchmark pushes thousands of requests per second through this
process and the point is to measure Baton, not the fake. Shapes come from flavors.py, reply
text and counts from tokens.py, fault directives from faults.py.

Routes (each may be prefixed with ``/_f/{directives}``, see faults.py):

    /v1/...  /openai/v1/...                      OpenAI
    /{qwen,deepseek,moonshot,siliconflow,zhipu,minimax,ark,ollama,vllm}/v1/...
    /gemini/v1beta/openai/...                    Gemini OpenAI-compat
    /azure/openai/deployments/{d}/...?api-version=...   Azure classic (model = deployment)
    /azure/openai/v1/...                         Azure v1
      ... = POST chat/completions | completions | embeddings, GET models | models/{id}
    POST /v1/responses, /openai/v1/responses, /azure/openai/v1/responses,
         /{qwen,ark,deepseek,minimax}/v1/responses      Responses API (see responses.py);
         GET|DELETE .../responses/{id}, GET .../responses/{id}/input_items: stored ones
    /anthropic/v1/...                            Anthropic Messages (messages.py):
      POST messages | messages/count_tokens, GET models | models/{id}
    /{deepseek,qwen,zhipu,moonshot,minimax}/anthropic/v1/...
                                                 the same providers' Anthropic-compatible
      POST messages                              endpoints (messages.py); count_tokens and
                                                 models answer 404 there (only Anthropic
                                                 documents them)
    GET /_fake/health, GET|DELETE /_fake/requests      introspection for tests

Any query string is accepted (Claude Code sends ``?beta=true``) and recorded. The request
history also records the ``anthropic-version`` and ``anthropic-beta`` headers as received.
Reasoning (who thinks, signatures, strict echo rules) is in reasoning.py; which tool the fake
calls, and when it answers a tool result with text, in tools.py.

Disconnects are watched with a task that waits on ``receive()`` for ``http.disconnect`` (uvicorn
silently drops sends to a closed socket, so sending alone would never notice); every delay races
against that event, which lets a hung or slow response stop within milliseconds and be recorded
as ``cancelled``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson

from fake_upstream import faults as fault_mod
from fake_upstream import messages as messages_mod
from fake_upstream import reasoning, tools
from fake_upstream import responses as responses_mod
from fake_upstream.faults import Faults, FaultSyntaxError
from fake_upstream.flavors import (
    FLAVORS,
    KEEP_ALIVE,
    MODEL_LISTS,
    Event,
    Flavor,
    auth_failure,
    chat_body,
    completion_body,
    echo_message,
    embeddings_body,
    error,
    malformed,
    model_detail,
    new_id,
    openai_stream,
    reasoning_style,
    stream_error,
)
from fake_upstream.tokens import (
    Reply,
    ToolCall,
    content_text,
    count_tokens,
    embedding,
    embedding_base64,
    last_user_text,
    prompt_tokens,
    reply_length,
    reply_words,
)

Message = MutableMapping[str, Any]  # the standard ASGI typing, so any server accepts the app
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HISTORY = 1000
MAX_DIMENSIONS = 4096
_OPENAI_PREFIXES = frozenset(
    {
        "openai",
        "qwen",
        "deepseek",
        "moonshot",
        "siliconflow",
        "zhipu",
        "minimax",
        "ark",
        "ollama",
        "vllm",
    }
)
_POST_ENDPOINTS = frozenset({"chat/completions", "completions", "embeddings"})
_JSON = (b"content-type", b"application/json")
_SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
_HEALTH = b'{"status":"ok"}'
_INVALID_JSON = object()  # body parse result for a body that is not JSON


class DroppedConnection(Exception):
    """Raised into the server on ``drop_after`` so it closes the socket mid-body."""


class _HideDroppedConnections(logging.Filter):
    """Keep uvicorn from logging a traceback for every deliberately dropped stream."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


def _install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideDroppedConnections) for f in logger.filters):
        logger.addFilter(_HideDroppedConnections())


@dataclass(slots=True)
class Record:
    """One request as the tests see it through ``GET /_fake/requests``."""

    id: int
    method: str
    path: str
    query: str
    flavor: str | None
    key_last4: str | None
    body: Any
    started_at: float
    ended_at: float | None = None
    status: int | None = None
    stream: bool = False
    completed: bool = False
    cancelled: bool = False
    endpoint: str | None = None  # "chat/completions", "responses", "messages", "models"...
    # As received, so tests can assert a relay forwarded them (None = header absent).
    anthropic_version: str | None = None
    anthropic_beta: str | None = None


@dataclass(slots=True)
class Route:
    flavor: Flavor
    endpoint: str
    deployment: str | None = None  # Azure classic: the model comes from the URL
    azure_classic: bool = False


@dataclass(slots=True)
class JsonOut:
    status: int
    body: bytes
    tokens: int = 0  # completion tokens, so non-streams can take n/tps seconds
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class StreamOut:
    events: Iterator[Event]
    keep_alive: bool = False
    # The stream's own in-band failure for ``error_after`` (default: flavors.stream_error).
    on_error: Callable[[str | None], bytes] | None = None


Outcome = JsonOut | StreamOut


def resolve(path: str) -> Route | None:
    """Map a path (fault prefix already removed) to a flavor and an endpoint."""
    if path.startswith("/v1/"):
        return Route(FLAVORS["openai"], path[4:])
    if path.startswith("/gemini/v1beta/openai/"):
        return Route(FLAVORS["gemini"], path[len("/gemini/v1beta/openai/") :])
    if path.startswith("/anthropic/v1/"):
        return Route(FLAVORS["anthropic"], path[len("/anthropic/v1/") :])
    if path.startswith("/azure/openai/v1/"):
        return Route(FLAVORS["azure"], path[len("/azure/openai/v1/") :])
    if path.startswith("/azure/openai/deployments/"):
        deployment, _, endpoint = path[len("/azure/openai/deployments/") :].partition("/")
        if not deployment:
            return None
        return Route(FLAVORS["azure"], endpoint, deployment=deployment, azure_classic=True)
    prefix, _, rest = path[1:].partition("/")
    if rest.startswith("anthropic/v1/") and prefix in messages_mod.FLAVORS_WITH_MESSAGES:
        return Route(messages_mod.FLAVORS_WITH_MESSAGES[prefix], rest[len("anthropic/v1/") :])
    if prefix in _OPENAI_PREFIXES and rest.startswith("v1/"):
        return Route(FLAVORS[prefix], rest[3:])
    return None


def _bearer(headers: dict[bytes, bytes]) -> str | None:
    value = headers.get(b"authorization", b"").decode("latin-1")
    if value[:7].lower() == "bearer " and value[7:].strip():
        return value[7:].strip()
    return None


def api_key(fl: Flavor, headers: dict[bytes, bytes]) -> str | None:
    """The credential a provider reads: x-api-key (or Bearer) on Messages endpoints, Azure's
    api-key, else Bearer."""
    if fl.kind == "anthropic":
        raw = headers.get(b"x-api-key")
        return raw.decode("latin-1") if raw else _bearer(headers)
    if fl.name == "azure" and headers.get(b"api-key"):
        return headers[b"api-key"].decode("latin-1")
    return _bearer(headers)


def _bad_request(fl: Flavor, message: str, param: str | None = None) -> JsonOut:
    status, body = error(fl, 400, message, param=param)
    return JsonOut(status, body)


def _positive_int(body: dict[str, Any], key: str, upper: int | None = None) -> int | None:
    """``body[key]`` as a positive int, ``None`` when absent; ValueError when invalid."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(key)
    if upper is not None and value > upper:
        raise ValueError(key)
    return int(value)


# --- endpoint handlers (pure: parsed request in, outcome out) --------------------------------


def handle_chat(
    fl: Flavor,
    route: Route,
    body: dict[str, Any],
    faults: Faults,
    key: str | None = None,
    memory: reasoning.ReasoningMemory | None = None,
) -> Outcome:
    """Chat completions; thinking flavors add reasoning (and check it in strict mode)."""
    model = body.get("model") or route.deployment
    if not isinstance(model, str) or not model:
        return _bad_request(fl, "you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _bad_request(fl, "[] is too short - 'messages'", "messages")
    if fl.name == "minimax":
        for key in ("stream_options", "parallel_tool_calls"):
            if key in body:
                return _bad_request(fl, f"invalid params, unknown field '{key}'")
    if fl.name == "gemini":
        for key in ("thinking", "web_search_options"):
            if key in body:
                return _bad_request(
                    fl, f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'
                )
    try:
        cap = _positive_int(body, "max_completion_tokens")
        if cap is None:
            cap = _positive_int(body, "max_tokens")
        n = _positive_int(body, "n", 128) or 1
    except ValueError as exc:
        return _bad_request(fl, f"Invalid value for '{exc}'.", str(exc))
    account = key or ""
    memory = memory if memory is not None else reasoning.ReasoningMemory()
    thinks = reasoning.chat_thinking(fl.name, model, body)
    if faults.strict_reasoning and thinks:
        refusal = reasoning.check_chat(fl.name, messages, account, memory)
        if refusal is not None:
            return JsonOut(*error(fl, 400, refusal[0], code=refusal[1]))
    prompt = prompt_tokens(messages)
    after = tools.after_tool_result(messages)
    last = messages[-1] if isinstance(messages[-1], dict) else {}
    text = content_text(last.get("content")) if after else last_user_text(messages)
    picked = tools.pick(body.get("tools"), body.get("tool_choice"), text, messages, dialect="chat")
    thought = ""
    if thinks:
        thought = reasoning.thinking_text(text, picked[0] if picked else None, after)
    if picked is not None:
        call = ToolCall(new_id("call_"), picked[0], tools.arguments(picked[1], text))
        reply = Reply((), False, call, reasoning=thought)
        if thought:
            memory.remember(account, call.id, thought)
    else:
        length, capped = reply_length(cap, faults.chunks, cap_is_target=True)
        reply = Reply(reply_words(text, length), capped, reasoning=thought)
    style = reasoning_style(fl, body.get("reasoning_split") is True)
    if body.get("stream") is True:
        options = body.get("stream_options")
        include = isinstance(options, dict) and options.get("include_usage") is True
        events = openai_stream(
            fl, reply, model=model, prompt=prompt, include_usage=include, chat=True, style=style
        )
        return StreamOut(events, keep_alive=fl.name == "deepseek")
    out = chat_body(fl, reply, model=model, prompt=prompt, n=n, style=style)
    return JsonOut(200, orjson.dumps(out), reply.completion_tokens)


def _prompt_input(prompt: object) -> tuple[str, int]:
    """Echo text and token count of a legacy ``prompt`` (string, strings, or token ids)."""
    if isinstance(prompt, str):
        return prompt, count_tokens(prompt)
    if isinstance(prompt, list) and prompt:
        if all(isinstance(p, str) for p in prompt):
            return prompt[0], sum(count_tokens(p) for p in prompt)
        if all(isinstance(p, int) for p in prompt):
            return "", len(prompt)
        return "", sum(len(p) for p in prompt if isinstance(p, list))
    return "", 0


def handle_completions(fl: Flavor, route: Route, body: dict[str, Any], faults: Faults) -> Outcome:
    model = body.get("model") or route.deployment
    if not isinstance(model, str) or not model:
        return _bad_request(fl, "you must provide a model parameter", "model")
    try:
        cap = _positive_int(body, "max_tokens")
        n = _positive_int(body, "n", 128) or 1
    except ValueError as exc:
        return _bad_request(fl, f"Invalid value for '{exc}'.", str(exc))
    text, prompt = _prompt_input(body.get("prompt", ""))
    length, capped = reply_length(cap, faults.chunks, cap_is_target=True)
    reply = Reply(reply_words(text, length), capped)
    if body.get("stream") is True:
        options = body.get("stream_options")
        include = isinstance(options, dict) and options.get("include_usage") is True
        events = openai_stream(
            fl, reply, model=model, prompt=prompt, include_usage=include, chat=False
        )
        return StreamOut(events, keep_alive=fl.name == "deepseek")
    out = completion_body(fl, reply, model=model, prompt=prompt, n=n)
    return JsonOut(200, orjson.dumps(out), reply.completion_tokens)


def handle_embeddings(fl: Flavor, route: Route, body: dict[str, Any]) -> Outcome:
    model = body.get("model") or route.deployment
    if not isinstance(model, str) or not model:
        return _bad_request(fl, "you must provide a model parameter", "model")
    raw = body.get("input")
    if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)):
        raw = [raw]
    if (
        not isinstance(raw, list)
        or not raw
        or any(not isinstance(item, str | list) or item in ("", []) for item in raw)
    ):
        return _bad_request(fl, "'input' must be a non-empty string or array", "input")
    try:
        dims = _positive_int(body, "dimensions", MAX_DIMENSIONS) or 8
    except ValueError:
        return _bad_request(
            fl, f"'dimensions' must be between 1 and {MAX_DIMENSIONS}", "dimensions"
        )
    as_base64 = body.get("encoding_format") == "base64"
    vectors: list[object] = []
    prompt = 0
    for item in raw:
        text = item if isinstance(item, str) else " ".join(map(str, item))
        prompt += count_tokens(text) if isinstance(item, str) else len(item)
        vec = embedding(text, dims)
        vectors.append(embedding_base64(vec) if as_base64 else vec)
    return JsonOut(200, orjson.dumps(embeddings_body(model, vectors, prompt)))


# --- per-request plumbing ----------------------------------------------------------------------


class Exchange:
    """One request/response cycle: sending, disconnect watching and its history record."""

    __slots__ = ("_receive", "_send", "_watcher", "cancelled", "record")

    def __init__(self, receive: Receive, send: Send, record: Record) -> None:
        self._receive = receive
        self._send = send
        self.record = record
        self.cancelled = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None

    async def _watch_disconnect(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.cancelled.set()

    def watch(self) -> None:
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch_disconnect())

    def _unwatch(self) -> None:
        # Must happen before the final send: uvicorn reports a finished response as a
        # disconnect, which would otherwise look like a client that went away.
        if self._watcher is not None:
            self._watcher.cancel()

    async def pause(self, seconds: float) -> bool:
        """Wait ``seconds`` unless the client leaves first; True means it left."""
        if seconds > 0:
            self.watch()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.cancelled.wait(), seconds)
        return self.cancelled.is_set()

    async def until_disconnect(self) -> None:
        self.watch()
        await self.cancelled.wait()

    async def respond(
        self, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        self._unwatch()
        self.record.status = status
        all_headers = [
            _JSON,
            (b"content-length", b"%d" % len(body)),
            (b"x-request-id", b"%d" % self.record.id),
            *(headers or ()),
        ]
        await self._send({"type": "http.response.start", "status": status, "headers": all_headers})
        await self._send({"type": "http.response.body", "body": body})
        self.record.completed = True

    async def start_stream(self) -> None:
        self.watch()
        self.record.status = 200
        await self._send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*_SSE_HEADERS, (b"x-request-id", b"%d" % self.record.id)],
            }
        )

    async def chunk(self, data: bytes) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def end_stream(self, data: bytes = b"") -> None:
        self._unwatch()
        await self._send({"type": "http.response.body", "body": data})
        self.record.completed = True

    def close(self) -> None:
        self._unwatch()
        self.record.ended_at = time.time()
        if self.cancelled.is_set() and not self.record.completed:
            self.record.cancelled = True


def _header(headers: dict[bytes, bytes], name: bytes) -> str | None:
    raw = headers.get(name)
    return None if raw is None else raw.decode("latin-1")


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client left while sending it."""
    message = await receive()
    if message["type"] == "http.disconnect":
        return None
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    parts = [body]
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


async def _send_json(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [_JSON, (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_openai_error(send: Send, status: int, message: str) -> None:
    """For requests that never reach a flavor (bad directive, unknown path): OpenAI's shape."""
    error_body = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    await _send_json(send, status, orjson.dumps({"error": error_body}))


class FakeUpstream:
    """The ASGI callable; holds the defaults and the request history of one server."""

    def __init__(
        self, *, default_latency_ms: float = 0, default_tps: float = 0, jitter_ms: float = 0
    ) -> None:
        self.default_latency = default_latency_ms / 1000
        self.default_tps = default_tps or None
        self.jitter = jitter_ms / 1000
        self.history: deque[Record] = deque(maxlen=HISTORY)
        self._next_id = 0
        self.responses = responses_mod.State()
        self.memory = reasoning.ReasoningMemory()  # chat: reasoning of each tool call made
        self.prompt_cache = messages_mod.PromptCache()  # Messages: prefixes written so far

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            root = scope.get("root_path", "")
            if root and scope["path"].startswith(root):
                # Mounted under a prefix (e.g. inside another ASGI app): route on the rest.
                scope = {**scope, "path": scope["path"][len(root) :]}
            if scope["path"].startswith("/_fake/"):
                await self._introspect(scope, send)
            else:
                await self._http(scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _introspect(self, scope: Message, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/_fake/health":
            await _send_json(send, 200, _HEALTH)
        elif path == "/_fake/requests" and method == "GET":
            await _send_json(send, 200, orjson.dumps(list(self.history)))
        elif path == "/_fake/requests" and method == "DELETE":
            cleared = len(self.history)
            self.history.clear()
            await _send_json(send, 200, orjson.dumps({"cleared": cleared}))
        else:
            await _send_json(send, 404, b'{"error":"unknown introspection endpoint"}')

    def _latency(self, faults: Faults) -> float:
        if faults.latency_ms is not None:
            return faults.latency_ms / 1000
        if self.jitter:
            return self.default_latency + random.uniform(0, self.jitter)
        return self.default_latency

    async def _http(self, scope: Message, receive: Receive, send: Send) -> None:
        raw_path: str = scope["path"]
        try:
            faults, path = fault_mod.split_path(raw_path)
        except FaultSyntaxError as exc:
            await _send_openai_error(send, 400, f"fake upstream: {exc}")
            return
        route = resolve(path)
        if route is None:
            await _send_openai_error(send, 404, f"Invalid URL ({scope['method']} {path})")
            return
        body_bytes = await _read_body(receive)
        headers = dict(scope["headers"])
        key = api_key(route.flavor, headers)
        body: Any = None
        if body_bytes:
            try:
                body = orjson.loads(body_bytes)
            except orjson.JSONDecodeError:
                body = _INVALID_JSON
        self._next_id += 1
        record = Record(
            id=self._next_id,
            method=scope["method"],
            path=raw_path,
            query=scope.get("query_string", b"").decode("latin-1"),
            flavor=route.flavor.name,
            key_last4=key[-4:] if key else None,
            body=None if body is _INVALID_JSON else body,
            started_at=time.time(),
            stream=isinstance(body, dict) and body.get("stream") is True,
            endpoint=route.endpoint,
            anthropic_version=_header(headers, b"anthropic-version"),
            anthropic_beta=_header(headers, b"anthropic-beta"),
        )
        self.history.append(record)
        exchange = Exchange(receive, send, record)
        if body_bytes is None:
            exchange.cancelled.set()
            exchange.close()
            return
        try:
            await self._serve(exchange, scope, route, faults, headers, key, body)
        finally:
            exchange.close()

    async def _serve(
        self,
        ex: Exchange,
        scope: Message,
        route: Route,
        faults: Faults,
        headers: dict[bytes, bytes],
        key: str | None,
        body: Any,
    ) -> None:
        fl = route.flavor
        if route.endpoint == "responses" and responses_mod.serves(fl):
            fl = responses_mod.error_flavor(fl)
        if faults.hang:
            await ex.until_disconnect()
            return
        if await ex.pause(self._latency(faults)):
            return
        if faults.status is not None:
            message = echo_message(faults.status, key, faults.echo_key)
            status, payload = error(fl, faults.status, message, code=faults.code)
            extra = [(b"retry-after", b"%g" % faults.retry_after)] if faults.status == 429 else []
            await ex.respond(status, payload, extra)
            return
        outcome = self._dispatch(scope, route, faults, headers, key, body)
        if isinstance(outcome, JsonOut):
            tps = faults.tps or self.default_tps
            wait = faults.first_byte_ms / 1000 + (outcome.tokens / tps if tps else 0)
            if await ex.pause(wait):
                return
            await ex.respond(outcome.status, outcome.body, outcome.headers)
        else:
            await self._stream(ex, fl, outcome, faults, echo_message(500, key, faults.echo_key))

    def _dispatch(
        self,
        scope: Message,
        route: Route,
        faults: Faults,
        headers: dict[bytes, bytes],
        key: str | None,
        body: Any,
    ) -> Outcome:
        """Everything after timing faults: route checks, auth, body validation, the reply."""
        fl, endpoint, method = route.flavor, route.endpoint, scope["method"]
        if fl.kind == "anthropic":
            result = messages_mod.dispatch(
                fl, endpoint, method, scope["path"], headers, key, body, faults, self.prompt_cache
            )
            return JsonOut(*result) if isinstance(result, tuple) else StreamOut(result)
        if route.azure_classic:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            if not query.get("api-version") or endpoint not in _POST_ENDPOINTS:
                return JsonOut(*error(fl, 404, "Resource not found"))
        is_models = endpoint == "models" or endpoint.startswith("models/")
        is_responses = endpoint == "responses" and responses_mod.serves(fl)
        if endpoint.startswith("responses/") and responses_mod.serves(fl):
            return self._stored_response(fl, method, endpoint, key)
        known = is_models or is_responses or endpoint in _POST_ENDPOINTS
        if not known:
            return JsonOut(*error(fl, 404, f"Invalid URL ({method} {scope['path']})"))
        if is_responses:
            fl = responses_mod.error_flavor(fl)
        if method != ("GET" if is_models else "POST"):
            return JsonOut(*error(fl, 405, f"Invalid method for URL ({method} {scope['path']})"))
        # Local Ollama ignores keys; everyone else wants one, and "bad..." keys are rejected.
        if (key is None and fl.name != "ollama") or (key is not None and key.startswith("bad")):
            if is_responses:
                return JsonOut(*responses_mod.auth_refusal(route.flavor, key))
            return JsonOut(*auth_failure(fl, key))
        if is_models:
            return self._models(fl, endpoint)
        if not isinstance(body, dict):
            if fl.name == "gemini":
                return _bad_request(fl, "Invalid JSON payload received.")
            return _bad_request(
                fl,
                "We could not parse the JSON body of your request. The API "
                "expects a JSON payload, but what was sent was not valid JSON.",
            )
        if is_responses and key is not None:
            return self._responses(route.flavor, body, faults, key)
        if endpoint == "chat/completions":
            return handle_chat(fl, route, body, faults, key, self.memory)
        if endpoint == "completions":
            return handle_completions(fl, route, body, faults)
        return handle_embeddings(fl, route, body)

    def _stored_response(self, fl: Flavor, method: str, endpoint: str, key: str | None) -> Outcome:
        errors = responses_mod.error_flavor(fl)
        if method not in ("GET", "DELETE"):
            return JsonOut(*error(errors, 405, f"Invalid method for URL ({method} /{endpoint})"))
        if key is None or key.startswith("bad"):
            return JsonOut(*responses_mod.auth_refusal(fl, key))
        response_id, _, suffix = endpoint[len("responses/") :].partition("/")
        return JsonOut(*responses_mod.stored(fl, method, response_id, suffix, key, self.responses))

    def _responses(self, fl: Flavor, body: dict[str, Any], faults: Faults, key: str) -> Outcome:
        result = responses_mod.handle(
            fl,
            body,
            key,
            strict=faults.strict_reasoning,
            chunks=faults.chunks,
            state=self.responses,
        )
        if isinstance(result, responses_mod.Stream):
            return StreamOut(iter(result), on_error=result.fail)
        return JsonOut(*result)

    @staticmethod
    def _models(fl: Flavor, endpoint: str) -> JsonOut:
        if endpoint == "models":
            return JsonOut(200, MODEL_LISTS[fl.name])
        model_id = endpoint[len("models/") :]
        detail = model_detail(fl, model_id)
        if detail is None:
            return JsonOut(
                *error(
                    fl,
                    404,
                    f"The model '{model_id}' does not exist",
                    code="model_not_found" if fl.kind == "openai" else None,
                )
            )
        return JsonOut(200, detail)

    async def _stream(
        self, ex: Exchange, fl: Flavor, out: StreamOut, faults: Faults, error_message: str | None
    ) -> None:
        """Send the events with the requested pacing and stream faults applied."""
        await ex.start_stream()
        if out.keep_alive:
            await ex.chunk(KEEP_ALIVE)
        if await ex.pause(faults.first_byte_ms / 1000):
            return
        tps = faults.tps or self.default_tps
        gap = faults.chunk_ms / 1000
        loop = asyncio.get_running_loop()
        first_token_at: float | None = None
        tokens_sent = 0
        for number, (data, is_token) in enumerate(out.events, 1):
            if number > 1 and gap and await ex.pause(gap):
                return
            if is_token and tps:
                # Pace against an absolute schedule so sleep overshoot does not add up.
                if first_token_at is None:
                    first_token_at = loop.time()
                elif await ex.pause(first_token_at + tokens_sent / tps - loop.time()):
                    return
                tokens_sent += 1
            if ex.cancelled.is_set():
                return
            if number == faults.malformed_at:
                data = malformed(fl, data)
            if number == faults.error_after:
                await ex.chunk(data)
                tail = (
                    out.on_error(error_message) if out.on_error else stream_error(fl, error_message)
                )
                await ex.end_stream(tail)
                return
            if number == faults.drop_after:
                await ex.chunk(data)
                raise DroppedConnection
            await ex.chunk(data)
        await ex.end_stream()


def create_app(
    *, default_latency_ms: float = 0, default_tps: float = 0, jitter_ms: float = 0
) -> FakeUpstream:
    """A fresh fake upstream with its own request history and timing defaults."""
    _install_log_filter()
    return FakeUpstream(
        default_latency_ms=default_latency_ms, default_tps=default_tps, jitter_ms=jitter_ms
    )


app = create_app()
