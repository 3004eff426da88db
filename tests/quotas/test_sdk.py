"""Refusals and rate-limit headers as the official openai SDK sees them."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from billing import credits
from billing.models import CreditEntry, KeyLimits
from billing.usage import charge_usage
from tests.quotas.conftest import MESSAGES, Quota, chat


def set_key_limits(quota: Quota, **values: Any) -> None:
    api_key = quota.api_key
    KeyLimits.objects.update_or_create(api_key=api_key, defaults={"team": quota.team, **values})


def test_rate_limit_error_has_openai_shape_and_the_sdk_retry_honours_retry_after(
    quota: Quota, settings: Any
) -> None:
    settings.BATON_RATE_LIMIT_WINDOW = 1
    api_key = quota.api_key
    api_key.rpm_limit = 1
    api_key.save()
    with quota.serve() as base:
        ok = quota.client(base).chat.completions.with_raw_response.create(
            model="gpt-4o", messages=MESSAGES, max_tokens=3
        )
        assert ok.headers["x-ratelimit-limit-requests"] == "1"
        assert ok.headers["x-ratelimit-remaining-requests"] == "0"
        assert ok.headers["x-ratelimit-reset-requests"].endswith("s")

        with pytest.raises(openai.RateLimitError) as refused:
            quota.client(base).chat.completions.create(
                model="gpt-4o", messages=MESSAGES, max_tokens=3
            )
        error = refused.value
        assert error.code == "rate_limit_exceeded"
        assert error.type == "requests"
        assert "requests per minute" in error.message
        headers = error.response.headers
        assert headers["retry-after"] == "1"
        assert 0 < int(headers["retry-after-ms"]) <= 1000
        assert headers["x-ratelimit-limit-requests"] == "1"
        assert headers["x-ratelimit-remaining-requests"] == "0"
        body = error.response.json()
        assert set(body["error"]) == {"message", "type", "param", "code"}

        started = time.monotonic()
        again = quota.client(base, max_retries=1).chat.completions.create(
            model="gpt-4o", messages=MESSAGES, max_tokens=3
        )
        waited = time.monotonic() - started
    assert again.choices[0].message.content
    assert 0.3 < waited < 3, waited


def test_tokens_per_minute_refusal_names_tokens(quota: Quota) -> None:
    quota.limits(tpm_limit=100)
    with quota.serve() as base:
        client = quota.client(base)
        first = client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=MESSAGES, max_tokens=80
        )
        assert first.headers["x-ratelimit-limit-tokens"] == "100"
        held = 100 - int(first.headers["x-ratelimit-remaining-tokens"])
        assert 80 < held <= 100  # the prompt's estimate plus its output cap
        # A second request of the same size fits the limit on its own but not what is left of
        # this minute (what the first used, or still holds): the per-minute refusal.
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=80)
        # One larger than the whole limit could never pass: refused as too large, for good.
        with pytest.raises(openai.RateLimitError) as too_large:
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=100)

    error = refused.value
    assert (error.code, error.type) == ("rate_limit_exceeded", "tokens")
    message = error.response.json()["error"]["message"]
    assert message.startswith(
        "Rate limit reached on tokens per minute (TPM) for your team's limit: limit 100, remaining "
    )
    assert f"requested {held}. Please try again in " in message
    assert f"/t/{quota.team.pk}/limits/" in message
    headers = error.response.headers
    assert headers["x-ratelimit-limit-tokens"] == "100"
    assert int(headers["x-ratelimit-remaining-tokens"]) < held
    assert 1 <= int(headers["retry-after"]) <= 60
    assert "x-should-retry" not in headers

    large = too_large.value
    assert (large.code, large.type) == ("rate_limit_exceeded", "tokens")
    assert large.response.json()["error"]["message"].startswith(
        "Request too large for your team's tokens per minute (TPM) limit: limit 100, requested "
    )
    assert large.response.headers["x-should-retry"] == "false"
    assert len([r for r in quota.fake.requests() if r["path"].endswith("/chat/completions")]) == 1


def test_a_spent_budget_is_insufficient_quota_and_the_sdk_does_not_retry(quota: Quota) -> None:
    set_key_limits(quota, daily_budget=Decimal("0.01"))
    with quota.serve() as base:
        quota.client(base).chat.completions.create(**chat(10))
        quota.settled(Decimal("0.01"), scope=f"k:{quota.api_key.pk}")  # off the response path
        with pytest.raises(openai.RateLimitError) as refused:
            quota.client(base, max_retries=3).chat.completions.create(**chat(10))
    error = refused.value
    assert error.code == "insufficient_quota" and error.type == "insufficient_quota"
    assert "daily budget of 0.01 USD" in error.message
    assert f"/t/{quota.team.pk}/limits/keys/{quota.api_key.pk}/" in error.message
    assert error.response.headers["x-should-retry"] == "false"
    assert len([r for r in quota.fake.requests() if r["path"].endswith("/chat/completions")]) == 1


def test_no_credit_left_is_insufficient_quota(quota: Quota) -> None:
    credits.add_credit(quota.team, Decimal("-4.99"), actor=None, kind=CreditEntry.Kind.ADJUSTMENT)
    with quota.serve() as base:
        quota.client(base).chat.completions.create(**chat(10))
        quota.settled(Decimal("0.01"))
        with pytest.raises(openai.RateLimitError) as refused:
            quota.client(base).chat.completions.create(**chat(10))
    assert refused.value.code == "insufficient_quota"
    assert "prepaid credit is used up" in refused.value.message
    assert f"/t/{quota.team.pk}/credits/" in refused.value.message


def test_streams_carry_the_rate_limit_headers(quota: Quota) -> None:
    quota.limits(rpm_limit=100, tpm_limit=10_000)
    with quota.serve() as base:
        response = httpx.post(
            base + "/v1/chat/completions",
            json=chat(5, stream=True),
            headers={"authorization": f"Bearer {quota.key}"},
            timeout=10,
        )
    assert response.status_code == 200
    assert response.headers["x-ratelimit-limit-requests"] == "100"
    assert response.headers["x-ratelimit-remaining-requests"] == "99"
    assert response.headers["x-ratelimit-limit-tokens"] == "10000"


def test_unpriced_models_are_refused_when_the_operator_says_so(quota: Quota, settings: Any) -> None:
    settings.BATON_UNPRICED_MODELS = "refuse"
    with quota.serve() as base:
        with pytest.raises(openai.BadRequestError) as refused:
            quota.client(base).chat.completions.create(
                model="openai/never-priced", messages=MESSAGES, max_tokens=3
            )
        assert refused.value.code == "model_not_priced"
        assert quota.client(base).chat.completions.create(**chat(3)).choices


def test_unpriced_models_are_served_at_zero_cost_by_default(quota: Quota) -> None:
    credits.add_credit(quota.team, Decimal("-5"), actor=None, kind=CreditEntry.Kind.ADJUSTMENT)
    credits.add_credit(quota.team, Decimal("0.000001"), actor=None)
    with quota.serve() as base:
        for _ in range(3):
            reply = quota.client(base).chat.completions.create(
                model="openai/never-priced", messages=MESSAGES, max_tokens=3
            )
            assert reply.choices[0].message.content and reply.usage
        rows = quota.ledger(expected=3)
    assert len(rows) == 3
    for row in rows:
        assert (row.upstream_model, row.status) == ("never-priced", 200)
        assert row.prompt_tokens > 0 and row.completion_tokens > 0
        assert (row.cost, row.unpriced, row.price) == (Decimal(0), True, None)
    assert charge_usage() == 0  # nothing to debit
    assert credits.balance(quota.team).amount == Decimal("0.000001")
