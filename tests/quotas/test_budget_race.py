"""200 concurrent requests against a budget that allows N: never more than N
(plus the documented overspend bound when requests cost more than estimated)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from billing.models import KeyLimits
from tests.quotas.conftest import OUTPUT_PRICE, Quota, chat

CONCURRENT = 200


async def fire(base: str, key: str, body: dict[str, Any], count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        return await asyncio.gather(
            *(
                client.post(
                    "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
                )
                for _ in range(count)
            )
        )


def failed_open() -> float:
    return REGISTRY.get_sample_value("baton_limits_unavailable_total", {"outcome": "open"}) or 0.0


def spent_today(quota: Quota, scope: str) -> Decimal:
    return quota.spent_today(scope)


def settled(quota: Quota, scope: str, expected: Decimal, timeout: float = 3) -> Decimal:
    deadline = time.monotonic() + timeout
    while (value := spent_today(quota, scope)) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


@pytest.fixture(autouse=True)
def _patient_limits_store(settings: Any) -> None:
    # Client, relay and upstream share one test process (and its GIL): under a
    # 200-request burst a limits call can wait on the event loop longer than
    # the production timeout, which would fail open and spoil the count.
    settings.BATON_LIMITS_REDIS_TIMEOUT = 10


def test_a_team_budget_admits_at_most_what_it_allows(quota: Quota) -> None:
    per_request = (
        Decimal(10) * OUTPUT_PRICE / 1_000_000
    )  # max_tokens=10: 0.01 USD, estimated exactly
    allowed = 7
    quota.limits(daily_budget=per_request * allowed)
    before = failed_open()
    with quota.serve() as base:
        responses = asyncio.run(fire(base, quota.key, chat(10), CONCURRENT))
    assert failed_open() == before  # every request went through the script
    served = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(served) + len(refused) == CONCURRENT, {r.status_code for r in responses}
    assert 1 <= len(served) <= allowed
    assert {r.json()["error"]["code"] for r in refused} == {"insufficient_quota"}
    # What was served was charged, and no more than the budget.
    assert settled(quota, "t", per_request * len(served)) == per_request * len(served)
    assert per_request * len(served) <= per_request * allowed


def test_underestimated_requests_overrun_by_at_most_concurrency_times_the_error(
    quota: Quota, settings: Any
) -> None:
    """Without max_tokens Baton holds BATON_HOLD_DEFAULT_OUTPUT_TOKENS (here 5) but
    the fake writes 20: each request costs 15 tokens more than held. With at most
    C requests in flight, the cap is overrun by at most C x that error."""
    settings.BATON_HOLD_DEFAULT_OUTPUT_TOKENS = 5
    concurrency = 10
    estimate = Decimal(5) * OUTPUT_PRICE / 1_000_000
    actual = Decimal(20) * OUTPUT_PRICE / 1_000_000
    budget = Decimal("0.05")
    KeyLimits.objects.create(
        api_key=quota.api_key, team=quota.team, daily_budget=budget, max_concurrent=concurrency
    )
    before = failed_open()
    with quota.serve() as base:
        responses = asyncio.run(fire(base, quota.key, chat(None), CONCURRENT))
    assert failed_open() == before
    served = sum(1 for r in responses if r.status_code == 200)
    codes = {r.json()["error"]["code"] for r in responses if r.status_code != 200}
    assert codes <= {"insufficient_quota", "rate_limit_exceeded"}
    assert served >= 1
    spent = settled(quota, "k:" + str(quota.api_key.pk), actual * served)
    assert spent == actual * served
    bound = concurrency * (actual - estimate)
    assert spent <= budget + bound, (spent, budget, bound)
