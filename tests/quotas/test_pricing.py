"""Prices: versions, exact decimal costs, currencies, the seeded catalog."""

from __future__ import annotations

import importlib
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps
from django.utils import timezone

from billing.ledger import Pricer, TeamPricing
from billing.models import ExchangeRate, Price, UsageRecord
from billing.money import Rate, from_nanos, to_nanos
from billing.periods import HOUR
from billing.pricing import current_prices, exchange_rate, rates_for, to_rate
from relay.catalog_seed import seed
from relay.models import Provider
from wire.base import Usage


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


def opus_5(**override: Decimal | None) -> Price:
    """Claude Opus 5 at list price (unsaved): $5 in, $0.50 read, $6.25 / $10 written, $25 out."""
    figures: dict[str, Any] = {
        "input": Decimal(5),
        "cached_input": Decimal("0.50"),
        "cache_write": Decimal("6.25"),
        "cache_write_1h": Decimal(10),
        "output": Decimal(25),
    } | override
    return Price(pk=1, provider_id="anthropic", model="claude-opus-5", **figures)


def test_one_hour_cache_writes_are_priced_apart_from_five_minute_writes() -> None:
    rate = to_rate(opus_5(), "USD", factor=Decimal(1))
    assert rate is not None
    # 10,000 prompt tokens: 2,000 read from the cache, 3,000 written of which 1,000 for an
    # hour, so 5,000 plain input; 500 output.
    cost = rate.cost(10_000, 500, cached=2_000, cache_write=3_000, cache_write_1h=1_000)
    # (5000x5 + 2000x0.5 + 2000x6.25 + 1000x10 + 500x25) / 1e6
    assert from_nanos(cost) == Decimal("0.061")
    # The same tokens, every write for five minutes, or every write for an hour:
    assert from_nanos(rate.cost(10_000, 500, 2_000, 3_000)) == Decimal("0.05725")
    assert from_nanos(rate.cost(10_000, 500, 2_000, 3_000, 3_000)) == Decimal("0.06850")
    # One-hour writes are part of the writes, never counted twice: more than were written
    # are the writes, and writes beyond the prompt are the prompt.
    assert rate.cost(10_000, 500, 2_000, 3_000, 9_999) == rate.cost(
        10_000, 500, 2_000, 3_000, 3_000
    )
    assert rate.cost(1_000, 0, 0, 5_000, 5_000) == to_nanos(Decimal("0.01"))  # 1000 x $10
    # The hold is an upper bound: every prompt token at the dearest class, one-hour writes.
    assert rate.estimate(10_000, 500) == to_nanos(Decimal("0.1125"))  # 10000x10 + 500x25


def test_an_empty_one_hour_price_is_the_cache_write_price_then_the_input_price() -> None:
    five_minutes = to_rate(opus_5(cache_write_1h=None), "USD", factor=Decimal(1))
    assert five_minutes is not None
    assert (five_minutes.cache_write, five_minutes.cache_write_1h) == (
        to_nanos(Decimal("6.25")),
        to_nanos(Decimal("6.25")),
    )
    # A price from before the column: every write at the cache write price, as before.
    assert from_nanos(five_minutes.cost(10_000, 500, 2_000, 3_000, 1_000)) == Decimal("0.05725")
    plain = to_rate(opus_5(cache_write=None, cache_write_1h=None), "USD", factor=Decimal(1))
    assert plain is not None
    assert plain.cache_write == plain.cache_write_1h == plain.input == to_nanos(Decimal(5))
    # A Rate built without the column (an older snapshot) prices one-hour writes as writes.
    legacy = Rate(price_id=1, input=5, cached_input=1, cache_write=7, output=9)
    assert legacy.cost(4_000_000, 0, 0, 2_000_000, 1_000_000) == 2 * 5 + 2 * 7


def test_the_relay_and_the_ledger_price_the_same_usage_to_the_same_nano(providers: None) -> None:
    """Admission's settle (``Rate.cost_of`` on the relay's ``Usage``, at the snapshot's rate)
    and the ledger (``Pricer`` on the row) agree, markup and currency conversion included."""
    ExchangeRate.objects.all().delete()
    ExchangeRate.objects.create(
        base="USD", quote="CNY", rate=Decimal("7.13"), effective_from=timezone.now() - HOUR
    )
    price = opus_5()
    price.pk = None
    price.effective_from = timezone.now() - HOUR
    price.save()
    usage = Usage(
        prompt_tokens=123_457,
        completion_tokens=4_321,
        cached_tokens=65_537,
        cache_write_tokens=20_011,
        cache_write_1h_tokens=7_919,
    )
    pricer = Pricer()
    pricer.load_prices(["anthropic"])
    for currency, markup in (("USD", Decimal(0)), ("USD", Decimal("12.5")), ("CNY", Decimal(-7))):
        rate = rates_for(["anthropic"], currency, markup)[("anthropic", "claude-opus-5")]
        record = UsageRecord(
            team_id=uuid.uuid4(),
            provider="anthropic",
            upstream_model="claude-opus-5",
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
            created_at=timezone.now(),
        )
        pricer.teams[str(record.team_id)] = TeamPricing(currency, markup)
        pricer.price(record)
        assert record.cost == from_nanos(rate.cost_of(usage)), (currency, markup)
    # In dollars without markup, worked out by hand:
    # (37909x5 + 65537x0.5 + 12092x6.25 + 7919x10 + 4321x25) / 1e6
    usd = rates_for(["anthropic"], "USD")[("anthropic", "claude-opus-5")]
    assert from_nanos(usd.cost_of(usage)) == Decimal("0.4851035")


def test_a_converted_price_is_the_same_on_the_relay_and_in_the_ledger(providers: None) -> None:
    """The ledger applies exchange rates to 12 places; the relay's rates must too, or a
    rate such as 1/7.2 rounds a nano apart (7.2 CNY at 7.2 CNY per USD is 1 USD exactly
    at full precision, 1.0000000000008 USD at 12 places)."""
    ExchangeRate.objects.all().delete()
    ExchangeRate.objects.create(
        base="USD", quote="CNY", rate=Decimal("7.2"), effective_from=timezone.now() - HOUR
    )
    Price.objects.create(
        provider_id="qwen",
        model="q",
        input=Decimal("7.2"),
        output=Decimal("7.2"),
        currency="CNY",
        effective_from=timezone.now() - HOUR,
    )
    rate = rates_for(["qwen"], "USD")[("qwen", "q")]
    record = UsageRecord(
        team_id=uuid.uuid4(),
        provider="qwen",
        upstream_model="q",
        prompt_tokens=1_000_000,
        completion_tokens=0,
        created_at=timezone.now(),
    )
    pricer = Pricer()
    pricer.load_prices(["qwen"])
    pricer.teams[str(record.team_id)] = TeamPricing("USD", Decimal(0))
    pricer.price(record)
    assert record.cost == Decimal("1.000000001")  # rounded up, never down
    assert from_nanos(rate.cost_of(record)) == record.cost


def figures(price: Price) -> tuple[Any, ...]:
    return (
        price.input,
        price.cached_input,
        price.cache_write,
        price.cache_write_1h,
        price.output,
        price.currency,
    )


def test_the_2026_catalog_only_adds_missing_versions(providers: None) -> None:
    seeds = importlib.import_module("billing.migrations.0003_seed_prices")
    catalog = importlib.import_module("billing.migrations.0009_price_catalog_2026")
    Price.objects.all().delete()  # what the migrations left: start from billing 0003 alone
    seeds.seed(apps, None)
    # The operator edited one seed and priced a new model their own way.
    Price.objects.filter(model="claude-haiku-4-5").update(output=Decimal(4))
    Price.objects.create(
        provider_id="anthropic",
        model="claude-opus-5",
        input=Decimal("4.5"),
        output=Decimal("22.5"),
        effective_from=timezone.now() - timedelta(days=3),
    )
    catalog.add_missing(apps, None)
    catalog.add_missing(apps, None)  # twice: nothing more

    prices = current_prices(["anthropic", "deepseek", "moonshot", "qwen"])
    usd = "USD"
    expected = {
        "claude-fable-5-1": ("10", "1", "12.5", "20", "50"),
        "claude-opus-5-5": ("4", "0.4", "5", "8", "20"),
        "claude-sonnet-5-5": ("2", "0.2", "2.5", "4", "10"),
        "claude-haiku-5-5": ("0.1", "0.01", "0.125", "0.2", "0.5"),
        # Baton's own Claude 4 seeds gain a version with the one-hour price.
        "claude-sonnet-4-5": ("3", "0.3", "3.75", "6", "15"),
        "claude-opus-4-1": ("15", "1.5", "18.75", "30", "75"),
    }
    for model, values in expected.items():
        assert figures(prices[("anthropic", model)]) == (*map(Decimal, values), usd), model
    assert Price.objects.filter(model="claude-sonnet-4-5").count() == 2  # the seed stays
    # The operator's prices are left as they were.
    assert figures(prices[("anthropic", "claude-opus-5")]) == (
        Decimal("4.5"),
        None,
        None,
        None,
        Decimal("22.5"),
        usd,
    )
    assert Price.objects.filter(model="claude-opus-5").count() == 1
    haiku = Price.objects.get(model="claude-haiku-4-5")
    assert (haiku.output, haiku.cache_write_1h) == (Decimal(4), None)
    # The seeds that already had these figures get no copy.
    seeded: tuple[tuple[str, str, tuple[str | None, ...]], ...] = (
        ("deepseek", "deepseek-v4-flash", ("0.14", "0.0028", None, None, "0.28", "USD")),
        ("deepseek", "deepseek-v4-pro", ("1.74", "0.0145", None, None, "3.48", "USD")),
        ("moonshot", "kimi-k2.6", ("0.95", "0.16", None, None, "4.00", "USD")),
        ("qwen", "qwen3-max", ("2.5", "0.5", None, None, "10", "CNY")),
    )
    for provider, model, listed in seeded:
        want = tuple(Decimal(v) if v and v not in ("USD", "CNY") else v for v in listed)
        assert figures(prices[(provider, model)]) == want, model
        assert Price.objects.filter(provider_id=provider, model=model).count() == 1

    # Opus 5 at list price: $5 in -> $0.50 read, $6.25 and $10 written, as Anthropic bills.
    Price.objects.filter(model="claude-opus-5").delete()
    catalog.add_missing(apps, None)
    rate = rates_for(["anthropic"], "USD")[("anthropic", "claude-opus-5")]
    assert [from_nanos(n) for n in (rate.cached_input, rate.cache_write, rate.long_write)] == [
        Decimal("0.5"),
        Decimal("6.25"),
        Decimal("10"),
    ]


def test_a_fresh_catalog_says_where_each_price_came_from(providers: None) -> None:
    catalog = importlib.import_module("billing.migrations.0009_price_catalog_2026")
    Price.objects.all().delete()
    catalog.add_missing(apps, None)
    notes = dict(Price.objects.values_list("model", "note"))
    assert "third-party listing" in notes["kimi-k2.6"]
    assert "one tier" in notes["qwen3-max"] and "32K" in notes["qwen3-max"]
    assert "cache miss / cache hit / output" in notes["deepseek-v4-pro"]
    assert "1-hour write 2x" in notes["claude-fable-5-1"]
    qwen = Price.objects.get(model="qwen3-max")
    assert (qwen.input, qwen.cached_input, qwen.output, qwen.currency) == (
        Decimal("2.5"),
        Decimal("0.5"),
        Decimal(10),
        "CNY",
    )
