"""The usage ledger is append-only in the database (billing/migrations/0006_append_only_ledgers),
whatever path a write takes: QuerySet.update/delete, raw SQL, a team's cascade. The ledger's own
steps still work: pricing a row that was stored unpriced, linking a row to its credit debit,
and retention, the only way rows leave.

The same tests run on SQLite, the embedded default, in a subprocess (the last test)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from accounts import actions
from accounts.models import Team
from billing.ledger import ingest, prune
from billing.models import CreditEntry, Price, UsageRecord
from billing.rollups import rollup
from billing.usage import charge_usage
from tests.metering.conftest import Metered, event

ROOT = Path(__file__).resolve().parents[2]
# What the ledger's own steps may still fill in once: the price of a row stored without one
# (billing.usage.price_records), and the credit debit that covers it (charge_usage).
PRICING = {"cost", "currency", "price", "exchange_rate", "markup", "unpriced"}
DEBIT = {"credit_entry"}


def raw(sql: str, *params: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def refused(attempt: Callable[[], Any], name: str) -> None:
    with (
        pytest.raises(IntegrityError, match="billing_usagerecord is append-only"),
        transaction.atomic(),
    ):
        attempt()
        pytest.fail(f"{name} went through")


def charged_row(metered: Metered, days_ago: float = 0) -> UsageRecord:
    acme = metered.cast.acme
    done = event(acme.pk, None, timezone.now() - timedelta(days=days_ago))
    ingest([done])
    charge_usage()
    row = UsageRecord.objects.get(request_id=done.request_id)
    assert row.cost and row.cost > 0 and row.credit_entry_id is not None
    return row


def another_value(metered: Metered, row: UsageRecord, field: models.Field[Any, Any]) -> Any:
    """A different value of the same type for one column of ``row``."""
    value = getattr(row, field.attname)
    if field.name == "team":
        return metered.cast.globex.pk
    if field.name == "price":
        return Price.objects.exclude(pk=value).values_list("pk", flat=True).first()
    if field.name == "credit_entry":
        return CreditEntry.objects.exclude(pk=value).values_list("pk", flat=True).first()
    if isinstance(field, models.BooleanField):
        return not value
    if isinstance(field, models.DateTimeField):
        return value - timedelta(hours=1)
    if isinstance(field, models.UUIDField):
        return None if value else metered.keys[str(metered.cast.acme.pk)][0]
    if isinstance(field, models.CharField):
        return (value or "x")[:-1] + "!"
    if isinstance(field, models.AutoField | models.BigAutoField):
        return value + 1000
    if isinstance(field, (models.IntegerField, models.FloatField, models.DecimalField)):
        return (value or 0) + 1
    raise AssertionError(f"no other value for {field.name}: add one here")


def test_no_column_of_a_priced_and_charged_row_changes(metered: Metered) -> None:
    row = charged_row(metered)
    fields = UsageRecord._meta.concrete_fields
    assert len(fields) > 20
    for field in fields:
        new = another_value(metered, row, field)
        assert new != getattr(row, field.attname), field.name
        update = partial(UsageRecord.objects.filter(pk=row.pk).update, **{field.attname: new})
        refused(update, f"QuerySet.update of {field.name}")
    refused(
        lambda: raw("UPDATE billing_usagerecord SET completion_tokens = 0 WHERE id = %s", row.pk),
        "raw UPDATE",
    )
    fresh = UsageRecord.objects.get(pk=row.pk)
    assert [getattr(fresh, f.attname) for f in fields] == [getattr(row, f.attname) for f in fields]


def test_no_row_is_deleted_but_by_retention(metered: Metered, settings: Any) -> None:
    row = charged_row(metered, days_ago=200)
    attempts: dict[str, Callable[[], Any]] = {
        "Model.delete": lambda: UsageRecord.objects.get(pk=row.pk).delete(),
        "QuerySet.delete": lambda: UsageRecord.objects.filter(pk=row.pk).delete(),
        "raw DELETE": lambda: raw("DELETE FROM billing_usagerecord WHERE id = %s", row.pk),
    }
    for name, attempt in attempts.items():
        refused(attempt, name)
    # A team whose usage nothing else protects (no credit ledger, nothing debited): its
    # cascade reaches the usage ledger, which refuses it.
    settings.BATON_SIGNUP_CREDIT = "0"
    team = actions.create_team(metered.cast.charlie, name="Free")
    ingest([event(team.pk, None, timezone.now(), status=500)])
    assert not CreditEntry.objects.filter(team=team).exists()
    refused(lambda: Team.objects.get(pk=team.pk).delete(), "deleting the team")
    assert UsageRecord.objects.filter(team=team).count() == 1
    assert UsageRecord.objects.filter(pk=row.pk).exists()
    rollup()
    assert prune() == 1  # past retention, rolled up and charged: retention may take it
    assert not UsageRecord.objects.filter(pk=row.pk).exists()


def test_retention_never_takes_a_row_whose_money_is_not_in_the_credit_ledger(
    metered: Metered,
) -> None:
    """The database checks what prune() selects: even retention cannot drop unbilled usage."""
    from billing.ledger import pruning

    owed = event(metered.cast.acme.pk, None, timezone.now() - timedelta(days=200))
    ingest([owed])
    rows = UsageRecord.objects.filter(request_id=owed.request_id)
    assert rows.get().cost and rows.get().credit_entry_id is None

    def delete_while_pruning() -> None:
        with pruning():
            rows.delete()

    refused(delete_while_pruning, "deleting undebited usage during retention")
    assert rows.exists()


def test_pricing_and_debiting_a_row_stored_unpriced_still_work(metered: Metered) -> None:
    acme = metered.cast.acme
    row = UsageRecord.objects.create(
        request_id="req_unpriced_at_first",
        team=acme,
        endpoint="chat",
        provider="openai",
        upstream_model="meter-small",
        prompt_tokens=1_000_000,
        status=200,
        created_at=timezone.now(),
    )
    assert row.cost is None
    assert charge_usage() >= 1
    row.refresh_from_db()
    assert row.cost == Decimal("1.1") and row.price is not None and row.credit_entry_id
    # Once priced and debited, neither changes again.
    rows = UsageRecord.objects.filter(pk=row.pk)
    refused(lambda: rows.update(cost=Decimal(0)), "repricing")
    refused(lambda: rows.update(credit_entry=None), "unlinking the debit")


def test_the_embedded_default_is_guarded_too(tmp_path: Path) -> None:
    """These tests and the credit ledger's, on SQLite with every migration applied."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'baton.sqlite3'}",
        "BATON_TESTING": "1",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "not embedded_default",
            "tests/metering/test_append_only.py",
            "tests/quotas/test_credits.py::test_the_ledger_is_append_only",
            "tests/quotas/test_credits.py::test_deleting_the_author_of_an_entry_keeps_the_entry",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "6 passed" in result.stdout, result.stdout[-2000:]
