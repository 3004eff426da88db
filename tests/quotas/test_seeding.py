"""Spend the limits store has never seen comes from the ledger: the embedded
default after a restart, and a Redis that starts empty."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx
from django.utils import timezone

from billing.models import UsageRecord
from billing.quota.local import LOCAL
from tests.quotas.conftest import Quota, chat


def post(base: str, key: str) -> httpx.Response:
    return httpx.post(
        base + "/v1/chat/completions",
        json=chat(10),
        headers={"authorization": f"Bearer {key}"},
        timeout=15,
    )


def test_the_embedded_default_remembers_spend_across_a_restart(quota: Quota, settings: Any) -> None:
    settings.REDIS_URL = ""  # one process: in-process limits, usage straight into the ledger
    settings.BATON_LIMITS_REDIS_URL = ""
    quota.limits(daily_budget=Decimal("0.02"))
    with quota.serve() as base:
        assert [post(base, quota.key).status_code for _ in range(3)] == [200, 200, 429]
    assert UsageRecord.objects.filter(team=quota.team, status=200).count() == 2

    LOCAL.reset()  # what a restart does to the in-process limiter
    with quota.serve() as base:
        refused = post(base, quota.key)
    assert refused.status_code == 429
    assert "0.02 USD spent today" in refused.json()["error"]["message"]


def test_an_empty_redis_is_seeded_from_the_ledger(quota: Quota) -> None:
    quota.limits(daily_budget=Decimal("0.03"))
    for _ in range(2):  # two earlier requests at 0.01 each, still unpriced
        UsageRecord.objects.create(
            request_id="req_" + uuid.uuid4().hex,
            team=quota.team,
            api_key_id=quota.api_key.pk,
            endpoint="chat",
            provider="openai",
            upstream_model="demo-chat",
            completion_tokens=10,
            status=200,
            created_at=timezone.now(),
        )
    with quota.serve() as base:
        assert post(base, quota.key).status_code == 200
        quota.settled(Decimal("0.03"))  # the ledger's 0.02 seeded, plus this request
        refused = post(base, quota.key)
    assert refused.status_code == 429
    assert "0.03 USD spent today" in refused.json()["error"]["message"]
    assert UsageRecord.objects.filter(cost=Decimal("0.01")).count() == 2  # priced on the way
