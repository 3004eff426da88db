"""200 concurrent requests against a budget that allows N: never more than N
(plus the documented overspend bound when requests cost more than estimated), and
no overrun at all when every request sets max_tokens, whatever its prompt."""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from django.conf import settings
from prometheus_client import REGISTRY

from billing import credits
from billing.models import CreditEntry, KeyLimits, Price
from billing.quota.script import periods, scope_keys
from config.redis_clients import sync_client
from fake_upstream.tokens import prompt_tokens
from gateway import asgi as relay_asgi
from tests.quotas.conftest import OUTPUT_PRICE, Quota, chat
from tests.relay.conftest import make_route
from wire.dialects import CHAT
from wire.tokens import PromptTokens, prompt_token_bound

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
    day, month = periods()
    client = sync_client(settings.REDIS_URL)
    raw = client.hget(scope_keys(str(quota.team.pk), scope, day, month)[4], "n") or b"0"
    client.close()
    return Decimal(int(raw)) / Decimal(10**9)


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


# Prompts a 4-characters-per-token estimate undercounts: the fake upstream (like a real
# tokenizer) counts each lone letter, digit, punctuation mark and ideograph as a token.
ADVERSARIAL = (
    " ".join("abcdefghijklmnopqrstuvwxyz"[i % 26] for i in range(300)),  # one-letter words
    " ".join(".,;:!?"[i % 6] for i in range(300)),  # lone punctuation
    " ".join(str(i % 10) for i in range(300)),  # lone digits
    "".join("xy"[i % 2] + "中文字"[i % 3] for i in range(300)),  # letters between ideographs
    " ".join("яибвскоу"[i % 8] for i in range(300)),  # one-letter Cyrillic words
)
PROMPT_PRICE = Decimal("1000")  # USD per 1M input tokens: 0.001 per prompt token


@pytest.mark.parametrize("cap", ["daily budget", "prepaid credit"])
def test_adversarial_prompts_with_max_tokens_never_overrun_the_cap(quota: Quota, cap: str) -> None:
    """Every request sets max_tokens, so the only thing that could make it cost more than
    its hold is a prompt the hold undercounts. The hold's prompt count is an upper bound
    (wire/tokens.py), so 200 racing requests never spend a cent past the cap."""
    Price.objects.create(
        provider_id="openai", model="demo-prompt", input=PROMPT_PRICE, output=OUTPUT_PRICE
    )
    make_route(quota.team, "prompt-heavy", (quota.credential, "demo-prompt", 0))
    limit = Decimal("4.00")  # several holds at once, far fewer than 200
    if cap == "daily budget":
        quota.limits(daily_budget=limit)
    else:  # the sign-up grant, cut down to the limit
        balance = credits.balance(quota.team).amount
        credits.add_credit(
            quota.team, limit - balance, actor=None, kind=CreditEntry.Kind.ADJUSTMENT
        )
    bodies: list[dict[str, Any]] = [
        {
            "model": "prompt-heavy",
            "messages": [{"role": "user", "content": ADVERSARIAL[i % len(ADVERSARIAL)]}],
            "max_tokens": 10,
        }
        for i in range(CONCURRENT)
    ]
    before = failed_open()
    with quota.serve() as base:
        responses = asyncio.run(fire_each(base, quota.key, bodies))
    assert failed_open() == before  # every request went through the script
    served = [(body, r) for body, r in zip(bodies, responses, strict=True) if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert {r.status_code for r in refused} <= {429}, {r.status_code for r in refused}
    assert {r.json()["error"]["code"] for r in refused} <= {"insufficient_quota"}
    assert len(served) >= 2, f"the cap allows several requests at once; {len(served)} served"
    spent = Decimal(0)
    for body, response in served:
        usage = response.json()["usage"]
        # The provider's own count (the fake's rule), which is what Baton bills.
        assert usage["prompt_tokens"] == prompt_tokens(body["messages"])
        assert usage["completion_tokens"] == 10
        spent += (
            usage["prompt_tokens"] * PROMPT_PRICE + usage["completion_tokens"] * OUTPUT_PRICE
        ) / 1_000_000
    assert settled(quota, "t", spent) == spent  # what was served is what was charged
    assert spent <= limit, f"overran the {cap} of {limit} by {spent - limit} ({len(served)} served)"


async def fire_each(base: str, key: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    count = len(bodies)
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        return await asyncio.gather(
            *(
                client.post(
                    "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
                )
                for body in bodies
            )
        )


def test_a_large_body_is_counted_in_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same two counts either way; a body over COUNT_IN_THREAD_BYTES off the loop."""
    threads: list[int] = []

    def recording_bound(body: Any) -> int:
        threads.append(threading.get_ident())
        return prompt_token_bound(body)

    monkeypatch.setattr(relay_asgi, "prompt_token_bound", recording_bound)
    small = chat(10, messages=[{"role": "user", "content": ADVERSARIAL[0]}])
    large = chat(10, messages=[{"role": "user", "content": ADVERSARIAL[3] * 300}])
    for body in (small, large):
        size = len(orjson.dumps(body))
        counted = asyncio.run(relay_asgi.RelayApp.count_prompt(CHAT, body, size))
        assert counted == PromptTokens(CHAT.estimate_prompt_tokens(body), prompt_token_bound(body))
    assert len(orjson.dumps(large)) > relay_asgi.COUNT_IN_THREAD_BYTES
    assert threads[0] == threading.get_ident() != threads[1]
