"""Every token class, from the ledger to the pages: input, cache reads, cache writes kept
five minutes and an hour (priced apart), output and reasoning; and what the request log
says about each request's dialect and reasoning.

Acme pays a 10% markup. ``meter-large`` costs 10 USD input, 2.5 cached, 12.5 written for
five minutes, 20 written for an hour and 30 output per 1M tokens (so 11, 2.75, 13.75, 22 and
33 with the markup); ``meter-small`` 1 in and 2 out, with no cache prices: its writes cost
the input price whatever their lifetime.
"""

from __future__ import annotations

import csv
import importlib
import io
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from billing.events import UsageEvent
from billing.ledger import ingest
from billing.models import BillingLineItem, BillingRecord, HourlyUsage, UsageRecord
from billing.records import bill
from billing.rollups import rollup
from tests.conftest import client_for
from tests.metering.conftest import Metered, event, snapshot


@dataclass
class Traffic:
    large_5m: UsageEvent  # both kinds of writes, through Messages natively
    large_chat: UsageEvent  # five-minute writes, Messages translated to chat, reasoning dropped
    small: UsageEvent  # no cache prices; chat, reasoning restored


@pytest.fixture
def classes(metered: Metered) -> Traffic:
    acme = metered.cast.acme
    keys = metered.keys[str(acme.pk)]
    at = timezone.now() - timedelta(seconds=5)
    sent = Traffic(
        large_5m=event(
            acme.pk,
            keys[0],
            at,
            model="meter-large",
            prompt=10_000,
            cached=2_000,
            cache_write=3_000,
            cache_write_1h=1_000,
            completion=500,
            reasoning_tokens=120,
            dialect="messages",
            egress="messages",
        ),
        large_chat=event(
            acme.pk,
            keys[0],
            at,
            model="meter-large",
            prompt=4_000,
            cache_write=800,
            completion=100,
            dialect="messages",
            egress="chat",
            reasoning="dropped",
        ),
        small=event(
            acme.pk,
            keys[1],
            at,
            model="meter-small",
            prompt=1_000,
            cache_write=400,
            cache_write_1h=400,
            completion=200,
            reasoning_tokens=50,
            egress="chat",
            reasoning="restored",
        ),
    )
    ingest([sent.large_5m, sent.large_chat, sent.small])
    rollup()
    bill()
    return sent


def row(sent: UsageEvent) -> UsageRecord:
    return UsageRecord.objects.get(request_id=sent.request_id)


def test_each_class_is_priced_at_its_own_rate(classes: Traffic) -> None:
    # 5000 x 11 + 2000 x 2.75 + 2000 x 13.75 + 1000 x 22 + 500 x 33 = 126,500 per 1M
    assert row(classes.large_5m).cost == Decimal("0.1265")
    # 3200 x 11 + 800 x 13.75 + 100 x 33 = 49,500 per 1M
    assert row(classes.large_chat).cost == Decimal("0.0495")
    # 1000 x 1.1 (writes at the input price) + 200 x 2.2 = 1,540 per 1M
    assert row(classes.small).cost == Decimal("0.00154")
    assert row(classes.large_5m).cache_write_5m_tokens == 2_000


def test_rollups_and_billing_records_carry_every_class(metered: Metered, classes: Traffic) -> None:
    acme = metered.cast.acme
    large = HourlyUsage.objects.get(team=acme, model="meter-large")
    assert (
        large.requests,
        large.prompt_tokens,
        large.cached_tokens,
        large.cache_write_tokens,
        large.cache_write_1h_tokens,
        large.cache_write_5m_tokens,
        large.completion_tokens,
        large.reasoning_tokens,
        large.cost,
    ) == (2, 14_000, 2_000, 3_800, 1_000, 2_800, 600, 120, Decimal("0.176"))
    small = HourlyUsage.objects.get(team=acme, model="meter-small")
    assert (small.cache_write_tokens, small.cache_write_1h_tokens) == (400, 400)

    before = snapshot()
    rollup()
    bill()
    assert snapshot() == before  # rebuilt whole, to the same rows

    record = BillingRecord.objects.get(team=acme, status=BillingRecord.Status.OPEN)
    line = BillingLineItem.objects.get(record=record, model="meter-large")
    assert (
        line.cached_tokens,
        line.cache_write_tokens,
        line.cache_write_1h_tokens,
        line.cache_write_5m_tokens,
        line.reasoning_tokens,
        line.amount,
    ) == (2_000, 3_800, 1_000, 2_800, 120, Decimal("0.176"))
    assert record.total == Decimal("0.17754")


def test_the_usage_api_and_billing_records_api_show_every_class(
    metered: Metered, classes: Traffic
) -> None:
    acme = metered.cast.acme
    client = client_for(metered.cast.vera)
    data = client.get(f"/api/teams/{acme.pk}/usage/").json()
    totals = data["totals"]
    assert {
        name: totals[name]
        for name in (
            "prompt_tokens",
            "cached_tokens",
            "cache_write_tokens",
            "cache_write_5m_tokens",
            "cache_write_1h_tokens",
            "completion_tokens",
            "reasoning_tokens",
        )
    } == {
        "prompt_tokens": 15_000,
        "cached_tokens": 2_000,
        "cache_write_tokens": 4_200,
        "cache_write_5m_tokens": 2_800,
        "cache_write_1h_tokens": 1_400,
        "completion_tokens": 800,
        "reasoning_tokens": 170,
    }
    assert totals["cost"] == "0.177540000"
    large = next(item for item in data["by_model"] if item["model"] == "meter-large")
    assert (
        large["figures"]["cache_write_5m_tokens"],
        large["figures"]["cache_write_1h_tokens"],
    ) == (
        2_800,
        1_000,
    )
    records = client.get(f"/api/teams/{acme.pk}/billing-records/").json()["results"]
    lines = {line["model"]: line for line in records[0]["lines"]}
    assert (
        lines["meter-large"]["cache_write_5m_tokens"],
        lines["meter-large"]["cache_write_1h_tokens"],
        lines["meter-large"]["amount"],
    ) == (2_800, 1_000, "0.176000000")
    schema = client.get("/api/schema/").content.decode()
    assert "cache_write_1h_tokens" in schema and "cache_write_5m_tokens" in schema


def csv_rows(response: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_exports_have_a_column_per_class(metered: Metered, classes: Traffic) -> None:
    acme = metered.cast.acme
    client = client_for(metered.cast.bob)
    hours = csv_rows(client.get(reverse("team_usage_export", kwargs={"team_id": acme.pk})))
    large = next(line for line in hours if line["model"] == "meter-large")
    assert {
        name: large[name]
        for name in (
            "cached_tokens",
            "cache_write_tokens",
            "cache_write_5m_tokens",
            "cache_write_1h_tokens",
            "reasoning_tokens",
            "cost",
        )
    } == {
        "cached_tokens": "2000",
        "cache_write_tokens": "3800",
        "cache_write_5m_tokens": "2800",
        "cache_write_1h_tokens": "1000",
        "reasoning_tokens": "120",
        "cost": "0.176000000",
    }
    record = BillingRecord.objects.get(team=acme)
    lines = csv_rows(
        client.get(
            reverse("billing_record_export", kwargs={"team_id": acme.pk, "record_id": record.pk})
        )
    )
    small = next(line for line in lines if line["model"] == "meter-small")
    assert (small["cache_write_5m_tokens"], small["cache_write_1h_tokens"], small["amount"]) == (
        "0",
        "400",
        "0.001540000",
    )
    total = next(line for line in lines if line["kind"] == "total")
    assert (total["cache_write_1h_tokens"], total["amount"]) == ("", "0.177540000")


def cell(content: str, test: str) -> list[str]:
    """The text of every element carrying ``data-test="<test>"``, in page order."""
    marker = f'data-test="{test}"'
    out = []
    for part in content.split(marker)[1:]:
        out.append(part.split(">", 1)[1].split("</td>", 1)[0].strip())
    return out


def test_the_pages_show_every_class(metered: Metered, classes: Traffic) -> None:
    acme = metered.cast.acme
    client = client_for(metered.cast.vera)

    usage = client.get(reverse("team_usage", kwargs={"team_id": acme.pk})).content.decode()
    figures = {
        part.split('"', 1)[0]: part.split('<td class="num">', 1)[1].split("<", 1)[0]
        for part in usage.split('data-test="usage-class" data-class="')[1:]
    }
    assert figures == {
        "input": "15,000",
        "cached": "2,000",
        "write-5m": "2,800",
        "write-1h": "1,400",
        "output": "800",
        "reasoning": "170",
    }
    assert cell(usage, "by-model-write-1h")[:2] == ["1,000", "400"]  # by cost: large first
    assert cell(usage, "by-model-write-5m")[:2] == ["2,800", "0"]

    record = BillingRecord.objects.get(team=acme)
    detail = client.get(
        reverse("billing_record", kwargs={"team_id": acme.pk, "record_id": record.pk})
    ).content.decode()
    assert cell(detail, "usage-line-write-1h") == ["1,000", "400"]
    assert cell(detail, "usage-line-write-5m") == ["2,800", "0"]
    assert cell(detail, "usage-line-reasoning") == ["120", "50"]


def test_the_request_log_shows_the_dialect_and_what_happened_to_reasoning(
    metered: Metered, classes: Traffic
) -> None:
    acme = metered.cast.acme
    page = client_for(metered.cast.vera).get(reverse("team_requests", kwargs={"team_id": acme.pk}))
    content = page.content.decode()
    rows = {
        part.split('"', 1)[0]: part.split("</tr>", 1)[0]
        for part in content.split('data-request-id="')[1:]
    }
    native, translated, chat = (
        rows[classes.large_5m.request_id],
        rows[classes.large_chat.request_id],
        rows[classes.small.request_id],
    )
    assert ">messages</span>" in native and "reasoning" not in cell(native, "request-dialect")[0]
    assert "messages → chat" in translated and "reasoning dropped" in translated
    assert ">chat</span>" in chat and "reasoning restored" in chat
    assert cell(native, "request-write-1h") == ["1,000"]
    assert cell(native, "request-write-5m") == ["2,000"]
    assert cell(native, "request-cached") == ["2,000"]
    assert cell(native, "request-reasoning-tokens") == ["120"]

    zh = client_for(metered.cast.vera)
    zh.cookies["django_language"] = "zh-hans"
    chinese = zh.get(reverse("team_requests", kwargs={"team_id": acme.pk})).content.decode()
    assert "reasoning dropped" not in chinese and "reasoning restored" not in chinese


def test_one_hour_writes_already_in_the_ledger_reach_their_rollups_and_lines(
    metered: Metered, month: tuple
) -> None:
    """billing 0008 fills the new columns from the ledger for hours rolled up before it, and
    the lines of closed records from their rollups: late usage of a closed period then
    adjusts by its own one-hour writes, not by every write the column had missed."""
    start, end = month
    acme = metered.cast.acme
    key = metered.keys[str(acme.pk)][0]

    def written(at: Any, count: int) -> list[UsageEvent]:
        return [
            event(acme.pk, key, at, model="meter-large", cache_write=300, cache_write_1h=100)
            for _ in range(count)
        ]

    ingest(written(start + timedelta(days=3), 4))
    closing = end + timedelta(days=1, minutes=30)
    rollup(closing)
    bill(closing)
    # As before billing 0008: the columns did not exist, so they read 0.
    HourlyUsage.objects.update(cache_write_1h_tokens=0)
    BillingLineItem.objects.update(cache_write_1h_tokens=0)

    migration = importlib.import_module("billing.migrations.0008_one_hour_cache_writes")
    migration.backfill(apps, None)
    assert HourlyUsage.objects.get(team=acme, model="meter-large").cache_write_1h_tokens == 400
    closed = BillingRecord.objects.get(team=acme, period_start=start)
    assert closed.status == BillingRecord.Status.CLOSED
    assert BillingLineItem.objects.get(record=closed).cache_write_1h_tokens == 400

    ingest(written(end - timedelta(hours=2), 1))  # late usage of the closed month
    later = closing + timedelta(hours=1)
    rollup(later)
    bill(later)
    adjustment = BillingLineItem.objects.get(team=acme, kind=BillingLineItem.Kind.ADJUSTMENT)
    assert (adjustment.requests, adjustment.cache_write_1h_tokens) == (1, 100)


def test_operators_see_the_new_column_and_classes_in_the_admin(
    metered: Metered, classes: Traffic
) -> None:
    operator = User.objects.create_superuser("operator@example.com", "x-sturdy-passphrase-1")
    client = client_for(operator)
    prices = client.get("/admin/billing/price/").content.decode()
    assert "1-hour cache write" in prices
    assert ">20.000000<" in prices  # meter-large's one-hour price
    ledger = client.get("/admin/billing/usagerecord/", {"dialect": "messages"}).content.decode()
    assert "Cache write 1h tokens" in ledger
    assert classes.large_chat.request_id in ledger and classes.small.request_id not in ledger
    dropped = client.get("/admin/billing/usagerecord/", {"reasoning": "dropped"}).content.decode()
    assert classes.large_chat.request_id in dropped and classes.large_5m.request_id not in dropped
    record = BillingRecord.objects.get(team=metered.cast.acme)
    inline = client.get(f"/admin/billing/billingrecord/{record.pk}/change/").content.decode()
    assert "Cache write 1h tokens" in inline


def test_counts_that_make_no_sense_are_clamped_not_fatal(metered: Metered) -> None:
    """One event with a negative write count (no relay sends one, but the stream is a
    contract) must not fail the batch it arrives in, nor bill anything below zero."""
    acme = metered.cast.acme
    now = timezone.now()
    odd = event(acme.pk, None, now, model="meter-large", prompt=1_000, completion=0)
    odd.cache_write_tokens, odd.cache_write_1h_tokens = -5, 3
    fine = event(acme.pk, None, now, model="meter-large", prompt=1_000, completion=0)
    ingest([odd, fine])
    assert (row(odd).cache_write_tokens, row(odd).cache_write_1h_tokens) == (0, 0)
    assert row(odd).cost == row(fine).cost == Decimal("0.011")
