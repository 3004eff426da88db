"""Metered teams and generated traffic.

``metered`` is the cast's Acme (USD, a 10% markup, three keys) and Globex
(CNY, one key) with a small price catalog of their own: two OpenAI models in
USD, one Qwen model in CNY (converted for Acme at 7.2 CNY per USD) and one
model with no price at all. ``traffic`` writes usage events straight into
the ledger through ``billing.ledger.ingest``, so they are priced as the
relay's would be.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Count, Sum
from django.utils import timezone

from accounts.models import ApiKey, Team
from billing.events import UsageEvent
from billing.ledger import ingest
from billing.models import (
    BillingLineItem,
    BillingRecord,
    ExchangeRate,
    HourlyUsage,
    Price,
    TeamLimits,
    UsageRecord,
)
from tests.conftest import Cast
from tests.quotas import conftest as quota_fixtures
from tests.relay.conftest import make_key

# The relay's fixtures, for the tests that serve real requests.
fake_upstream = quota_fixtures.fake_upstream
fake = quota_fixtures.fake
redis_client = quota_fixtures.redis_client
quota = quota_fixtures.quota

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
MODELS = (
    ("openai", "meter-small"),
    ("openai", "meter-large"),
    ("qwen", "meter-cn"),
    ("openai", "meter-unpriced"),
)


@dataclass
class Metered:
    cast: Cast
    keys: dict[str, list[uuid.UUID]] = field(default_factory=dict)

    @property
    def teams(self) -> list[Team]:
        return [self.cast.acme, self.cast.globex]


def prices() -> None:
    ExchangeRate.objects.all().delete()  # the seeded rates: these tests use their own
    Price.objects.create(
        provider_id="openai", model="meter-small", input=1, output=2, effective_from=LONG_AGO
    )
    Price.objects.create(
        provider_id="openai",
        model="meter-large",
        input=10,
        cached_input=Decimal("2.5"),
        cache_write=Decimal("12.5"),
        cache_write_1h=20,
        output=30,
        effective_from=LONG_AGO,
    )
    Price.objects.create(
        provider_id="qwen",
        model="meter-cn",
        input=2,
        output=8,
        currency="CNY",
        effective_from=LONG_AGO,
    )
    ExchangeRate.objects.create(
        base="USD", quote="CNY", rate=Decimal("7.2"), effective_from=LONG_AGO
    )


@pytest.fixture
def metered(cast: Cast) -> Metered:
    prices()
    TeamLimits.objects.filter(team=cast.acme).update(markup=Decimal(10))
    TeamLimits.objects.filter(team=cast.globex).update(currency="CNY")
    result = Metered(cast)
    for team, names in ((cast.acme, ("backend", "batch", "notebook")), (cast.globex, ("main",))):
        for name in names:
            make_key(team, name=name)
        result.keys[str(team.pk)] = list(
            ApiKey.objects.filter(team=team).order_by("name").values_list("pk", flat=True)
        )
    return result


def event(
    team_id: Any,
    key_id: Any,
    at: datetime,
    provider: str = "openai",
    model: str = "meter-small",
    *,
    prompt: int = 1000,
    completion: int = 200,
    cached: int = 0,
    cache_write: int = 0,
    cache_write_1h: int = 0,
    reasoning_tokens: int = 0,
    status: int = 200,
    latency_ms: float = 400.0,
    request_id: str | None = None,
    **extra: Any,
) -> UsageEvent:
    failed = status >= 400
    return UsageEvent(
        request_id=request_id or "req_" + uuid.uuid4().hex,
        team_id=str(team_id),
        api_key_id=str(key_id) if key_id else None,
        endpoint="chat",
        alias=model,
        credential_id=None,
        provider=provider,
        upstream_model=model,
        prompt_tokens=0 if failed else prompt,
        cached_tokens=0 if failed else cached,
        cache_write_tokens=0 if failed else cache_write,
        cache_write_1h_tokens=0 if failed else cache_write_1h,
        completion_tokens=0 if failed else completion,
        reasoning_tokens=0 if failed else reasoning_tokens,
        estimated=False,
        status=status,
        error_class="upstream_error" if failed else "",
        streamed=False,
        attempts=1,
        latency_ms=latency_ms,
        ttfb_ms=None,
        overhead_ms=0.5,
        created_at=at.timestamp(),
        **extra,
    )


def traffic(
    metered: Metered, start: datetime, end: datetime, count: int, seed: int = 7
) -> list[UsageEvent]:
    """``count`` requests spread over [start, end), mostly Acme's."""
    rng = random.Random(seed)
    span = (end - start).total_seconds()
    events = []
    for _ in range(count):
        team = metered.cast.acme if rng.random() < 0.8 else metered.cast.globex
        provider, model = rng.choice(MODELS)
        prompt = rng.randint(1, 5000)
        # The model with cache write prices writes an eighth of each prompt, half of it for
        # an hour (derived from the prompt: the random sequence stays what it was).
        written = prompt // 8 if model == "meter-large" else 0
        events.append(
            event(
                team.pk,
                rng.choice(metered.keys[str(team.pk)]),
                start + timedelta(seconds=rng.random() * span),
                provider,
                model,
                prompt=prompt,
                completion=rng.randint(0, 2000),
                cached=rng.choice((0, 0, 0, 500)),
                cache_write=written,
                cache_write_1h=written // 2,
                status=rng.choice((200,) * 18 + (429, 502)),
                latency_ms=rng.lognormvariate(6.5, 0.8),
            )
        )
    for offset in range(0, len(events), 1000):
        ingest(events[offset : offset + 1000])
    return events


def month_ago() -> tuple[datetime, datetime]:
    """A whole calendar month safely in the past (two months back)."""
    today = timezone.now().astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (today - timedelta(days=40)).replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


@dataclass(frozen=True)
class Totals:
    requests: int
    cost: Decimal
    written_1h: int = 0  # one-hour cache writes


def ledger_totals(team: Team, start: datetime | None = None, end: datetime | None = None) -> Totals:
    rows = UsageRecord.objects.filter(team=team)
    if start is not None:
        rows = rows.filter(created_at__gte=start)
    if end is not None:
        rows = rows.filter(created_at__lt=end)
    data = rows.aggregate(
        requests=Count("id"), cost=Sum("cost"), written_1h=Sum("cache_write_1h_tokens")
    )
    return Totals(data["requests"], data["cost"] or Decimal(0), data["written_1h"] or 0)


def rollup_totals(team: Team, start: datetime | None = None, end: datetime | None = None) -> Totals:
    rows = HourlyUsage.objects.filter(team=team)
    if start is not None:
        rows = rows.filter(hour__gte=start)
    if end is not None:
        rows = rows.filter(hour__lt=end)
    data = rows.aggregate(
        requests=Sum("requests"), cost=Sum("cost"), written_1h=Sum("cache_write_1h_tokens")
    )
    return Totals(data["requests"] or 0, data["cost"] or Decimal(0), data["written_1h"] or 0)


def record_totals(team: Team) -> Totals:
    records = BillingRecord.objects.filter(team=team)
    lines = BillingLineItem.objects.filter(record__in=records).aggregate(
        requests=Sum("requests"), written_1h=Sum("cache_write_1h_tokens")
    )
    cost = records.aggregate(total=Sum("total"))["total"] or Decimal(0)
    return Totals(lines["requests"] or 0, cost, lines["written_1h"] or 0)


def snapshot() -> list[tuple[Any, ...]]:
    """Everything the aggregation tasks wrote, for comparing two runs."""
    hours = sorted(
        HourlyUsage.objects.values_list(
            "team_id",
            "hour",
            "api_key_id",
            "provider",
            "model",
            "requests",
            "errors",
            "cost",
            "cache_write_tokens",
            "cache_write_1h_tokens",
            "lat_05",
        )
    )
    records = sorted(
        BillingRecord.objects.values_list(
            "team_id", "period_start", "status", "usage", "adjustments", "total", "credits_applied"
        )
    )
    lines = sorted(
        BillingLineItem.objects.values_list(
            "team_id",
            "record__period_start",
            "kind",
            "provider",
            "model",
            "for_period_start",
            "requests",
            "cache_write_1h_tokens",
            "amount",
        )
    )
    return [tuple(hours), tuple(records), tuple(lines)]


@pytest.fixture
def month() -> Iterator[tuple[datetime, datetime]]:
    yield month_ago()
