"""The usage dashboard, the request log, billing records and the exports."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.models import BillingRecord, UsageRecord
from billing.records import bill
from billing.rollups import rollup
from tests.conftest import client_for
from tests.metering.conftest import Metered, event, ledger_totals, traffic


def usage_url(metered: Metered, **params: str) -> str:
    url = reverse("team_usage", kwargs={"team_id": metered.cast.acme.pk})
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def csv_rows(response: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def last_week(metered: Metered, count: int, seed: int = 3) -> None:
    """Traffic within the dashboard's default range (the last seven UTC days), rolled up."""
    now = timezone.now()
    first_day = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=6)
    traffic(metered, first_day, now - timedelta(seconds=5), count, seed)
    rollup()


def test_the_usage_page_shows_the_rollups(metered: Metered) -> None:
    last_week(metered, 400)
    response = client_for(metered.cast.alice).get(usage_url(metered))
    assert response.status_code == 200
    summary = response.context["summary"]
    acme = ledger_totals(metered.cast.acme)
    assert (summary.totals.requests, summary.totals.cost) == (acme.requests, acme.cost)
    assert summary.currency == "USD"
    assert {s.label for s in summary.by_model} == {
        "openai/meter-small",
        "openai/meter-large",
        "qwen/meter-cn",
        "openai/meter-unpriced",
    }
    assert {s.label for s in summary.by_key} == {"backend", "batch", "notebook"}
    assert {s.label for s in summary.by_provider} == {"openai", "qwen"}
    assert sum(p.figures.requests for p in summary.series) == acme.requests
    assert 0 < summary.totals.p50 <= summary.totals.p95
    assert (
        summary.totals.errors
        == UsageRecord.objects.filter(team=metered.cast.acme, status__gte=400).count()
    )
    content = response.content.decode()
    assert 'data-test="chart-requests"' in content and "vendor/chart.umd.js" in content
    assert "no price" in content  # the unpriced model is flagged


def test_the_usage_page_costs_the_same_few_queries_whatever_the_ledger_size(
    metered: Metered, django_assert_max_num_queries: Any
) -> None:
    client = client_for(metered.cast.alice)
    url = usage_url(metered, start=f"{timezone.now().date() - timedelta(days=29)}")
    counts = []
    for size, seed in ((100, 1), (4000, 2)):
        last_week(metered, size, seed)
        with django_assert_max_num_queries(20), CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        counts.append(len(queries))
        assert not any("billing_usagerecord" in q["sql"] for q in queries.captured_queries)
    assert counts[0] == counts[1]


def test_a_bad_range_falls_back_to_the_last_week(metered: Metered) -> None:
    response = client_for(metered.cast.alice).get(usage_url(metered, start="2025-13-01"))
    assert response.status_code == 200
    assert response.context["range_error"]
    assert response.context["summary"].range.last == timezone.now().date()


def test_one_key_can_be_looked_at_alone(metered: Metered) -> None:
    last_week(metered, 300)
    key = metered.keys[str(metered.cast.acme.pk)][0]
    summary = client_for(metered.cast.bob).get(usage_url(metered, key=str(key))).context["summary"]
    assert summary.totals.requests == UsageRecord.objects.filter(api_key_id=key).count()


def test_the_request_log_pages_through_the_ledger_by_keyset(metered: Metered) -> None:
    acme = metered.cast.acme
    key = metered.keys[str(acme.pk)][0]
    now = timezone.now()
    from billing.ledger import ingest

    ingest([event(acme.pk, key, now - timedelta(seconds=n)) for n in range(120)])
    client = client_for(metered.cast.vera)
    url = reverse("team_requests", kwargs={"team_id": acme.pk})
    seen: list[str] = []
    next_url = url
    for _ in range(5):
        if not next_url:
            break
        response = client.get(next_url)
        assert response.status_code == 200
        page = [record.request_id for record, _ in response.context["records"]]
        assert len(page) <= 50
        seen += page
        cursor = response.context["next_cursor"]
        next_url = f"{url}?before={cursor}" if cursor else ""
    expected = list(
        UsageRecord.objects.filter(team=acme)
        .order_by("-created_at", "-pk")
        .values_list("request_id", flat=True)
    )
    assert seen == expected and len(seen) == 120


def test_the_request_log_filters(metered: Metered) -> None:
    acme = metered.cast.acme
    keys = metered.keys[str(acme.pk)]
    now = timezone.now()
    from billing.ledger import ingest

    ingest(
        [
            event(acme.pk, keys[0], now, status=200),
            event(acme.pk, keys[0], now, status=429),
            event(acme.pk, keys[1], now, model="meter-large", status=502),
            event(acme.pk, keys[1], now, provider="qwen", model="meter-cn"),
            event(acme.pk, keys[1], now - timedelta(days=200)),  # past retention
        ]
    )
    client = client_for(metered.cast.bob)
    url = reverse("team_requests", kwargs={"team_id": acme.pk})

    def statuses(**params: str) -> list[int]:
        response = client.get(url, params)
        return sorted(record.status for record, _ in response.context["records"])

    assert statuses() == [200, 200, 429, 502]
    assert statuses(errors="1") == [429, 502]
    assert statuses(status="5xx") == [502]
    assert statuses(status="429") == [429]
    assert statuses(key=str(keys[1])) == [200, 502]
    assert statuses(model="meter-large") == [502]
    assert statuses(provider="qwen") == [200]


def test_billing_records_and_their_csv(metered: Metered, month: tuple, settings: Any) -> None:
    settings.BATON_BILLING_PERIOD = "day"
    start, _ = month
    now = start + timedelta(days=3, hours=1)
    traffic(metered, start, now - timedelta(minutes=30), 300)
    rollup(now)
    bill(now)
    acme = metered.cast.acme
    records = BillingRecord.objects.filter(team=acme)
    assert records.filter(status=BillingRecord.Status.CLOSED).count() == 3
    running = records.get(status=BillingRecord.Status.OPEN)
    assert sum((r.total for r in records), Decimal(0)) == ledger_totals(acme).cost

    client = client_for(metered.cast.vera)
    page = client.get(reverse("team_billing", kwargs={"team_id": acme.pk}))
    assert page.status_code == 200
    assert page.context["running"] == running
    assert len(page.context["page"].object_list) == records.count()

    closed = records.filter(status=BillingRecord.Status.CLOSED).first()
    assert closed is not None
    detail = client.get(
        reverse("billing_record", kwargs={"team_id": acme.pk, "record_id": closed.pk})
    )
    assert detail.status_code == 200
    assert sum(line.amount for line in detail.context["usage_lines"]) == closed.total

    export = client.get(
        reverse("billing_record_export", kwargs={"team_id": acme.pk, "record_id": closed.pk})
    )
    assert export["Content-Type"].startswith("text/csv")
    rows = csv_rows(export)
    lines = [row for row in rows if row["kind"] == "usage"]
    assert sum(Decimal(row["amount"]) for row in lines) == closed.total
    assert next(row for row in rows if row["kind"] == "total")["amount"] == f"{closed.total:f}"


def test_the_usage_export_adds_up_to_the_ledger(metered: Metered) -> None:
    last_week(metered, 250)
    acme = metered.cast.acme
    today = timezone.now().date()
    response = client_for(metered.cast.bob).get(
        reverse("team_usage_export", kwargs={"team_id": acme.pk}),
        {"start": str(today - timedelta(days=8)), "end": str(today)},
    )
    rows = csv_rows(response)
    totals = ledger_totals(acme)
    assert sum(int(row["requests"]) for row in rows) == totals.requests
    assert sum(Decimal(row["cost"]) for row in rows) == totals.cost
    assert {row["api_key_name"] for row in rows} == {"backend", "batch", "notebook"}


@pytest.mark.parametrize("who", ["vera", "bob", "adam", "alice"])
def test_every_member_reads_usage_and_billing(metered: Metered, who: str) -> None:
    client = client_for(getattr(metered.cast, who))
    team_id = metered.cast.acme.pk
    for name in ("team_usage", "team_requests", "team_billing", "team_usage_export"):
        assert client.get(reverse(name, kwargs={"team_id": team_id})).status_code == 200
        assert client.post(reverse(name, kwargs={"team_id": team_id})).status_code == 405
    assert client.get(f"/api/teams/{team_id}/usage/").status_code == 200
    assert client.get(f"/api/teams/{team_id}/billing-records/").status_code == 200


def test_the_nav_links_to_usage_and_billing(metered: Metered) -> None:
    response = client_for(metered.cast.vera).get(usage_url(metered))
    content = response.content.decode()
    assert 'data-test="nav-usage"' in content and 'data-test="nav-billing"' in content
