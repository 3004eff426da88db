"""Limits are shared by every Baton process: two uvicorn servers on one Redis
admit what one would, and a hold left by a killed process expires."""

from __future__ import annotations

import contextlib
import threading
import time
from decimal import Decimal
from typing import Any

import httpx
from django.conf import settings

from billing.models import KeyLimits, Price
from billing.quota.script import periods, scope_keys
from config.redis_clients import sync_client
from tests.polling import until
from tests.processes import baton
from tests.quotas.conftest import Quota, chat
from tests.relay.conftest import make_credential, make_route

# Long windows: nothing refills while the test runs, so the counts are exact.
SLOW_REFILL = {"BATON_RATE_LIMIT_WINDOW": "3600"}


def post(base: str, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        base + "/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {key}"},
        timeout=15,
    )


def test_requests_per_minute_hold_across_two_processes(quota: Quota) -> None:
    api_key = quota.api_key
    api_key.rpm_limit = 10
    api_key.save()
    with baton(**SLOW_REFILL) as one, baton(**SLOW_REFILL) as two:
        served = {one.base_url: 0, two.base_url: 0}
        refused = []
        for i in range(30):
            base = (one, two)[i % 2].base_url
            response = post(base, quota.key, chat(3))
            if response.status_code == 200:
                served[base] += 1
            else:
                refused.append(response)
    assert sum(served.values()) == 10, served
    assert all(count > 0 for count in served.values()), served
    assert {r.status_code for r in refused} == {429}
    assert {r.json()["error"]["code"] for r in refused} == {"rate_limit_exceeded"}
    assert refused[0].headers["x-ratelimit-limit-requests"] == "10"


def test_tokens_per_minute_hold_across_two_processes(quota: Quota) -> None:
    quota.limits(tpm_limit=100)
    used = 0
    served: dict[str, int] = {}
    refusals: set[tuple[int, str]] = set()
    with baton(**SLOW_REFILL) as one, baton(**SLOW_REFILL) as two:
        for i in range(20):
            base = (one, two)[i % 2].base_url
            response = post(base, quota.key, chat(10))
            if response.status_code == 200:
                used += response.json()["usage"]["total_tokens"]
                served[base] = served.get(base, 0) + 1
            else:
                refusals.add((response.status_code, response.json()["error"]["type"]))
            # The settle gives back the unused reserved tokens, off the response path.
            until(lambda: quota.holds() == 0, "the request's hold to be settled")
    assert 0 < used <= 100, used
    assert len(served) == 2, served
    assert refusals == {(429, "tokens")}


def test_a_hold_of_a_killed_process_expires_and_frees_the_budget(quota: Quota) -> None:
    KeyLimits.objects.create(api_key=quota.api_key, team=quota.team, daily_budget=Decimal("0.01"))
    hanging = make_credential(quota.team, "hanging", quota.fake.base_url + "/_f/hang/v1")
    make_route(quota.team, "slow", (hanging, "demo-chat", 0))
    assert Price.objects.filter(model="demo-chat").exists()
    day, month = periods()
    holds = scope_keys(str(quota.team.pk), "k:" + str(quota.api_key.pk), day, month)[0]
    client = sync_client(settings.REDIS_URL)

    with baton(BATON_HOLD_TTL_SECONDS="2") as doomed:
        stuck = threading.Thread(
            target=lambda: _ignore_errors(post, doomed.base_url, quota.key, chat(10, model="slow")),
            daemon=True,
        )
        stuck.start()
        deadline = time.monotonic() + 10
        while client.zcard(holds) == 0:
            assert time.monotonic() < deadline, "the hanging request never got its hold"
            time.sleep(0.02)
        with quota.serve() as base:
            refused = post(base, quota.key, chat(10))
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "insufficient_quota"
            assert refused.headers["x-should-retry"] == "true"  # held, not spent
            doomed.kill()  # the hold is never settled
            time.sleep(2.2)
            assert post(base, quota.key, chat(10)).status_code == 200
    client.close()


def _ignore_errors(function: Any, *args: Any) -> None:
    with contextlib.suppress(httpx.HTTPError):
        function(*args)
