"""Prices: versions, exact decimal costs, currencies, the seeded catalog."""

from __future__ import annotations

import importlib
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.utils import timezone

from billing.models import ExchangeRate, Price
from billing.money import Rate, from_nanos, to_nanos
from billing.pricing import current_prices, exchange_rate, rates_for
from relay.catalog_seed import seed
from relay.models import Provider


@pytest.fixture
def providers(db: None) -> None:
    seed(Provider)


def test_costs_are_exact_and_round_up_to_a_nano() -> None:
    rate = Rate(
        price_id=1,
        input=to_nanos(Decimal("3")),
        cached_input=to_nanos(Decimal("0.30")),
        cache_write=to_nanos(Decimal("3.75")),
        output=to_nanos(Decimal("15")),
    )
    # 1000 prompt tokens of which 600 cached and 100 written, 200 output.
    cost = rate.cost(1000, 200, cached=600, cache_write=100)
    assert from_nanos(cost) == Decimal("0.004455")  # (300x3 + 600x0.3 + 100x3.75 + 200x15) / 1e6
    tiny = Rate(
        price_id=1, input=to_nanos(Decimal("0.0028")), cached_input=0, cache_write=0, output=0
    )
    assert tiny.cost(1, 0) == 3  # 2.8 nanos, rounded up
    assert rate.estimate(1000, 200) == to_nanos(
        Decimal("0.00675")
    )  # every prompt token as a cache write


def test_the_price_in_force_is_the_latest_effective_version(providers: None) -> None:
    now = timezone.now()
    Price.objects.create(
        provider_id="openai", model="m", input=1, output=2, effective_from=now - timedelta(days=10)
    )
    Price.objects.create(
        provider_id="openai", model="m", input=3, output=4, effective_from=now - timedelta(days=1)
    )
    Price.objects.create(
        provider_id="openai", model="m", input=5, output=6, effective_from=now + timedelta(days=1)
    )
    assert current_prices(["openai"])[("openai", "m")].input == 3
    assert current_prices(["openai"], now - timedelta(days=5))[("openai", "m")].input == 1


def test_exchange_rates_work_both_ways_and_the_newest_wins(db: None) -> None:
    ExchangeRate.objects.all().delete()
    assert exchange_rate("USD", "CNY") is None
    ExchangeRate.objects.create(
        base="USD",
        quote="CNY",
        rate=Decimal("7"),
        effective_from=timezone.now() - timedelta(days=2),
    )
    assert exchange_rate("CNY", "USD") == Decimal(1) / Decimal(7)
    ExchangeRate.objects.create(
        base="CNY",
        quote="USD",
        rate=Decimal("0.125"),
        effective_from=timezone.now() - timedelta(days=1),
    )
    assert exchange_rate("USD", "CNY") == Decimal(8)


def test_rates_convert_into_the_team_currency_or_leave_the_model_unpriced(providers: None) -> None:
    ExchangeRate.objects.all().delete()
    Price.objects.create(
        provider_id="qwen",
        model="q",
        input=Decimal("2.5"),
        output=10,
        currency="CNY",
        effective_from=timezone.now() - timedelta(days=1),
    )
    assert ("qwen", "q") not in rates_for(["qwen"], "USD")
    ExchangeRate.objects.create(
        base="USD",
        quote="CNY",
        rate=Decimal("5"),
        effective_from=timezone.now() - timedelta(days=1),
    )
    rate = rates_for(["qwen"], "USD")[("qwen", "q")]
    assert from_nanos(rate.input) == Decimal("0.5") and from_nanos(rate.output) == Decimal(2)
    assert from_nanos(rates_for(["qwen"], "CNY")[("qwen", "q")].input) == Decimal("2.5")


def test_the_catalog_is_seeded_from_the_reference(providers: None) -> None:
    migration = importlib.import_module("billing.migrations.0003_seed_prices")
    migration.seed(apps, None)
    prices = current_prices(["openai", "anthropic", "deepseek", "qwen"])
    assert prices[("openai", "gpt-4o")].output == Decimal(10)
    sonnet = prices[("anthropic", "claude-sonnet-4-5")]
    assert (sonnet.input, sonnet.cached_input, sonnet.cache_write) == (
        Decimal(3),
        Decimal("0.3"),
        Decimal("3.75"),
    )
    assert prices[("deepseek", "deepseek-v4-flash")].cached_input == Decimal("0.0028")
    assert prices[("qwen", "qwen3-max")].currency == "CNY"
