"""The credit ledger: grants, top-ups, usage debits, the balance, the dashboard warning."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from accounts import actions
from accounts.models import AuditEvent, Team, User
from billing import credits
from billing.models import AppendOnly, CreditEntry, ExchangeRate, Price, TeamLimits, UsageRecord
from billing.quota import script
from billing.usage import charge_usage
from config.redis_clients import sync_client
from relay.catalog_seed import seed
from relay.models import Provider
from tests.conftest import Cast, client_for


def usage(
    team: Any, completion: int, *, model: str = "gpt-4o", key: Any = None, **extra: Any
) -> UsageRecord:
    return UsageRecord.objects.create(
        request_id="req_" + uuid.uuid4().hex,
        team=team,
        api_key_id=key,
        endpoint="chat",
        provider="openai",
        upstream_model=model,
        prompt_tokens=extra.pop("prompt", 0),
        completion_tokens=completion,
        status=200,
        created_at=extra.pop("created_at", timezone.now()),
        **extra,
    )


def raw(sql: str, *params: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.fixture
def priced(db: None) -> None:
    seed(Provider)
    Price.objects.update_or_create(
        provider_id="openai",
        model="gpt-4o",
        effective_from=timezone.now() - timedelta(days=30),
        defaults={"input": Decimal("2.5"), "output": Decimal("10")},
    )


def test_a_new_team_gets_limits_and_the_sign_up_grant(cast: Cast) -> None:
    assert TeamLimits.objects.get(team=cast.acme).billing_mode == "prepaid"
    [grant] = CreditEntry.objects.filter(team=cast.acme)
    assert (grant.kind, grant.amount, grant.currency) == ("signup", Decimal(5), "USD")
    assert AuditEvent.objects.filter(team=cast.acme, action="credits.signup_grant").exists()


def test_the_operator_decides_the_grant_and_the_billing(db: None, settings: Any) -> None:
    settings.BATON_SIGNUP_CREDIT = "0"
    settings.BATON_NEW_TEAM_BILLING = "invoiced"
    user = User.objects.create_user("nogrant@example.com", "x-sturdy-passphrase-1")
    team = actions.create_team(user, name="No grant")
    assert not CreditEntry.objects.filter(team=team).exists()
    assert TeamLimits.objects.get(team=team).billing_mode == "invoiced"


def test_the_ledger_is_append_only(cast: Cast) -> None:
    entry = CreditEntry.objects.get(team=cast.acme)
    entry.amount = Decimal(500)
    with pytest.raises(AppendOnly):
        entry.save()
    with pytest.raises(AppendOnly):
        entry.delete()
    # Past the model, the database itself refuses (billing/migrations/0006_append_only_ledgers).
    entries = CreditEntry.objects.filter(pk=entry.pk)
    refused: dict[str, Callable[[], Any]] = {
        "QuerySet.update": lambda: entries.update(amount=Decimal(500)),
        "QuerySet.update of the team": lambda: entries.update(team=cast.globex),
        "QuerySet.update of the author": lambda: entries.update(created_by=cast.alice),
        "QuerySet.delete": lambda: entries.delete(),
        "raw UPDATE": lambda: raw(
            "UPDATE billing_creditentry SET amount = 500 WHERE id = %s", entry.pk
        ),
        "raw DELETE": lambda: raw("DELETE FROM billing_creditentry WHERE id = %s", entry.pk),
        "deleting the team": lambda: Team.objects.get(pk=cast.acme.pk).delete(),
    }
    for name, attempt in refused.items():
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            attempt()
            pytest.fail(f"{name} went through")
    assert CreditEntry.objects.get(pk=entry.pk).amount == Decimal(5)
    assert Team.objects.filter(pk=cast.acme.pk).exists()
    assert credits.balance(cast.acme).amount == Decimal(5)


def test_the_admin_does_not_offer_to_delete_a_team(cast: Cast, admin_client: Any) -> None:
    """A team's ledgers outlive it, so the database refuses the cascade: the admin must not
    offer it (it answered with a confirmation page, then an error)."""
    url = reverse("admin:accounts_team_delete", args=[cast.acme.pk])
    assert admin_client.get(url).status_code == 403
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    changelist = admin_client.get(reverse("admin:accounts_team_changelist")).content.decode()
    assert 'value="delete_selected"' not in changelist
    assert Team.objects.filter(pk=cast.acme.pk).exists()


def test_deleting_the_author_of_an_entry_keeps_the_entry(cast: Cast) -> None:
    """The one change the ledger takes: forgetting who added an entry when that user goes."""
    operator = User.objects.create_superuser("operator@example.com", "x-sturdy-passphrase-1")
    entry = credits.add_credit(cast.acme, Decimal(20), actor=operator, kind=CreditEntry.Kind.TOP_UP)
    operator.delete()
    kept = CreditEntry.objects.get(pk=entry.pk)
    assert (kept.amount, kept.created_by) == (Decimal(20), None)


def test_an_admin_tops_up_in_the_django_admin(cast: Cast, admin_client: Any) -> None:
    response = admin_client.post(
        reverse("admin:billing_creditentry_add"),
        {"team": cast.acme.pk, "kind": "top_up", "amount": "20", "note": "invoice 42"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = CreditEntry.objects.get(kind="top_up")
    assert (entry.amount, entry.currency, entry.note) == (Decimal(20), "USD", "invoice 42")
    assert AuditEvent.objects.get(action="credits.topped_up").details["amount"] == "20"
    assert credits.balance(cast.acme).amount == Decimal(25)
    refused = admin_client.post(
        reverse("admin:billing_creditentry_add"),
        {"team": cast.acme.pk, "kind": "top_up", "amount": "-3"},
    )
    assert refused.status_code == 200 and CreditEntry.objects.filter(kind="top_up").count() == 1


def test_usage_is_priced_and_debited_once(cast: Cast, priced: None) -> None:
    first = usage(cast.acme, 1000, prompt=2000)
    usage(cast.acme, 0, prompt=0)  # costs nothing, never debited
    usage(cast.globex, 500)
    assert charge_usage() == 3
    first.refresh_from_db()
    # 2000 x 2.50 + 1000 x 10, per million.
    assert first.cost == Decimal("0.015") and first.price is not None and first.currency == "USD"
    debit = CreditEntry.objects.get(team=cast.acme, kind="usage")
    assert debit.amount == Decimal("-0.015")
    assert charge_usage() == 0
    assert CreditEntry.objects.filter(kind="usage").count() == 2
    assert credits.balance(cast.acme).amount == Decimal("4.985")


def test_the_balance_follows_live_spend_ahead_of_the_ledger(cast: Cast, priced: None) -> None:
    # Spend the limits store has counted but the ledger has not yet debited.
    client = sync_client(settings.REDIS_URL)
    client.flushdb()
    client.hset(script.state(str(cast.acme.pk)), "l", 1_500_000_000)
    balance = credits.balance(cast.acme)
    assert (balance.amount, balance.spent, balance.live) == (Decimal("3.5"), Decimal("1.5"), True)
    client.close()


def test_low_balance_warning_on_the_overview(cast: Cast) -> None:
    url = reverse("team_overview", args=[cast.acme.pk])
    assert 'data-test="low-balance"' not in client_for(cast.bob).get(url).content.decode()
    credits.add_credit(cast.acme, Decimal("-4.5"), actor=None, kind=CreditEntry.Kind.ADJUSTMENT)
    page = client_for(cast.bob).get(url).content.decode()
    assert 'data-test="low-balance"' in page and "0.50 USD" in page
    credits.add_credit(cast.acme, Decimal("-0.5"), actor=None, kind=CreditEntry.Kind.ADJUSTMENT)
    assert "requests are refused" in client_for(cast.bob).get(url).content.decode()
    TeamLimits.objects.filter(team=cast.acme).update(billing_mode="invoiced")
    assert 'data-test="low-balance"' not in client_for(cast.bob).get(url).content.decode()


def test_the_credits_page(cast: Cast) -> None:
    page = client_for(cast.vera).get(reverse("team_credits", args=[cast.acme.pk])).content.decode()
    assert 'data-test="credit-balance"' in page and "5.00 USD" in page
    assert 'data-test="redeem-submit"' not in page  # viewers do not redeem
    assert (
        'data-test="redeem-submit"'
        in client_for(cast.adam).get(reverse("team_credits", args=[cast.acme.pk])).content.decode()
    )


def test_changing_currency_converts_the_credit_until_there_is_usage(
    cast: Cast, priced: None
) -> None:
    ExchangeRate.objects.create(
        base="USD",
        quote="CNY",
        rate=Decimal("7"),
        effective_from=timezone.now() - timedelta(days=1),
    )
    credits.change_currency(cast.acme, "CNY", actor=cast.alice)
    balance = credits.balance(cast.acme)
    assert (balance.amount, balance.currency) == (Decimal(35), "CNY")
    assert AuditEvent.objects.filter(action="billing.currency_changed").exists()
    usage(cast.acme, 100)
    charge_usage()
    with pytest.raises(credits.CreditError):
        credits.change_currency(cast.acme, "USD", actor=cast.alice)


def test_the_operator_switches_billing_in_the_admin_and_it_is_audited(
    cast: Cast, admin_client: Any
) -> None:
    url = reverse("admin:billing_teamlimits_change", args=[cast.acme.pk])
    response = admin_client.post(
        url,
        {"billing_mode": "invoiced", "currency": "USD", "on_redis_failure": "closed"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    row = TeamLimits.objects.get(team=cast.acme)
    assert (row.billing_mode, row.on_redis_failure) == ("invoiced", "closed")
    event = AuditEvent.objects.get(team=cast.acme, action="billing.team_settings_changed")
    assert event.details["changes"]["billing_mode"] == {"old": "prepaid", "new": "invoiced"}
