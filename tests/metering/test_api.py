"""The usage and billing-record API, the consume_usage command, the schedule."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

from django.core.management import call_command
from django.utils import timezone

from billing.events import STREAM_KEY
from billing.models import UsageRecord
from billing.records import bill
from billing.rollups import rollup
from config.celery import app
from config.schedule import BEAT_SCHEDULE
from tests.conftest import client_for
from tests.metering.conftest import Metered, event, ledger_totals, traffic


def test_the_usage_endpoint_reads_the_rollups(metered: Metered) -> None:
    now = timezone.now()
    first_day = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    traffic(metered, first_day, now - timedelta(seconds=5), 200)
    rollup()
    acme = metered.cast.acme
    client = client_for(metered.cast.vera)
    data = client.get(
        f"/api/teams/{acme.pk}/usage/", {"start": str(first_day.date()), "end": str(now.date())}
    ).json()
    totals = ledger_totals(acme)
    assert data["totals"]["requests"] == totals.requests
    assert data["totals"]["cost"] == f"{totals.cost:.9f}"
    assert data["granularity"] == "hour" and len(data["series"]) == 48
    assert {row["label"] for row in data["by_key"]} == {"backend", "batch", "notebook"}
    assert {row["provider"] for row in data["by_provider"]} == {"openai", "qwen"}
    assert data["totals"]["latency_ms_p50"] > 0
    bad = client.get(f"/api/teams/{acme.pk}/usage/", {"start": "yesterday"})
    assert bad.status_code == 400


def test_billing_records_are_listed_with_their_lines(metered: Metered, month: tuple) -> None:
    start, end = month
    traffic(metered, start, end, 300)
    rollup(end + timedelta(hours=1))
    bill(end + timedelta(hours=1))
    acme = metered.cast.acme
    client = client_for(metered.cast.bob)
    listing = client.get(f"/api/teams/{acme.pk}/billing-records/").json()
    assert listing["count"] == 1
    record = listing["results"][0]
    assert record["status"] == "closed"
    assert record["total"] == f"{ledger_totals(acme).cost:.9f}"
    assert len(record["lines"]) == 4
    detail = client.get(f"/api/teams/{acme.pk}/billing-records/{record['id']}/")
    assert detail.json()["id"] == record["id"]
    owner = client_for(metered.cast.alice)
    assert owner.post(f"/api/teams/{acme.pk}/billing-records/", {}).status_code == 405
    assert client.post(f"/api/teams/{acme.pk}/billing-records/", {}).status_code == 403
    outsider = client_for(metered.cast.charlie)
    assert outsider.get(f"/api/teams/{acme.pk}/billing-records/").status_code == 404
    assert outsider.get(f"/api/teams/{acme.pk}/usage/").status_code == 404


def test_the_schema_documents_usage_and_billing(metered: Metered) -> None:
    schema = client_for(metered.cast.alice).get("/api/schema/").content.decode()
    assert "/api/teams/{team_id}/usage/" in schema
    assert "/api/teams/{team_id}/billing-records/{id}/" in schema
    assert "latency_ms_p95" in schema


def test_the_consume_usage_command_drains_the_stream(metered: Metered, redis_client: Any) -> None:
    acme = metered.cast.acme
    events = [event(acme.pk, None, timezone.now()) for _ in range(7)]
    for item in events:
        redis_client.xadd(STREAM_KEY, {"event": item.to_json()})
    out = StringIO()
    call_command("consume_usage", "--once", stdout=out)
    assert "7 read" in out.getvalue()
    assert UsageRecord.objects.count() == 7


def test_metering_runs_on_the_beat_schedule_and_expires() -> None:
    app.loader.import_default_modules()
    names: dict[str, Any] = {str(entry["task"]): entry for entry in BEAT_SCHEDULE.values()}
    for task in (
        "billing.consume_usage",
        "billing.rollup_usage",
        "billing.update_billing_records",
        "billing.prune_ledger",
        "billing.charge_usage",
    ):
        assert task in app.tasks, task
        assert names[task]["options"]["expires"] > 0
    assert names["billing.consume_usage"]["schedule"] <= 10
