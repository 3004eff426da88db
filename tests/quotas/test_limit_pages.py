"""The Limits pages: everyone sees limits and use; owners and admins change them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from accounts import apikeys
from accounts.models import ApiKey, AuditEvent
from billing.models import KeyLimits, TeamLimits
from relay import actions as relay_actions
from relay.models import Provider
from tests.conftest import Cast, client_for


@pytest.fixture
def api_key(cast: Cast) -> ApiKey:
    return apikeys.create_api_key(cast.membership(cast.bob), name="service").api_key


def test_every_member_sees_the_limits_and_current_use(cast: Cast, api_key: ApiKey) -> None:
    TeamLimits.objects.filter(team=cast.acme).update(rpm_limit=60, daily_budget=Decimal("3"))
    response = client_for(cast.vera).get(reverse("team_limits", args=[cast.acme.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-test="team-meters"' in page and 'data-test="key-meters"' in page
    assert "service" in page and "3.00 USD" in page
    assert 'data-test="team-limits-form"' not in page  # viewers only look
    assert 'data-test="nav-limits"' in page and 'data-test="nav-credits"' in page


def test_an_admin_sets_team_limits_and_the_change_is_audited(cast: Cast) -> None:
    response = client_for(cast.adam).post(
        reverse("team_limits", args=[cast.acme.pk]),
        {
            "rpm_limit": "120",
            "tpm_limit": "",
            "max_concurrent": "4",
            "daily_budget": "2.50",
            "monthly_budget": "",
        },
    )
    assert response.status_code == 302
    limits = TeamLimits.objects.get(team=cast.acme)
    assert (limits.rpm_limit, limits.max_concurrent, limits.daily_budget) == (
        120,
        4,
        Decimal("2.5"),
    )
    event = AuditEvent.objects.get(team=cast.acme, action="limits.team_updated")
    assert event.details["changes"]["rpm_limit"] == {"old": None, "new": 120}
    assert event.actor == cast.adam


@pytest.mark.parametrize("user", ["bob", "vera"])
def test_members_and_viewers_cannot_change_limits(cast: Cast, user: str) -> None:
    response = client_for(getattr(cast, user)).post(
        reverse("team_limits", args=[cast.acme.pk]), {"rpm_limit": "1"}
    )
    assert response.status_code == 403
    assert TeamLimits.objects.get(team=cast.acme).rpm_limit is None
    assert not AuditEvent.objects.filter(action__startswith="limits.").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rpm_limit", "-1"),
        ("rpm_limit", "0"),
        ("rpm_limit", "1.5"),
        ("tpm_limit", "100000000000"),
        ("max_concurrent", "abc"),
        ("daily_budget", "-0.01"),
        ("daily_budget", "10000000000"),
        ("monthly_budget", "1.23456"),
        ("monthly_budget", "NaN"),
    ],
)
def test_bad_limits_are_refused_and_nothing_changes(cast: Cast, field: str, value: str) -> None:
    response = client_for(cast.alice).post(
        reverse("team_limits", args=[cast.acme.pk]), {field: value}
    )
    assert response.status_code == 200
    assert 'class="errorlist' in response.content.decode()
    limits = TeamLimits.objects.get(team=cast.acme)
    assert getattr(limits, field) is None
    assert not AuditEvent.objects.filter(action="limits.team_updated").exists()


def test_an_admin_sets_every_limit_of_a_key(cast: Cast, api_key: ApiKey) -> None:
    url = reverse("key_limits", args=[cast.acme.pk, api_key.pk])
    response = client_for(cast.alice).post(
        url,
        {
            "rpm_limit": "30",
            "tpm_limit": "5000",
            "max_concurrent": "2",
            "daily_budget": "1",
            "monthly_budget": "10",
            "lifetime_budget": "100",
        },
    )
    assert response.status_code == 302
    api_key.refresh_from_db()
    assert (api_key.rpm_limit, api_key.tpm_limit) == (30, 5000)
    extra = KeyLimits.objects.get(api_key=api_key)
    assert (extra.max_concurrent, extra.lifetime_budget, extra.team_id) == (
        2,
        Decimal(100),
        cast.acme.pk,
    )
    actions = set(AuditEvent.objects.filter(team=cast.acme).values_list("action", flat=True))
    assert {"api_key.updated", "limits.key_updated"} <= actions
    page = client_for(cast.vera).get(url).content.decode()
    assert "100.00 USD" in page and 'data-test="key-limits-form"' not in page


def test_a_members_edit_of_key_limits_is_refused(cast: Cast, api_key: ApiKey) -> None:
    url = reverse("key_limits", args=[cast.acme.pk, api_key.pk])
    assert client_for(cast.bob).post(url, {"max_concurrent": "1"}).status_code == 403
    assert not KeyLimits.objects.exists()


def test_a_revoked_keys_limits_cannot_change(cast: Cast, api_key: ApiKey) -> None:
    apikeys.revoke_api_key(cast.membership(cast.alice), api_key)
    url = reverse("key_limits", args=[cast.acme.pk, api_key.pk])
    assert client_for(cast.alice).post(url, {"max_concurrent": "1"}).status_code == 403
    assert not KeyLimits.objects.exists()


def test_credential_limits_are_set_by_admins(cast: Cast) -> None:
    credential = relay_actions.create_credential(
        cast.membership(cast.alice),
        name="acme-openai",
        provider=Provider.objects.get(slug="openai"),
        secret="sk-acme-credential-limits",
        region="default",
    )
    url = reverse("credential_limits", args=[cast.acme.pk, credential.pk])
    assert client_for(cast.bob).post(url, {"rpm_limit": "5"}).status_code == 403
    assert client_for(cast.adam).post(url, {"rpm_limit": "5", "tpm_limit": ""}).status_code == 302
    assert credential.limits.rpm_limit == 5
    assert AuditEvent.objects.filter(action="limits.credential_updated").count() == 1


def test_another_teams_key_is_a_404(cast: Cast) -> None:
    theirs = apikeys.create_api_key(
        cast.membership(cast.charlie, cast.globex), name="theirs"
    ).api_key
    url = reverse("key_limits", args=[cast.acme.pk, theirs.pk])
    assert client_for(cast.alice).get(url).status_code == 404
    assert client_for(cast.alice).post(url, {"max_concurrent": "1"}).status_code == 404


def test_the_pages_speak_simplified_chinese(cast: Cast) -> None:
    client = client_for(cast.alice)
    client.cookies["django_language"] = "zh-hans"
    limits = client.get(reverse("team_limits", args=[cast.acme.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "修改团队限制" in limits.content.decode()
    credits_page = client.get(
        reverse("team_credits", args=[cast.acme.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    assert "额度账本" in credits_page.content.decode()
