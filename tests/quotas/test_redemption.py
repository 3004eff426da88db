"""Redemption codes: each works once, for one team, until it expires."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from accounts import actions
from accounts.models import AuditEvent, Membership, Role, User
from billing import credits
from billing.models import CreditEntry, ExchangeRate, RedemptionCode, TeamLimits
from tests.conftest import Cast, client_for


@pytest.fixture(autouse=True)
def _fresh_throttle() -> None:
    cache.clear()


def code(amount: str = "10", currency: str = "USD", days: int = 30) -> str:
    [issued] = credits.generate_codes(
        1, Decimal(amount), currency, timezone.now() + timedelta(days=days)
    )
    return issued


def redeemed(cast: Cast, team: Any = None) -> list[CreditEntry]:
    return list(
        CreditEntry.objects.filter(team=team or cast.acme, kind=CreditEntry.Kind.REDEMPTION)
    )


def test_only_a_hash_of_the_code_is_stored(db: None) -> None:
    issued = code()
    assert issued.startswith("BATON-") and len(issued) == len("BATON-XXXX-XXXX-XXXX-XXXX")
    stored = RedemptionCode.objects.get()
    assert stored.code_hash == credits.hash_code(credits.normalize_code(issued) or "")
    assert issued.replace("-", "")[5:] not in str(list(RedemptionCode.objects.values()))


def test_an_admin_redeems_a_code_once(cast: Cast) -> None:
    issued = code("10")
    url = reverse("team_credits", args=[cast.acme.pk])
    response = client_for(cast.adam).post(url, {"code": issued.lower().replace("-", " ")})
    assert response.status_code == 302
    [entry] = redeemed(cast)
    assert (entry.amount, entry.currency, entry.created_by) == (Decimal(10), "USD", cast.adam)
    assert credits.balance(cast.acme).amount == Decimal(15)  # with the 5.00 sign-up grant
    event = AuditEvent.objects.get(action="credits.redeemed")
    assert event.details["code"] == "…" + issued[-4:] and issued not in str(event.details)
    again = client_for(cast.adam).post(url, {"code": issued})
    assert "already redeemed this code" in again.content.decode()
    assert len(redeemed(cast)) == 1


def test_another_teams_code_cannot_be_redeemed_again(cast: Cast) -> None:
    issued = code()
    credits.redeem(cast.membership(cast.charlie, cast.globex), issued)
    with pytest.raises(credits.CreditError, match="already been used"):
        credits.redeem(cast.membership(cast.alice), issued)
    assert redeemed(cast) == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "not a valid code"),
        ("BATON-1234", "not a valid code"),
        ("BATON-UUUU-UUUU-UUUU-UUUU", "not a valid code"),
        ("BATON-0000-0000-0000-0000", "This code is not valid"),
    ],
)
def test_malformed_and_unknown_codes(cast: Cast, raw: str, message: str) -> None:
    with pytest.raises(credits.CreditError, match=message):
        credits.redeem(cast.membership(cast.alice), raw)
    assert redeemed(cast) == []


def test_expired_and_revoked_codes(cast: Cast) -> None:
    expired = code()
    RedemptionCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(credits.CreditError, match="expired"):
        credits.redeem(cast.membership(cast.alice), expired)
    revoked = code()
    RedemptionCode.objects.filter(hint=revoked[-4:]).update(revoked_at=timezone.now())
    with pytest.raises(credits.CreditError, match="not valid"):
        credits.redeem(cast.membership(cast.alice), revoked)
    assert redeemed(cast) == []


@pytest.mark.parametrize("user", ["bob", "vera"])
def test_members_and_viewers_cannot_redeem(cast: Cast, user: str) -> None:
    issued = code()
    response = client_for(getattr(cast, user)).post(
        reverse("credit-redeem", args=[cast.acme.pk]),
        {"code": issued},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert (
        client_for(getattr(cast, user))
        .post(reverse("team_credits", args=[cast.acme.pk]), {"code": issued})
        .status_code
        == 403
    )
    assert RedemptionCode.objects.get().redeemed_at is None


def test_redemption_through_the_api(cast: Cast) -> None:
    url = reverse("credit-redeem", args=[cast.acme.pk])
    response = client_for(cast.alice).post(
        url, {"code": code("2.5")}, content_type="application/json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["amount"] == "2.500000000"
    bad = client_for(cast.alice).post(url, {"code": "nope"}, content_type="application/json")
    assert bad.status_code == 400 and "not a valid code" in bad.json()["error"]["message"]


def test_guessing_is_throttled(cast: Cast) -> None:
    alice = cast.membership(cast.alice)
    for _ in range(credits.MAX_FAILED_REDEMPTIONS):
        with pytest.raises(credits.CreditError):
            credits.redeem(alice, "BATON-0000-0000-0000-0000")
    with pytest.raises(credits.CreditError, match="Too many"):
        credits.redeem(alice, code())  # even a good one, for an hour


def test_a_code_in_another_currency_is_converted(cast: Cast) -> None:
    TeamLimits.objects.filter(team=cast.acme).update(currency="CNY")
    ExchangeRate.objects.create(
        base="USD",
        quote="CNY",
        rate=Decimal("7.2"),
        effective_from=timezone.now() - timedelta(days=1),
    )
    entry = credits.redeem(cast.membership(cast.alice), code("10", "USD"))
    assert (entry.amount, entry.currency) == (Decimal("72"), "CNY")


def test_one_code_two_teams_at_once_exactly_one_wins(transactional_db: None) -> None:
    issued = code()
    members = []
    for name in ("first", "second"):
        user = User.objects.create_user(f"{name}@example.com", "x-sturdy-passphrase-1")
        team = actions.create_team(user, name=name)
        members.append(Membership.objects.get(team=team, role=Role.OWNER))
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt(member: Membership) -> None:
        barrier.wait()
        try:
            credits.redeem(member, issued)
            outcomes.append("ok")
        except credits.CreditError as exc:
            outcomes.append(str(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt, args=(m,)) for m in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(outcomes) == ["This code has already been used.", "ok"]
    assert CreditEntry.objects.filter(kind=CreditEntry.Kind.REDEMPTION).count() == 1
    assert RedemptionCode.objects.get().redeemed_team_id in {m.team_id for m in members}


def test_the_management_command_prints_codes_once(db: None) -> None:
    out = StringIO()
    call_command(
        "create_credit_codes", "--count", "3", "--amount", "5", "--batch", "launch", stdout=out
    )
    printed = out.getvalue().split()
    assert len(printed) == 3 and all(c.startswith("BATON-") for c in printed)
    assert RedemptionCode.objects.filter(batch="launch").count() == 3


def test_the_admin_generates_a_batch(admin_client: Any) -> None:
    url = reverse("admin:billing_redemptioncode_generate")
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(
        url, {"count": 2, "amount": "3", "currency": "USD", "valid_days": 7, "batch": "b"}
    )
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert response.content.decode().count("BATON-") == 2
    assert RedemptionCode.objects.filter(batch="b").count() == 2
