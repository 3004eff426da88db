"""Per-provider wire shapes: auth failures, errors, usage objects, bodies and stream events.

Baton's adapters exist to smooth over exactly these differences, so the fake reproduces them
byte-for-byte where the providers document them: where usage sits in a stream, how errors look,
which status an auth failure uses. The sources are each provider's own pages (docs/providers.md
lists them), for instance OpenAI's chunk object
(https://platform.openai.com/docs/api-reference/chat-streaming), Moonshot's chat API with usage
inside ``choices[0].usage`` (https://platform.moonshot.ai/docs/api/chat), Zhipu's business error
codes (https://docs.z.ai/api-reference/api-code), MiniMax's ``base_resp`` codes
(https://platform.minimax.io/docs/api-reference/errorcode) and Anthropic's stream events
(https://docs.anthropic.com/en/api/messages-streaming). Everything here is pure (dicts in,
bytes out); timing and faults live in app.py.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import quote

import orjson

from fake_upstream.tokens import Reply, cached_prompt_tokens

StreamUsage = Literal["on_request", "in_choice", "every_chunk", "final_chunk", "on_last_content"]
Event = tuple[bytes, bool]  # one SSE event, and whether it carries a content token (for tps)

CREATED = 1_700_000_000  # fixed "created" for model objects so listings are byte-stable
DONE = b"data: [DONE]\n\n"
KEEP_ALIVE = b": keep-alive\n\n"
MALFORMED = b"data: {not json\n\n"
_MINIMAX_OK = {"status_code": 0, "status_msg": ""}
_CF_SAFE = {"filtered": False, "severity": "safe"}
_AZURE_CF = {"hate": _CF_SAFE, "self_harm": _CF_SAFE, "sexual": _CF_SAFE, "violence": _CF_SAFE}
_AZURE_PROMPT_FILTER = [{"prompt_index": 0, "content_filter_results": _AZURE_CF}]


@dataclass(frozen=True, slots=True)
class Flavor:
    name: str
    stream_usage: StreamUsage
    models: tuple[str, ...]
    owned_by: str
    kind: Literal["openai", "anthropic"] = "openai"


FLAVORS: dict[str, Flavor] = {
    f.name: f
    for f in (
        Flavor(
            "openai",
            "on_request",
            ("gpt-4o", "gpt-4o-mini", "gpt-5", "text-embedding-3-small"),
            "openai",
        ),
        Flavor(
            "azure", "on_request", ("gpt-4o", "gpt-4o-mini", "text-embedding-3-small"), "system"
        ),
        Flavor(
            "qwen",
            "on_request",
            ("qwen3-max", "qwen3.5-plus", "qwen-plus", "qwen-flash", "text-embedding-v4"),
            "system",
        ),
        Flavor(
            "deepseek",
            "on_request",
            ("deepseek-v4-flash", "deepseek-v4-pro", "deepseek-chat", "deepseek-reasoner"),
            "deepseek",
        ),
        Flavor(
            "moonshot",
            "in_choice",
            ("kimi-k2.6", "kimi-k2.5", "moonshot-v1-8k", "moonshot-v1-32k"),
            "moonshot",
        ),
        Flavor(
            "siliconflow",
            "every_chunk",
            ("deepseek-ai/DeepSeek-V3", "Qwen/Qwen3-8B", "BAAI/bge-m3"),
            "siliconflow",
        ),
        Flavor(
            "zhipu",
            "final_chunk",
            ("glm-5", "glm-4.7", "glm-4.6", "glm-4.5-air", "embedding-3"),
            "zhipu",
        ),
        Flavor(
            "minimax",
            "final_chunk",
            ("MiniMax-M3", "MiniMax-M2.7", "MiniMax-M2", "MiniMax-Text-01"),
            "minimax",
        ),
        Flavor(
            "ark",
            "on_request",
            ("doubao-seed-1-6-250615", "doubao-1-5-pro-32k-250115"),
            "volcengine",
        ),
        Flavor("ollama", "on_request", ("llama3.2", "qwen3:8b", "nomic-embed-text"), "library"),
        Flavor("vllm", "on_request", ("meta-llama/Llama-3.1-8B-Instruct",), "vllm"),
        Flavor(
            "gemini",
            "on_last_content",
            ("models/gemini-2.5-flash", "models/gemini-2.5-pro", "models/gemini-embedding-001"),
            "google",
        ),
        Flavor(
            "anthropic",
            "on_request",
            (
                "claude-sonnet-5-5",
                "claude-opus-5-5",
                "claude-haiku-5-5",
                "claude-fable-5-1",
                "claude-sonnet-4-5",
                "claude-haiku-4-5",
                "claude-opus-4-1",
            ),
            "anthropic",
            kind="anthropic",
        ),
    )
}


def new_id(prefix: str) -> str:
    return prefix + os.urandom(12).hex()


def sse(obj: object) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


# --- errors -------------------------------------------------------------------------------

_OPENAI_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    402: ("insufficient_quota", "insufficient_quota"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}
_MOONSHOT_TYPES = {
    400: "invalid_request_error",
    401: "invalid_authentication_error",
    403: "exceeded_current_quota_error",
    404: "resource_not_found_error",
    429: "rate_limit_reached_error",
    503: "engine_overloaded_error",
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}
_GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_ZHIPU_CODES = {400: "1214", 401: "1000", 403: "1220", 404: "1211", 429: "1302"}
_MINIMAX_CODES = {401: 1004, 402: 1008, 403: 1004, 429: 1002}
_ARK_CODES = {
    400: ("InvalidParameter", "BadRequest"),
    401: ("AuthenticationError", "Unauthorized"),
    403: ("AccessDenied", "Forbidden"),
    404: ("InvalidEndpointOrModel.NotFound", "NotFound"),
    429: ("RateLimitExceeded.EndpointRPMExceeded", "TooManyRequests"),
    503: ("ServerOverloaded", "ServiceUnavailable"),
}
_SILICONFLOW_CODES = {400: 20015, 404: 20012}
_MESSAGES = {
    400: "Invalid request.",
    401: "Invalid API key.",
    402: "Insufficient balance.",
    403: "Access to this resource is forbidden.",
    404: "The requested resource does not exist.",
    413: "Request too large.",
    429: "Rate limit reached for requests. Please try again later.",
    500: "The server had an error while processing your request. Sorry about that!",
    502: "Bad gateway.",
    503: "The engine is currently overloaded, please try again later.",
    504: "Gateway timeout.",
    529: "Overloaded",
}


def _phrase(status: int) -> str | None:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return None


def _default_message(status: int) -> str:
    if status in _MESSAGES:
        return _MESSAGES[status]
    phrase = _phrase(status)
    if phrase:
        return phrase + "."
    return "Upstream error." if status >= 500 else "Request failed."


def error_object(
    fl: Flavor,
    status: int,
    message: str | None = None,
    *,
    code: str | None = None,
    param: str | None = None,
) -> tuple[int, object]:
    """The HTTP status a provider would use and its error body for ``status``.

    MiniMax answers HTTP 200 with a non-zero ``base_resp`` (the quirk Baton must undo), so the
    returned status can differ from the requested one.
    """
    msg = message or _default_message(status)
    server = status >= 500
    name = fl.name
    if fl.kind == "anthropic":
        return _messages_error_object(fl, status, msg, code)
    if name == "minimax":
        biz = _MINIMAX_CODES.get(status, 1000 if server else 2013)
        return 200, {
            "base_resp": {
                "status_code": int(code) if code and code.isdigit() else biz,
                "status_msg": msg,
            }
        }
    if name == "gemini":
        gstatus = _GEMINI_STATUS.get(status, "INTERNAL" if server else "FAILED_PRECONDITION")
        return status, [{"error": {"code": status, "message": msg, "status": code or gstatus}}]
    if name == "zhipu":
        return status, {
            "error": {"code": code or _ZHIPU_CODES.get(status, str(status)), "message": msg}
        }
    if name == "moonshot":
        mtype = code or _MOONSHOT_TYPES.get(
            status, "server_error" if server else "invalid_request_error"
        )
        return status, {"error": {"message": msg, "type": mtype}}
    if name == "azure":
        return status, {"error": {"code": code or str(status), "message": msg}}
    if name == "ark":
        acode, atype = _ARK_CODES.get(
            status,
            ("InternalServiceError", "InternalServerError")
            if server
            else ("BadRequest", "BadRequest"),
        )
        return status, {
            "error": {
                "code": code or acode,
                "message": f"{msg} Request id: {new_id('')}",
                "param": param or "",
                "type": atype,
            }
        }
    if name == "siliconflow":
        return status, {
            "code": int(code)
            if code and code.isdigit()
            else _SILICONFLOW_CODES.get(status, status),
            "message": msg,
            "data": None,
        }
    if name == "vllm":
        vtype = (_phrase(status) or "").replace(" ", "") + "Error"
        return status, {
            "error": {"message": msg, "type": code or vtype, "param": param, "code": status}
        }
    if name == "ollama":
        otype = "api_error" if server else "invalid_request_error"
        return status, {"error": {"message": msg, "type": otype, "param": param, "code": code}}
    etype, ecode = _OPENAI_TYPES.get(
        status, ("server_error" if server else "invalid_request_error", None)
    )
    if code == "insufficient_quota":
        etype = code
    body: dict[str, object] = {
        "error": {"message": msg, "type": etype, "param": param, "code": code or ecode}
    }
    if name == "qwen":
        if status == 429 and not code:
            body["error"] = {
                "message": msg,
                "type": "limit_requests",
                "param": param,
                "code": "limit_requests",
            }
        body["request_id"] = new_id("")
    return status, body


def _messages_error_object(
    fl: Flavor, status: int, msg: str, code: str | None
) -> tuple[int, object]:
    """Errors on an Anthropic Messages endpoint, as each provider's own endpoint words them.

    Anthropic: ``{"type": "error", "error": {"type", "message"}, "request_id"}``. The others
    were observed on the wire (errors quoted in public issue trackers): DeepSeek's
    ``/anthropic`` answers in its OpenAI shape; Zhipu adds its business ``code``; Moonshot
    puts ``type`` last; MiniMax appends its business code to the message and adds
    ``http_code``. Unlike its chat endpoint, MiniMax uses real HTTP statuses here.
    """
    server = status >= 500
    etype = code or _ANTHROPIC_TYPES.get(status, "api_error" if server else "invalid_request_error")
    name = fl.name
    if name == "deepseek":
        otype = _OPENAI_TYPES.get(status, ("server_error" if server else "invalid_request_error",))
        return status, {
            "error": {
                "message": msg,
                "type": code or otype[0],
                "param": None,
                "code": "invalid_request_error",
            }
        }
    if name == "zhipu":
        zcode = _ZHIPU_CODES.get(status, str(status))
        return status, {
            "type": "error",
            "error": {"type": etype, "code": zcode, "message": msg},
            "request_id": new_id(""),
        }
    if name == "moonshot":
        return status, {
            "error": {"type": etype, "message": msg},
            "request_id": new_id(""),
            "type": "error",
        }
    if name == "minimax":
        biz = _MINIMAX_CODES.get(status, 1000 if server else 2013)
        return status, {
            "type": "error",
            "error": {"type": etype, "message": f"{msg} ({biz})", "http_code": str(status)},
            "request_id": new_id(""),
        }
    return status, {
        "type": "error",
        "error": {"type": etype, "message": msg},
        "request_id": new_id("req_"),
    }


def error(
    fl: Flavor,
    status: int,
    message: str | None = None,
    *,
    code: str | None = None,
    param: str | None = None,
) -> tuple[int, bytes]:
    http_status, body = error_object(fl, status, message, code=code, param=param)
    return http_status, orjson.dumps(body)


def stream_error(fl: Flavor, message: str | None = None) -> bytes:
    """An error event after HTTP 200 was already sent, in the flavor's event framing."""
    _, body = error_object(fl, 500, message)
    if fl.kind == "anthropic":
        return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"
    return sse(body)


def malformed(fl: Flavor, event: bytes) -> bytes:
    """``event`` with its JSON replaced by garbage; Anthropic keeps its ``event:`` line."""
    if fl.kind == "anthropic" and event.startswith(b"event:"):
        return event.split(b"\n", 1)[0] + b"\n" + MALFORMED
    return MALFORMED


def echo_message(status: int, key: str | None, form: str | None) -> str | None:
    """The default message for ``status`` naming the presented key (the ``echo_key`` fault),
    or None when there is nothing to echo."""
    if not form or not key:
        return None
    shown = {"prefix": key[:12] + "...", "url": quote(key, safe="")}.get(form, key)
    return f"{_default_message(status)} The key used was {shown}"


# --- authentication -------------------------------------------------------------------------


def _mask(key: str) -> str:
    return f"{key[:3]}{'*' * 8}{key[-4:]}" if len(key) > 8 else "*" * len(key)


def auth_failure(fl: Flavor, key: str | None) -> tuple[int, bytes]:
    """The provider's answer to a missing (``key is None``) or rejected API key."""
    missing = key is None
    shown = _mask(key or "")
    name = fl.name
    if fl.kind == "anthropic" and name != "anthropic":
        return _messages_auth_failure(fl, key)
    if name == "openai":
        if missing:
            msg = (
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
            return error(fl, 401, msg, code=None)
        return error(
            fl,
            401,
            f"Incorrect API key provided: {shown}. You can find your API key "
            "at https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )
    if name == "azure":
        return error(
            fl,
            401,
            "Access denied due to invalid subscription key or wrong API "
            "endpoint. Make sure to provide a valid key for an active subscription and "
            "use a correct regional API endpoint for your resource.",
        )
    if name == "deepseek":
        detail = "no api key provided" if missing else f"Your api key: {shown} is invalid"
        return 401, orjson.dumps(
            {
                "error": {
                    "message": f"Authentication Fails, {detail}",
                    "type": "authentication_error",
                    "param": None,
                    "code": "invalid_request_error",
                }
            }
        )
    if name == "moonshot":
        return error(fl, 401, "Invalid Authentication")
    if name == "zhipu":
        if missing:
            # Zhipu's real (Chinese) message: exercises non-ASCII error passthrough.
            msg = "Header中未收到Authorization参数，无法进行身份验证。"  # noqa: RUF001
            return error(fl, 401, msg, code="1001")
        return error(fl, 401, "身份验证失败。", code="1000")
    if name == "minimax":
        return error(
            fl,
            401,
            "login fail: Please carefully check the API secret key (Authorization) you entered",
        )
    if name == "gemini":
        if missing:
            return error(
                fl,
                401,
                "Request had invalid authentication credentials. Expected "
                "OAuth 2 access token, login cookie or other valid authentication "
                "credential.",
            )
        status, body = error_object(fl, 400, "API key not valid. Please pass a valid API key.")
        assert isinstance(body, list)
        body[0]["error"]["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
            }
        ]
        return status, orjson.dumps(body)
    if name == "anthropic":
        return error(fl, 401, "x-api-key header is required" if missing else "invalid x-api-key")
    if name == "ark":
        return error(fl, 401, "The API key or AK/SK in the request is missing or invalid.")
    if name == "siliconflow":
        return error(fl, 401, "Invalid token")
    if name == "vllm":
        return 401, b'{"error":"Unauthorized"}'  # vLLM's auth middleware, not its error model
    if name == "qwen":
        return error(fl, 401, "Incorrect API key provided. ", code="invalid_api_key")
    return error(fl, 401, "unauthorized")


def _messages_auth_failure(fl: Flavor, key: str | None) -> tuple[int, bytes]:
    """The same providers' answer on their Anthropic-compatible endpoints."""
    name = fl.name
    if name == "deepseek":
        return auth_failure(FLAVORS["deepseek"], key)
    if name == "zhipu":
        if key is None:
            msg = "Header中未收到Authorization参数，无法进行身份验证。"  # noqa: RUF001
            return error(fl, 401, msg)
        return error(fl, 401, "身份验证失败。")
    if name == "minimax":
        return error(
            fl,
            401,
            "login fail: Please carefully check the API secret key (Authorization) you entered",
        )
    if name == "moonshot":
        return error(fl, 401, "Invalid Authentication")
    return error(fl, 401, "Incorrect API key provided.")


# --- usage --------------------------------------------------------------------------------


def usage(fl: Flavor, prompt: int, completion: int, reasoning: int = 0) -> dict[str, object]:
    """The flavor's usage object, cache fields included (cache hits are deterministic).

    ``reasoning`` is the part of ``completion`` that was thinking, reported where the
    provider reports it.
    """
    u: dict[str, object] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    name = fl.name
    if name in ("openai", "azure"):
        u["prompt_tokens_details"] = {
            "cached_tokens": cached_prompt_tokens(prompt),
            "audio_tokens": 0,
        }
        u["completion_tokens_details"] = {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        }
    elif name == "deepseek":
        hit = cached_prompt_tokens(prompt)
        u["prompt_tokens_details"] = {"cached_tokens": hit}
        u["completion_tokens_details"] = {"reasoning_tokens": reasoning}
        u["prompt_cache_hit_tokens"] = hit
        u["prompt_cache_miss_tokens"] = prompt - hit
    elif name in ("qwen", "zhipu"):
        u["prompt_tokens_details"] = {"cached_tokens": cached_prompt_tokens(prompt)}
        if reasoning:
            u["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    elif name == "ark":
        u["prompt_tokens_details"] = {"cached_tokens": cached_prompt_tokens(prompt)}
        u["completion_tokens_details"] = {"reasoning_tokens": 0}
    elif name == "moonshot":
        u["cached_tokens"] = cached_prompt_tokens(prompt)
        if reasoning:
            u["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    elif name == "siliconflow":
        u["completion_tokens_details"] = {"reasoning_tokens": 0}
    elif name == "minimax":
        u["total_characters"] = 0
    elif name == "vllm":
        u["prompt_tokens_details"] = None
    return u


# --- models -------------------------------------------------------------------------------


def _model_object(fl: Flavor, model_id: str) -> dict[str, object]:
    if fl.kind == "anthropic":
        return {
            "type": "model",
            "id": model_id,
            "display_name": model_id,
            "created_at": "2025-09-29T00:00:00Z",
        }
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": fl.owned_by}


def _model_list(fl: Flavor) -> bytes:
    data = [_model_object(fl, m) for m in fl.models]
    if fl.kind == "anthropic":
        return orjson.dumps(
            {"data": data, "has_more": False, "first_id": fl.models[0], "last_id": fl.models[-1]}
        )
    return orjson.dumps({"object": "list", "data": data})


MODEL_LISTS: dict[str, bytes] = {name: _model_list(fl) for name, fl in FLAVORS.items()}


def model_detail(fl: Flavor, model_id: str) -> bytes | None:
    for known in fl.models:
        # Gemini lists "models/x" but callers often ask for plain "x".
        if model_id in (known, known.removeprefix("models/")):
            return orjson.dumps(_model_object(fl, known))
    return None


# --- OpenAI-shaped bodies -------------------------------------------------------------------


def _add_extras(fl: Flavor, body: dict[str, Any]) -> dict[str, Any]:
    if fl.name in ("openai", "azure", "deepseek"):
        body["system_fingerprint"] = "fp_fake"
    if fl.name == "azure":
        body["prompt_filter_results"] = _AZURE_PROMPT_FILTER
    elif fl.name == "minimax":
        body["base_resp"] = _MINIMAX_OK
    elif fl.name == "zhipu":
        body["request_id"] = body["id"]
    return body


# --- reasoning on chat endpoints -------------------------------------------------------------

ReasoningStyle = Literal["reasoning_content", "think_tag", "reasoning_details"]
THINK_OPEN = "<think>\n"
THINK_CLOSE = "\n</think>\n\n"


def reasoning_style(fl: Flavor, split: bool) -> ReasoningStyle:
    """How a flavor's chat endpoint returns reasoning.

    MiniMax puts ``<think>...</think>`` at the start of ``content`` unless the request sets
    ``reasoning_split: true``, which moves it to ``reasoning_details``
    (https://platform.minimax.io/docs/guides/text-m2-function-call); the others use
    ``reasoning_content``.
    """
    if fl.name == "minimax":
        return "reasoning_details" if split else "think_tag"
    return "reasoning_content"


def think_tagged(reasoning: str) -> str:
    """MiniMax's inline form of ``reasoning``, as it opens ``content``."""
    return f"{THINK_OPEN}{reasoning}{THINK_CLOSE}"


def reasoning_detail(text: str) -> dict[str, object]:
    """One MiniMax ``reasoning_details`` item."""
    return {
        "type": "reasoning.text",
        "id": "reasoning-text-1",
        "format": "MiniMax-response-v1",
        "index": 0,
        "text": text,
    }


def _reasoning_frames(reply: Reply, style: ReasoningStyle) -> list[tuple[dict[str, Any], bool]]:
    """The stream deltas that carry ``reply.reasoning``, before any content or tool call."""
    if not reply.reasoning:
        return []
    pieces = reply.reasoning_pieces
    if style == "think_tag":
        return [
            ({"content": THINK_OPEN}, False),
            *(({"content": p}, True) for p in pieces),
            ({"content": THINK_CLOSE}, False),
        ]
    if style == "reasoning_details":
        return [({"reasoning_details": [reasoning_detail(p)]}, True) for p in pieces]
    return [({"reasoning_content": p}, True) for p in pieces]


def chat_body(
    fl: Flavor,
    reply: Reply,
    *,
    model: str,
    prompt: int,
    n: int,
    style: ReasoningStyle = "reasoning_content",
) -> dict[str, Any]:
    if reply.tool is not None:
        message: dict[str, object] = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": reply.tool.id,
                    "type": "function",
                    "function": {"name": reply.tool.name, "arguments": reply.tool.arguments},
                }
            ],
        }
    else:
        message = {"role": "assistant", "content": reply.text}
    if reply.reasoning:
        if style == "think_tag":
            message["content"] = think_tagged(reply.reasoning) + (
                reply.text if reply.tool is None else ""
            )
        elif style == "reasoning_details":
            message["reasoning_details"] = [reasoning_detail(reply.reasoning)]
        else:
            message["reasoning_content"] = reply.reasoning
    if fl.name == "openai":
        message["refusal"] = None
        message["annotations"] = []
    choices = []
    for i in range(n):
        choice: dict[str, object] = {
            "index": i,
            "message": message,
            "logprobs": None,
            "finish_reason": reply.finish_reason,
        }
        if fl.name == "azure":
            choice["content_filter_results"] = _AZURE_CF
        choices.append(choice)
    body = {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage(fl, prompt, reply.completion_tokens * n, reply.reasoning_tokens * n),
    }
    return _add_extras(fl, body)


def completion_body(fl: Flavor, reply: Reply, *, model: str, prompt: int, n: int) -> dict[str, Any]:
    choices = [
        {"text": reply.text, "index": i, "logprobs": None, "finish_reason": reply.finish_reason}
        for i in range(n)
    ]
    body = {
        "id": new_id("cmpl-"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage(fl, prompt, reply.completion_tokens * n),
    }
    return _add_extras(fl, body)


def embeddings_body(model: str, vectors: list[object], prompt: int) -> dict[str, object]:
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
    }


# --- OpenAI-shaped streams ------------------------------------------------------------------


def _chat_frames(
    reply: Reply, style: ReasoningStyle = "reasoning_content"
) -> list[tuple[dict[str, Any], bool, int]]:
    """Each chunk's single choice (without usage), whether it is a token, tokens so far."""
    frames: list[tuple[dict[str, Any], bool, int]] = []

    def frame(delta: dict[str, object], token: bool, done: int, finish: str | None = None) -> None:
        frames.append(
            ({"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}, token, done)
        )

    thought = 0

    def reason() -> None:
        nonlocal thought
        for delta, token in _reasoning_frames(reply, style):
            thought += token
            frame(delta, token, thought)

    if reply.tool is None:
        frame({"role": "assistant", "content": ""}, False, 0)
        reason()
        for i, piece in enumerate(reply.pieces, 1):
            frame({"content": piece}, True, thought + i)
    else:
        tool = reply.tool
        frame({"role": "assistant", "content": None}, False, 0)
        reason()
        frame(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": tool.id,
                        "type": "function",
                        "function": {"name": tool.name, "arguments": ""},
                    }
                ]
            },
            False,
            thought,
        )
        for fragment in tool.fragments():
            frame(
                {"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]},
                True,
                reply.completion_tokens,
            )
    frame({}, False, reply.completion_tokens, reply.finish_reason)
    return frames


def _completion_frames(reply: Reply) -> list[tuple[dict[str, Any], bool, int]]:
    frames: list[tuple[dict[str, Any], bool, int]] = [
        ({"text": piece, "index": 0, "logprobs": None, "finish_reason": None}, True, i)
        for i, piece in enumerate(reply.pieces, 1)
    ]
    frames.append(
        (
            {"text": "", "index": 0, "logprobs": None, "finish_reason": reply.finish_reason},
            False,
            reply.completion_tokens,
        )
    )
    return frames


def openai_stream(
    fl: Flavor,
    reply: Reply,
    *,
    model: str,
    prompt: int,
    include_usage: bool,
    chat: bool,
    style: ReasoningStyle = "reasoning_content",
) -> Iterator[Event]:
    """SSE events of a chat or legacy completion stream, with the flavor's usage placement."""
    cid = new_id("chatcmpl-" if chat else "cmpl-")
    base: dict[str, object] = {
        "id": cid,
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": int(time.time()),
        "model": model,
    }
    if fl.name in ("openai", "azure", "deepseek"):
        base["system_fingerprint"] = "fp_fake"
    frames = _chat_frames(reply, style) if chat else _completion_frames(reply)
    policy = fl.stream_usage
    if policy == "on_last_content" and len(frames) > 1 and frames[-2][1]:
        # Gemini: the last token chunk itself carries finish_reason (and the usage).
        finish = frames.pop()[0]["finish_reason"]
        frames[-1][0]["finish_reason"] = finish
    null_usage = policy == "on_request" and include_usage
    full_usage = usage(fl, prompt, reply.completion_tokens, reply.reasoning_tokens)
    azure = fl.name == "azure"

    if azure and chat:
        # Azure's prompt-filter verdict comes first, with empty choices and blank ids.
        prelude: dict[str, object] = {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": _AZURE_PROMPT_FILTER,
        }
        if null_usage:
            prelude["usage"] = None
        yield sse(prelude), False
    last = len(frames) - 1
    for i, (choice, token, done) in enumerate(frames):
        chunk: dict[str, object] = {**base, "choices": [choice]}
        if azure:
            choice["content_filter_results"] = _AZURE_CF if token else {}
        if null_usage:
            chunk["usage"] = None
        elif policy == "every_chunk":
            chunk["usage"] = usage(fl, prompt, done)
        elif i == last:
            if policy == "in_choice":
                choice["usage"] = full_usage
            elif policy in ("final_chunk", "on_last_content"):
                chunk["usage"] = full_usage
        if i == last and fl.name == "minimax":
            chunk["base_resp"] = _MINIMAX_OK
        yield sse(chunk), token
    if null_usage:
        yield sse({**base, "choices": [], "usage": full_usage}), False
    yield DONE, False
