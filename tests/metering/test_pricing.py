"""Usage is priced at ingestion and keeps how: the price version, the exchange
rate and the team's markup; a later price change rewrites nothing; usage of
a model without a price is served at zero cost, flagged and logged."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import User
from billing.ledger import ingest
from billing.models import Price, TeamLimits, UsageRecord
from billing.money import from_nanos
from billing.pricing import rates_for
from billing.quota.snapshots import team_quota
from tests.conftest import client_for
from tests.metering.conftest import Metered, event


def record(request_id: str) -> UsageRecord:
    return UsageRecord.objects.get(request_id=request_id)


def test_a_record_keeps_its_price_version_rate_and_markup(metered: Metered) -> None:
    acme, globex = metered.cast.acme, metered.cast.globex
    now = timezone.now()
    usd = event(acme.pk, None, now, model="meter-small", prompt=1_000_000, completion=0)
    cny = event(globex.pk, None, now, model="meter-small", prompt=1_000_000, completion=0)
    converted = event(acme.pk, None, now, "qwen", "meter-cn", prompt=0, completion=1_000_000)
    ingest([usd, cny, converted])
    version = Price.objects.get(model="meter-small")

    acme_row = record(usd.request_id)  # 1 USD list, plus Acme's 10% markup
    assert (acme_row.cost, acme_row.currency, acme_row.markup) == (Decimal("1.1"), "USD", 10)
    assert (acme_row.price, acme_row.exchange_rate, acme_row.unpriced) == (version, 1, False)

    globex_row = record(cny.request_id)  # 1 USD at 7.2 CNY, no markup
    assert (globex_row.cost, globex_row.currency, globex_row.exchange_rate) == (
        Decimal("7.2"),
        "CNY",
        Decimal("7.2"),
    )

    qwen_row = record(converted.request_id)  # 8 CNY at 1/7.2, plus 10%
    assert qwen_row.exchange_rate == Decimal("0.138888888889")
    assert qwen_row.cost == Decimal("1.222222223")  # rounded up to the nano, never down


def test_a_price_change_never_rewrites_history(metered: Metered) -> None:
    acme = metered.cast.acme
    now = timezone.now()
    before = event(acme.pk, None, now - timedelta(hours=2), prompt=1_000_000, completion=0)
    ingest([before])
    Price.objects.create(
        provider_id="openai",
        model="meter-small",
        input=3,
        output=6,
        effective_from=now - timedelta(hours=1),
    )
    late = event(acme.pk, None, now - timedelta(hours=3), prompt=1_000_000, completion=0)
    after = event(acme.pk, None, now, prompt=1_000_000, completion=0)
    ingest([late, after])
    assert record(before.request_id).cost == Decimal("1.1")
    assert record(late.request_id).cost == Decimal("1.1")  # ran under the old price
    assert record(after.request_id).cost == Decimal("3.3")
    assert record(after.request_id).price != record(before.request_id).price


def test_unpriced_usage_is_served_free_flagged_and_logged(
    metered: Metered, caplog: pytest.LogCaptureFixture
) -> None:
    acme = metered.cast.acme
    unpriced = event(acme.pk, None, timezone.now(), model="meter-unpriced")
    refused = event(acme.pk, None, timezone.now(), model="meter-unpriced", status=429)
    with caplog.at_level(logging.WARNING, logger="baton.billing"):
        ingest([unpriced, refused])
    row = record(unpriced.request_id)
    assert (row.cost, row.unpriced, row.price) == (Decimal(0), True, None)
    assert record(refused.request_id).unpriced is False  # no tokens, nothing to price
    assert "openai/meter-unpriced recorded at zero cost" in caplog.text

    operator = User.objects.create_superuser("operator@example.com", "x-sturdy-passphrase-1")
    page = client_for(operator).get("/admin/billing/usagerecord/", {"unpriced__exact": "1"})
    assert page.status_code == 200
    assert unpriced.request_id in page.content.decode()
    assert refused.request_id not in page.content.decode()


def test_the_relay_charges_budgets_with_the_markup_too(metered: Metered) -> None:
    rate = rates_for(["openai"], "USD", Decimal(10))[("openai", "meter-small")]
    assert from_nanos(rate.cost(1_000_000, 0)) == Decimal("1.1")
    discount = rates_for(["openai"], "USD", Decimal(-25))[("openai", "meter-small")]
    assert from_nanos(discount.cost(1_000_000, 0)) == Decimal("0.75")
    acme = team_quota(str(metered.cast.acme.pk), ["openai"])
    assert acme.rates[("openai", "meter-small")] == rate
    TeamLimits.objects.filter(team=metered.cast.acme).update(markup=Decimal(0))
    plain = team_quota(str(metered.cast.acme.pk), ["openai"])
    assert from_nanos(plain.rates[("openai", "meter-small")].cost(1_000_000, 0)) == Decimal(1)
