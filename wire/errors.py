"""Normalising every provider's error shape to one :class:`UpstreamError`.

Shapes handled (from each provider's error page, listed in docs/providers.md), all
by the same code so that a new OpenAI-compatible provider needs no error mapping of
its own:

- ``{"error": {"message", "type", "param", "code"}}``: OpenAI, Azure, Qwen,
  Zhipu (``code`` is a business code such as "1302"), Moonshot, DeepSeek,
  Qianfan, Ark, Ollama, vLLM (``code`` is the HTTP status as an int);
- ``[{"error": {"code", "message", "status"}}]``: Gemini, an array;
- ``{"type": "error", "error": {"type", "message"}}``: Anthropic;
- ``{"base_resp": {"status_code", "status_msg"}}``: MiniMax, often with HTTP 200;
- ``{"code", "message"}``, ``{"message"}``, ``{"error": "text"}``,
  ``{"detail": ...}``: native DashScope, Spark, SiliconFlow, Ollama native,
  FastAPI-based servers;
- anything else (an HTML 502 page from a load balancer): a clean message
  with the status, never the page itself.

Classification looks at explicit signals (type, code, Gemini status) before the
HTTP status, because the same status means different things: 429 is either a
rate limit or an empty account, 403 is either a bad key or (Moonshot) no money.
Statuses are kept except where the OpenAI meaning differs: out-of-credit
becomes 429 ``insufficient_quota`` whatever the provider used (DeepSeek 402,
Moonshot 403, Anthropic 402), Anthropic's 529 becomes 503, and a Gemini bad
key (400 ``API_KEY_INVALID``) becomes 401.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any

import orjson

from wire.base import ErrorKind, UpstreamError

# Lower-cased values of ``type`` / ``code`` / Gemini ``status`` that decide the kind.
_QUOTA_SIGNALS = frozenset(
    {
        "insufficient_quota",
        "exceeded_current_quota_error",  # Moonshot, with HTTP 403
        "billing_error",  # Anthropic, with HTTP 402
        "arrearage",  # Qwen: account in arrears
        "1113",  # Zhipu: account in arrears
        "insufficient_balance",
        "insufficient_user_quota",
    }
)
_CONTENT_FILTER_SIGNALS = frozenset(
    {
        "content_filter",  # OpenAI, Azure, Moonshot
        "content_policy_violation",
        "data_inspection_failed",  # Qwen
        "responsibleaipolicyviolation",  # Azure inner code
        "1301",  # Zhipu
    }
)
_OVERLOADED_SIGNALS = frozenset(
    {"overloaded_error", "engine_overloaded_error", "overloaded", "server_overloaded"}
)
_AUTH_SIGNALS = frozenset(
    {
        "invalid_api_key",
        "invalidapikey",  # DashScope native
        "authentication_error",
        "invalid_authentication_error",  # Moonshot
        "incorrect_api_key_error",  # Moonshot
        "permission_error",  # Anthropic 403
        "permission_denied",  # Gemini
        "unauthenticated",  # Gemini
        "access_denied",  # Qianfan
        "api_key_invalid",  # Gemini detail reason
        "unsupported_country_region_territory",  # OpenAI region block
        "1000",  # Zhipu 1000-1004: authentication failures
        "1001",
        "1002",
        "1003",
        "1004",
    }
)
_RATE_LIMIT_SIGNALS = frozenset(
    {
        "rate_limit_exceeded",
        "rate_limit_error",  # Anthropic
        "rate_limit_reached_error",  # Moonshot
        "resource_exhausted",  # Gemini
        "limit_requests",  # Qwen
        "1302",  # Zhipu concurrency
        "1303",
        "1305",
    }
)
# Ark codes are "RateLimitExceeded.*", Qwen codes "Throttling.*".
_RATE_LIMIT_FRAGMENTS = ("ratelimit", "throttling")
_SERVER_SIGNALS = frozenset({"server_error", "api_error", "internal", "unavailable"})
_NOT_FOUND_SIGNALS = frozenset({"not_found_error", "model_not_found", "not_found"})

# Gemini (google.rpc) status names, for errors that arrive without an HTTP status.
_GOOGLE_STATUS: dict[str, int] = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}

# Status Baton reports for a kind when the upstream gave none (in-stream errors).
_DEFAULT_STATUS: dict[str, int] = {
    "auth": 401,
    "rate_limit": 429,
    "quota": 429,
    "overloaded": 503,
    "server": 500,
    "bad_request": 400,
    "not_found": 404,
    "content_filter": 400,
    "other": 502,
}

# MiniMax ``base_resp.status_code``: (HTTP status, kind), from MiniMax's error-code page
# (https://platform.minimax.io/docs/api-reference/errorcode).
_MINIMAX_CODES: dict[int, tuple[int, ErrorKind]] = {
    1000: (500, "server"),  # unknown error, retry
    1001: (500, "server"),  # timeout, retry
    1002: (429, "rate_limit"),
    1004: (401, "auth"),
    1008: (429, "quota"),  # insufficient balance
    1024: (500, "server"),  # internal error, retry
    1026: (400, "content_filter"),  # sensitive input
    1027: (400, "content_filter"),  # sensitive output
    1039: (429, "rate_limit"),  # token rate limit
    2013: (400, "bad_request"),  # invalid parameters
}
_MINIMAX_UNKNOWN: tuple[int, ErrorKind] = (502, "other")


def error_from_response(status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
    """A non-2xx upstream reply as an UpstreamError."""
    try:
        payload: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        payload = None
    error = error_from_payload(payload, status=status)
    if error is None:
        error = _classified(status, _plain_message(status), None, None, None, None, None)
    header_delay = parse_retry_after(headers)
    if header_delay is not None:
        error.retry_after = header_delay
    return error


def error_from_payload(payload: Any, *, status: int = 0) -> UpstreamError | None:
    """The error described by a parsed body or stream event, or None if it holds none.

    ``status`` is the HTTP status when known; 0 for in-stream events and 2xx
    bodies, whose status is then inferred from the error itself.
    """
    if isinstance(payload, list):  # Gemini wraps its error in an array
        payload = payload[0] if payload else None
    if not isinstance(payload, dict):
        return None
    base_resp = payload.get("base_resp")
    if isinstance(base_resp, dict) and base_resp.get("status_code"):
        return minimax_error(base_resp)
    error = payload.get("error")
    if isinstance(error, dict):
        details = error.get("details")
        return _classified(
            status,
            _text(error.get("message")) or _plain_message(status),
            _text(error.get("type")),
            error.get("code"),
            _text(error.get("param")),
            _text(error.get("status")),
            details if isinstance(details, list) else None,
        )
    if isinstance(error, str) and error:
        return _classified(status, error, _text(payload.get("type")), None, None, None, None)
    if status < 400:
        # A 2xx body or stream event without an "error" member is no error,
        # whatever else it carries.
        return None
    message = _text(payload.get("message")) or _detail_text(payload.get("detail"))
    return _classified(
        status,
        message or _plain_message(status),
        _text(payload.get("type")),
        payload.get("code"),
        _text(payload.get("param")),
        None,
        None,
    )


def load_json_object(body: bytes) -> dict[str, Any]:
    """A 2xx body as a JSON object; UpstreamError if it is an error or not an object."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamError(
            502,
            "upstream returned a response that is not valid JSON",
            kind="server",
            code="upstream_malformed_response",
        ) from None
    error = error_from_payload(payload)
    if error is not None:
        raise error
    if not isinstance(payload, dict):
        raise UpstreamError(
            502,
            "upstream returned a response that is not a JSON object",
            kind="server",
            code="upstream_malformed_response",
        )
    return payload


def malformed_chunk_error() -> UpstreamError:
    return UpstreamError(
        502,
        "upstream sent a stream event that is not valid JSON",
        kind="server",
        code="upstream_malformed_chunk",
    )


def oversized_event_error() -> UpstreamError:
    return UpstreamError(
        502,
        "upstream sent a stream event larger than 1 MiB",
        kind="server",
        code="upstream_malformed_chunk",
    )


def minimax_error(base_resp: Mapping[str, Any]) -> UpstreamError:
    code = base_resp.get("status_code")
    message = _text(base_resp.get("status_msg")) or f"MiniMax error {code}"
    # Unknown codes are reported as a bad gateway: fallback-eligible, since
    # nothing says the request itself was wrong.
    known = _MINIMAX_CODES.get(code) if isinstance(code, int) else None
    status, kind = known or _MINIMAX_UNKNOWN
    out_code = {"quota": "insufficient_quota", "content_filter": "content_filter"}.get(kind)
    return UpstreamError(status, message, kind=kind, code=out_code or str(code))


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    millis = _header(headers, "retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = _header(headers, "retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _classified(
    status: int,
    message: str,
    type_: str | None,
    code: Any,
    param: str | None,
    google_status: str | None,
    details: list[Any] | None,
) -> UpstreamError:
    code_text = _text(code)
    if isinstance(code, int) and not isinstance(code, bool):
        code_text = str(code)  # vLLM and Gemini put the HTTP status here
    signals = {s.lower() for s in (type_, code_text, google_status) if s}
    if details:
        signals.update(_detail_reasons(details))
    if not status or status < 400:
        status = _inferred_status(code, google_status)

    kind: ErrorKind
    if status == 402 or signals & _QUOTA_SIGNALS:
        kind, status = "quota", 429
    elif signals & _CONTENT_FILTER_SIGNALS:
        kind = "content_filter"
    elif status == 529 or signals & _OVERLOADED_SIGNALS:
        kind = "overloaded"
        if status == 529:
            status = 503
    elif "api_key_invalid" in signals or "unauthenticated" in signals:
        kind, status = "auth", 401
    elif status in (401, 403) or signals & _AUTH_SIGNALS:
        kind = "auth"
    elif status == 429 or signals & _RATE_LIMIT_SIGNALS or _has_fragment(signals):
        kind = "rate_limit"
    elif status >= 500 or status == 408:
        kind = "server"
    elif status == 404 or signals & _NOT_FOUND_SIGNALS:
        kind = "not_found"
    elif 400 <= status < 500 or "invalid_request_error" in signals:
        kind = "bad_request"
    elif signals & _SERVER_SIGNALS:
        kind = "server"
    else:
        kind = "other"
    if not status or status < 400:
        status = _DEFAULT_STATUS[kind]

    if kind == "quota":
        out_code: str | None = "insufficient_quota"
    elif kind == "content_filter":
        out_code = "content_filter"
    else:
        # Keep the most specific upstream identifier for logs and clients; a
        # provider-specific type ("rate_limit_reached_error") survives as code.
        upstream_type = type_ if type_ != UpstreamError.type_for(kind) else None
        out_code = google_status or code_text or upstream_type
    return UpstreamError(
        status,
        message,
        kind=kind,
        code=out_code,
        param=param,
        retry_after=_google_retry_delay(details) if details else None,
    )


def _inferred_status(code: Any, google_status: str | None) -> int:
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600:
        return code
    if google_status:
        return _GOOGLE_STATUS.get(google_status.upper(), 0)
    return 0


def _has_fragment(signals: set[str]) -> bool:
    return any(fragment in signal for signal in signals for fragment in _RATE_LIMIT_FRAGMENTS)


def _detail_reasons(details: list[Any]) -> set[str]:
    """Gemini ``ErrorInfo.reason`` values, e.g. "API_KEY_INVALID"."""
    return {
        d["reason"].lower()
        for d in details
        if isinstance(d, dict) and isinstance(d.get("reason"), str)
    }


def _google_retry_delay(details: list[Any]) -> float | None:
    """Gemini ``RetryInfo.retryDelay`` ("36s") in seconds."""
    for detail in details:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                return None
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        # Plain dicts are case-sensitive; aiohttp's CIMultiDict is not.
        for key, candidate in headers.items():
            if key.lower() == name:
                return candidate.strip()
        return None
    return value.strip()


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _detail_text(detail: Any) -> str | None:
    if isinstance(detail, str):
        return detail
    if detail is None:
        return None
    # FastAPI validation errors are a list of objects; keep them readable.
    return orjson.dumps(detail).decode()[:500]


def _plain_message(status: int) -> str:
    if not status:
        return "upstream reported an error"
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return f"upstream returned HTTP {status}"
    return f"upstream returned HTTP {status} ({phrase})"
