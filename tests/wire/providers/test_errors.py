"""Every provider's error shape normalised to one OpenAI-style UpstreamError."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import orjson
import pytest

from wire.providers import UpstreamError, get_adapter

from .helpers import fixture

OPENAI = get_adapter("openai")


def _error(status: int, body: object, headers: dict[str, str] | None = None) -> UpstreamError:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return OPENAI.parse_error(status, raw, headers or {})


def _summary(error: UpstreamError) -> tuple[int, str, str | None, bool]:
    return error.status, error.kind, error.code, error.retryable


def test_openai_bad_key_is_an_auth_failure_that_allows_fallback() -> None:
    error = _error(
        401,
        {
            "error": {
                "message": "Incorrect API key provided: sk-abc.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        },
    )

    assert _summary(error) == (401, "auth", "invalid_api_key", True)
    assert orjson.loads(error.openai_body()) == {
        "error": {
            "message": "Incorrect API key provided: sk-abc.",
            "type": "authentication_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }


def test_openai_region_block_is_an_auth_failure() -> None:
    body = {
        "error": {
            "message": "Country not supported",
            "code": "unsupported_country_region_territory",
        }
    }
    assert _error(403, body).kind == "auth"


def test_openai_429_distinguishes_rate_limit_from_empty_account() -> None:
    rate = _error(
        429,
        {
            "error": {
                "message": "Rate limit reached",
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
        },
        {"retry-after": "20"},
    )
    quota = _error(
        429,
        {
            "error": {
                "message": "You exceeded your quota",
                "type": "insufficient_quota",
                "code": "insufficient_quota",
            }
        },
    )

    assert _summary(rate) == (429, "rate_limit", "rate_limit_exceeded", True)
    assert rate.retry_after == 20.0
    assert _summary(quota) == (429, "quota", "insufficient_quota", True)
    assert quota.type == "insufficient_quota"


def test_retry_after_as_an_http_date_and_in_milliseconds() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    dated = _error(429, b"", {"Retry-After": when})
    assert dated.retry_after is not None
    assert 27 <= dated.retry_after <= 31

    assert _error(429, b"", {"retry-after-ms": "1500", "retry-after": "9"}).retry_after == 1.5
    assert _error(429, b"", {"retry-after": "soon"}).retry_after is None


def test_azure_auth_and_content_filter() -> None:
    auth = _error(
        401,
        {
            "error": {
                "code": "401",
                "message": "Access denied due to invalid subscription key or wrong API endpoint.",
            }
        },
    )
    blocked = _error(
        400,
        {
            "error": {
                "message": "The response was filtered",
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
                "innererror": {"code": "ResponsibleAIPolicyViolation"},
            }
        },
    )

    assert _summary(auth) == (401, "auth", "401", True)
    assert _summary(blocked) == (400, "content_filter", "content_filter", False)
    assert blocked.param == "prompt"


def test_qwen_arrears_and_data_inspection() -> None:
    arrears = _error(
        400,
        {
            "error": {
                "message": "Access denied, account in arrears.",
                "type": "Arrearage",
                "code": "Arrearage",
            },
            "request_id": "b2e5a6b4",
        },
    )
    inspected = _error(
        400,
        {
            "error": {
                "message": "Input data may contain inappropriate content.",
                "code": "data_inspection_failed",
            }
        },
    )

    assert _summary(arrears) == (429, "quota", "insufficient_quota", True)
    assert _summary(inspected) == (400, "content_filter", "content_filter", False)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (401, "1002", (401, "auth", "1002", True)),
        (429, "1302", (429, "rate_limit", "1302", True)),
        (429, "1113", (429, "quota", "insufficient_quota", True)),
        (400, "1301", (400, "content_filter", "content_filter", False)),
        (400, "1214", (400, "bad_request", "1214", False)),
    ],
)
def test_zhipu_business_codes(status: int, code: str, expected: tuple[object, ...]) -> None:
    assert _summary(_error(status, {"error": {"code": code, "message": "x"}})) == expected


def test_moonshot_error_types() -> None:
    no_money = _error(
        403,
        {"error": {"message": "Your account is suspended", "type": "exceeded_current_quota_error"}},
    )
    overloaded = _error(
        429, {"error": {"message": "The engine is overloaded", "type": "engine_overloaded_error"}}
    )
    bad_key = _error(
        401,
        {"error": {"message": "Invalid Authentication", "type": "invalid_authentication_error"}},
    )

    assert _summary(no_money) == (429, "quota", "insufficient_quota", True)
    assert _summary(overloaded) == (429, "overloaded", "engine_overloaded_error", True)
    assert _summary(bad_key) == (401, "auth", "invalid_authentication_error", True)


def test_deepseek_402_and_422() -> None:
    no_balance = _error(
        402, {"error": {"message": "Insufficient Balance", "type": "unknown_error"}}
    )
    bad_params = _error(
        422, {"error": {"message": "Invalid parameters", "type": "invalid_request_error"}}
    )

    assert _summary(no_balance) == (429, "quota", "insufficient_quota", True)
    assert _summary(bad_params) == (422, "bad_request", None, False)


def test_gemini_error_array_becomes_one_error_with_its_retry_delay() -> None:
    error = OPENAI.parse_error(429, fixture("gemini_error.json"), {})

    assert _summary(error) == (429, "rate_limit", "RESOURCE_EXHAUSTED", True)
    assert error.message.startswith("You exceeded your current quota")
    assert error.retry_after == 36.0


def test_gemini_bad_key_and_permission_errors_are_auth_failures() -> None:
    bad_key = _error(
        400,
        [
            {
                "error": {
                    "code": 400,
                    "message": "API key not valid. Please pass a valid API key.",
                    "status": "INVALID_ARGUMENT",
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "API_KEY_INVALID",
                            "domain": "googleapis.com",
                        }
                    ],
                }
            }
        ],
    )
    denied = _error(
        403, [{"error": {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}}]
    )
    invalid = _error(
        400, [{"error": {"code": 400, "message": "Unknown name", "status": "INVALID_ARGUMENT"}}]
    )

    assert _summary(bad_key) == (401, "auth", "INVALID_ARGUMENT", True)
    assert _summary(denied) == (403, "auth", "PERMISSION_DENIED", True)
    assert _summary(invalid) == (400, "bad_request", "INVALID_ARGUMENT", False)


@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [
        (529, "overloaded_error", (503, "overloaded", "overloaded_error", True)),
        (401, "authentication_error", (401, "auth", None, True)),
        (402, "billing_error", (429, "quota", "insufficient_quota", True)),
        (413, "request_too_large", (413, "bad_request", "request_too_large", False)),
        (404, "not_found_error", (404, "not_found", "not_found_error", False)),
        (500, "api_error", (500, "server", "api_error", True)),
        (429, "rate_limit_error", (429, "rate_limit", None, True)),
    ],
)
def test_anthropic_errors(status: int, error_type: str, expected: tuple[object, ...]) -> None:
    body = {"type": "error", "error": {"type": error_type, "message": "m"}, "request_id": "req_1"}
    error = get_adapter("anthropic").parse_error(status, orjson.dumps(body), {})

    assert _summary(error) == expected


def test_ark_rate_limit_and_unknown_endpoint() -> None:
    limited = _error(
        429,
        {
            "error": {
                "code": "RateLimitExceeded.EndpointRPMExceeded",
                "message": "x",
                "type": "TooManyRequests",
            }
        },
    )
    missing = _error(
        404,
        {"error": {"code": "InvalidEndpointOrModel.NotFound", "message": "x", "param": "model"}},
    )

    assert _summary(limited) == (429, "rate_limit", "RateLimitExceeded.EndpointRPMExceeded", True)
    assert _summary(missing) == (404, "not_found", "InvalidEndpointOrModel.NotFound", False)


def test_vllm_integer_codes_and_the_older_top_level_shape() -> None:
    current = _error(
        400,
        {"error": {"message": "too long", "type": "BadRequestError", "param": None, "code": 400}},
    )
    older = _error(
        400,
        {"object": "error", "message": "model not served", "type": "NotFoundError", "code": 404},
    )

    assert _summary(current) == (400, "bad_request", "400", False)
    assert _summary(older) == (400, "bad_request", "404", False)
    assert older.message == "model not served"


def test_ollama_string_error_and_siliconflow_message_only() -> None:
    ollama = _error(404, {"error": "model 'llama9' not found"})
    silicon = _error(400, {"code": 20012, "message": "Model does not exist.", "data": None})

    assert (ollama.status, ollama.kind, ollama.message) == (
        404,
        "not_found",
        "model 'llama9' not found",
    )
    assert (silicon.kind, silicon.code, silicon.message) == (
        "bad_request",
        "20012",
        "Model does not exist.",
    )


def test_an_html_error_page_becomes_a_clean_message() -> None:
    error = OPENAI.parse_error(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", {})

    assert _summary(error) == (502, "server", None, True)
    assert error.message == "upstream returned HTTP 502 (Bad Gateway)"


def test_request_errors_are_not_retryable() -> None:
    for status in (400, 404, 413, 422):
        assert not _error(status, b"").retryable
    assert _error(408, b"").retryable  # an upstream timeout


def test_error_event_bytes() -> None:
    error = UpstreamError(503, "Overloaded", kind="overloaded", code="overloaded_error")

    assert error.sse_event() == (
        b'data: {"error":{"message":"Overloaded","type":"server_error","param":null,'
        b'"code":"overloaded_error"}}\n\n'
    )
    assert error.retry_after is None
