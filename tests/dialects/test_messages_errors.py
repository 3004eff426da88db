"""Every error class the anthropic SDK maps, from a running Baton's /v1/messages.

Each refusal is Anthropic's shape (``{"type": "error", "error": {"type", "message"}}``) with
Anthropic's status, whether Baton refuses (a bad key, a limit, a bad body) or the upstream
does (its status and text passed on); after a stream started, an ``error`` event, which the
SDK raises while the stream is read."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import pytest
from django.conf import settings as django_settings

from billing import credits
from billing.models import CreditEntry, Price
from billing.quota import script
from config.redis_clients import sync_client
from tests.dialects.conftest import client
from tests.polling import until
from tests.relay.conftest import Relay, make_credential, make_key, make_route
from tests.relay.test_relay_sdk import usage_events

HELLO: Any = [{"role": "user", "content": "Hello there"}]
PRICED = "claude-priced-for-tests"  # its own price: the catalog's rows do not outlive a test


def body_of(error: anthropic.APIStatusError) -> dict[str, Any]:
    """The error body, checked to be Anthropic's shape and nothing more."""
    body = error.body
    assert isinstance(body, dict) and set(body) == {"type", "error"}, body
    assert body["type"] == "error"
    assert set(body["error"]) == {"type", "message"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def test_bad_request_400(messages: Relay, fake: Any) -> None:
    sdk = client(messages)
    # Baton's own check: max_tokens is required (null is what the SDK sends for None).
    with pytest.raises(anthropic.BadRequestError) as missing:
        sdk.messages.create(
            model="claude-native", max_tokens=8, messages=HELLO, extra_body={"max_tokens": None}
        )
    assert body_of(missing.value) == {
        "type": "invalid_request_error",
        "message": "max_tokens: Field required",
    }
    assert fake.requests() == []  # refused before it went anywhere
    for bad in ({"messages": "not a list"}, {"stream": "yes"}, {"max_tokens": 0}):
        with pytest.raises(anthropic.BadRequestError) as refused:
            sdk.messages.create(model="claude-native", max_tokens=8, messages=HELLO, extra_body=bad)
        assert body_of(refused.value)["type"] == "invalid_request_error"
    # The upstream's own 400 (Anthropic refuses a thinking budget under 1024): passed on.
    with pytest.raises(anthropic.BadRequestError) as upstream:
        sdk.messages.create(
            model="claude-native",
            max_tokens=2048,
            messages=HELLO,
            thinking={"type": "enabled", "budget_tokens": 100},
        )
    assert "budget_tokens" in body_of(upstream.value)["message"]
    assert [r["status"] for r in fake.requests()] == [400]


def test_authentication_401(messages: Relay) -> None:
    for wrong in (
        client(messages, api_key="sk-baton-wrong"),  # x-api-key
        anthropic.Anthropic(base_url=messages.base_url, auth_token="sk-baton-wrong", max_retries=0),
    ):
        with pytest.raises(anthropic.AuthenticationError) as denied:
            wrong.messages.create(model="claude-native", max_tokens=8, messages=HELLO)
        assert denied.value.status_code == 401
        assert body_of(denied.value)["type"] == "authentication_error"
    # The right key as a Bearer token (Claude Code's ANTHROPIC_AUTH_TOKEN) is accepted.
    bearer = anthropic.Anthropic(base_url=messages.base_url, auth_token=messages.key, max_retries=0)
    assert bearer.messages.create(model="claude-native", max_tokens=8, messages=HELLO).content


def test_permission_denied_403_for_an_ip_restricted_key(messages: Relay, fake: Any) -> None:
    fenced = make_key(messages.team, name="office only", ip_allowlist=["203.0.113.0/24"])
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        client(messages, api_key=fenced).messages.create(
            model="claude-native", max_tokens=8, messages=HELLO
        )
    error = body_of(refused.value)
    assert error["type"] == "permission_error"
    assert "address" in error["message"]
    assert fake.requests() == []


def test_not_found_404(messages: Relay) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        client(messages).messages.create(model="no-such-model", max_tokens=8, messages=HELLO)
    error = body_of(missing.value)
    assert error["type"] == "not_found_error"
    assert "no-such-model" in error["message"]
    # A key limited to other models gets the same answer for this one.
    narrow = make_key(messages.team, name="narrow", allowed_models=["claude-translated"])
    with pytest.raises(anthropic.NotFoundError):
        client(messages, api_key=narrow).messages.create(
            model="claude-native", max_tokens=8, messages=HELLO
        )


def test_content_too_large_413(messages: Relay, settings: Any, fake: Any) -> None:
    settings.BATON_MAX_BODY_BYTES = 4096
    with pytest.raises(anthropic.ContentTooLargeError) as refused:
        client(messages).messages.create(
            model="claude-native",
            max_tokens=8,
            messages=[{"role": "user", "content": "x" * 5000}],
        )
    error = body_of(refused.value)
    assert error["type"] == "request_too_large"
    assert "4096 bytes" in error["message"]
    assert fake.requests() == []


def test_rate_limit_429_with_retry_after_for_a_key_rpm_limit(messages: Relay) -> None:
    limited = make_key(messages.team, name="one a minute", rpm_limit=1)
    sdk = client(messages, api_key=limited)
    first = sdk.messages.with_raw_response.create(
        model="claude-native", max_tokens=8, messages=HELLO
    )
    assert first.headers["x-ratelimit-limit-requests"] == "1"
    with pytest.raises(anthropic.RateLimitError) as refused:
        sdk.messages.create(model="claude-native", max_tokens=8, messages=HELLO)
    error = body_of(refused.value)
    assert error["type"] == "rate_limit_error"
    assert "requests per minute" in error["message"]
    headers = refused.value.response.headers
    assert int(headers["retry-after"]) >= 1
    assert headers["x-ratelimit-remaining-requests"] == "0"
    # count_tokens is a request too, under the same limit.
    with pytest.raises(anthropic.RateLimitError):
        sdk.messages.count_tokens(model="claude-native", messages=HELLO)


def set_balance(relay: Relay, amount: Decimal) -> None:
    now = credits.balance(relay.team).amount
    credits.add_credit(relay.team, amount - now, actor=None, kind=CreditEntry.Kind.ADJUSTMENT)
    assert credits.balance(relay.team).amount == amount


def test_a_used_up_credit_is_402_billing_error(messages: Relay, fake: Any) -> None:
    set_balance(messages, Decimal("0"))
    with pytest.raises(anthropic.PaymentRequiredError) as refused:
        client(messages, max_retries=2).messages.create(
            model="claude-native", max_tokens=8, messages=HELLO
        )
    error = body_of(refused.value)
    assert error["type"] == "billing_error"
    assert "prepaid credit is used up" in error["message"]
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert fake.requests() == []


def test_credit_held_by_requests_in_flight_is_429_to_retry(
    messages: Relay, fake: Any, settings: Any
) -> None:
    """Credit for one request but not two: while the first is in flight (its upstream hangs),
    the second is a 429 the SDK may retry, not a 402."""
    hanging = make_credential(
        messages.team, "hanging", fake.base_url + "/_f/hang/anthropic/v1", provider="anthropic"
    )
    answering = make_credential(
        messages.team, "answering", fake.base_url + "/anthropic/v1", provider="anthropic"
    )
    # 15 USD per 1M output tokens: a request for 1000 holds 0.015 USD.
    Price.objects.create(provider_id="anthropic", model=PRICED, input=0, output=Decimal(15))
    make_route(messages.team, "claude-hanging", (hanging, PRICED, 0))
    make_route(messages.team, "claude-priced", (answering, PRICED, 0))
    set_balance(messages, Decimal("0.02"))
    outcome: dict[str, Any] = {}

    def first() -> None:
        try:
            client(messages).messages.create(
                model="claude-hanging", max_tokens=1000, messages=HELLO
            )
        except anthropic.APIStatusError as exc:
            outcome["first"] = exc.status_code

    worker = threading.Thread(target=first)
    worker.start()
    store = sync_client(django_settings.REDIS_URL)
    try:
        in_flight = script.flight(str(messages.team.pk))
        until(lambda: store.zcard(in_flight) > 0, "the first request's hold")
        with pytest.raises(anthropic.RateLimitError) as refused:
            client(messages).messages.create(model="claude-priced", max_tokens=1000, messages=HELLO)
    finally:
        worker.join(10)
        store.close()
    error = body_of(refused.value)
    assert error["type"] == "rate_limit_error"
    assert "held by requests in flight" in error["message"]
    headers = refused.value.response.headers
    assert (headers["x-should-retry"], headers["retry-after"]) == ("true", "1")
    assert outcome["first"] == 504  # the hanging upstream timed out
    assert [r["path"] for r in fake.requests()] == ["/_f/hang/anthropic/v1/messages"]


@pytest.mark.parametrize(
    ("base", "provider", "status", "error_class", "error_type"),
    [
        (
            "/_f/status=529/anthropic/v1",
            "anthropic",
            529,
            anthropic.OverloadedError,
            "overloaded_error",
        ),
        (
            "/_f/status=500/anthropic/v1",
            "anthropic",
            500,
            anthropic.InternalServerError,
            "api_error",
        ),
        ("/_f/status=503/v1", "openai", 503, anthropic.ServiceUnavailableError, "overloaded_error"),
    ],
)
def test_upstream_5xx_and_overloaded(
    messages: Relay,
    fake: Any,
    redis_client: Any,
    base: str,
    provider: str,
    status: int,
    error_class: type[anthropic.APIStatusError],
    error_type: str,
) -> None:
    failing = make_credential(messages.team, "failing", fake.base_url + base, provider=provider)
    make_route(messages.team, "claude-failing", (failing, "claude-sonnet-4-5", 0))
    for stream in (False, True):
        with pytest.raises(error_class) as failed:
            client(messages).messages.create(
                model="claude-failing", max_tokens=64, messages=HELLO, stream=stream
            )
        assert failed.value.status_code == status
        assert body_of(failed.value)["type"] == error_type
    assert len(fake.requests()) == 2  # one attempt each: the only target
    events = usage_events(redis_client, 2)
    assert [(e.dialect, e.status) for e in events] == [("messages", status)] * 2


@pytest.mark.parametrize(
    ("base", "provider"),
    [("/_f/error_after=4/anthropic/v1", "anthropic"), ("/_f/error_after=3;chunks=20/v1", "openai")],
)
def test_an_error_event_mid_stream_is_the_sdks_api_error(
    messages: Relay, fake: Any, redis_client: Any, base: str, provider: str
) -> None:
    breaking = make_credential(messages.team, "breaking", fake.base_url + base, provider=provider)
    make_route(messages.team, "claude-breaking", (breaking, "claude-sonnet-4-5", 0))
    seen: list[str] = []
    sdk = client(messages)
    with (
        pytest.raises(anthropic.APIStatusError) as broke,
        sdk.messages.stream(model="claude-breaking", max_tokens=64, messages=HELLO) as stream,
    ):
        seen.extend(part.type for part in stream)
    assert seen and seen[0] == "message_start"  # the stream had started: a 200, then the event
    assert broke.value.status_code == 200
    error = body_of(broke.value)
    assert error["type"] in ("api_error", "overloaded_error")
    [usage] = usage_events(redis_client, 1)
    assert usage.streamed and usage.error_class


def test_errors_never_take_openais_shape(messages: Relay) -> None:
    """Refusals before the body is read (no key, a wrong method, bad JSON) are Anthropic's too."""
    url = messages.base_url + "/v1/messages?beta=true"
    cases = [
        httpx.post(url, json={"model": "claude-native"}),  # no key
        httpx.get(url, headers={"x-api-key": messages.key}),
        httpx.post(url, headers={"x-api-key": messages.key}, content=b"{not json"),
        httpx.post(
            messages.base_url + "/v1/messages/count_tokens",
            headers={"x-api-key": messages.key},
            content=b"[]",
        ),
    ]
    for response in cases:
        assert response.status_code in (400, 401, 405), response.text
        body = response.json()
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}, body
