"""Limits are shared by every Baton process: two uvicorn servers on one Redis
admit what one would. What a killed process leaves behind: tests/quotas/test_inflight.py."""

from __future__ import annotations

from typing import Any

import httpx

from tests.polling import until
from tests.processes import baton
from tests.quotas.conftest import Quota, chat

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
