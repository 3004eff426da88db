"""The management API for limits and credits."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts import apikeys
from accounts.models import ApiKey, AuditEvent
from billing.models import KeyLimits, TeamLimits
from tests.conftest import Cast, client_for


def patch(client: Client, url: str, data: dict[str, Any]) -> Any:
    return client.patch(url, json.dumps(data), content_type="application/json")


@pytest.fixture
def api_key(cast: Cast) -> ApiKey:
    return apikeys.create_api_key(cast.membership(cast.alice), name="service").api_key


def test_team_limits_read_and_write(cast: Cast) -> None:
    url = reverse("team-limits", args=[cast.acme.pk])
    data = client_for(cast.vera).get(url).json()
    assert (
        data["rpm_limit"] is None
        and data["currency"] == "USD"
        and data["billing_mode"] == "prepaid"
    )
    assert data["use"]["in_flight"] == 0 and data["use"]["spent_today"] == "0.000000000"
    response = patch(client_for(cast.adam), url, {"monthly_budget": "25.50", "max_concurrent": 8})
    assert response.status_code == 200, response.json()
    assert response.json()["monthly_budget"] == "25.5000"
    assert TeamLimits.objects.get(team=cast.acme).monthly_budget == Decimal("25.5")
    assert AuditEvent.objects.filter(action="limits.team_updated").count() == 1
    # Clearing a limit is null.
    patch(client_for(cast.adam), url, {"monthly_budget": None})
    assert TeamLimits.objects.get(team=cast.acme).monthly_budget is None


@pytest.mark.parametrize(
    "bad",
    [
        {"rpm_limit": -1},
        {"rpm_limit": 0},
        {"tpm_limit": 10**12},
        {"daily_budget": "-5"},
        {"daily_budget": "1e12"},
        {"monthly_budget": "0.00001"},
        {"max_concurrent": "many"},
    ],
)
def test_bad_team_limits_are_a_400_and_change_nothing(cast: Cast, bad: dict[str, Any]) -> None:
    response = patch(client_for(cast.alice), reverse("team-limits", args=[cast.acme.pk]), bad)
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error["fields"]) == set(bad)
    row = TeamLimits.objects.get(team=cast.acme)
    assert all(getattr(row, name) is None for name in bad)


@pytest.mark.parametrize("user", ["bob", "vera"])
def test_members_and_viewers_cannot_patch_limits(cast: Cast, user: str) -> None:
    response = patch(
        client_for(getattr(cast, user)),
        reverse("team-limits", args=[cast.acme.pk]),
        {"rpm_limit": 5},
    )
    assert response.status_code == 403
    assert TeamLimits.objects.get(team=cast.acme).rpm_limit is None


def test_outsiders_get_404_everywhere(cast: Cast, api_key: ApiKey) -> None:
    charlie = client_for(cast.charlie)
    for url in (
        reverse("team-limits", args=[cast.acme.pk]),
        reverse("team-credits", args=[cast.acme.pk]),
        reverse("credit-redeem", args=[cast.acme.pk]),
        reverse("key-limits-detail", args=[cast.acme.pk, api_key.pk]),
        reverse("credit-entry-list", args=[cast.acme.pk]),
    ):
        assert charlie.get(url).status_code == 404
        assert patch(charlie, url, {"rpm_limit": 1}).status_code == 404


def test_key_limits_list_retrieve_and_patch(cast: Cast, api_key: ApiKey) -> None:
    api_key.budget_limit = Decimal("4")
    api_key.budget_period = "day"
    api_key.save()
    url = reverse("key-limits-detail", args=[cast.acme.pk, api_key.pk])
    response = patch(
        client_for(cast.alice), url, {"daily_budget": "6", "lifetime_budget": "50", "rpm_limit": 9}
    )
    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["rpm_limit"] == 9 and data["daily_budget"] == "6.0000"
    # The key's own 4/day is lower than 6/day: it wins.
    assert data["effective_budgets"] == {"day": "4.0000", "month": None, "lifetime": "50.0000"}
    assert data["key_budget"] == {"limit": "4.0000", "period": "day"}
    listed = client_for(cast.vera).get(reverse("key-limits-list", args=[cast.acme.pk])).json()
    assert [item["name"] for item in listed] == ["service"]
    assert KeyLimits.objects.get(api_key=api_key).lifetime_budget == Decimal(50)
    assert patch(client_for(cast.bob), url, {"daily_budget": "1"}).status_code == 403
    bad = patch(client_for(cast.alice), url, {"max_concurrent": -3})
    assert bad.status_code == 400 and "max_concurrent" in bad.json()["error"]["fields"]


def test_credits_and_the_ledger(cast: Cast) -> None:
    data = client_for(cast.vera).get(reverse("team-credits", args=[cast.acme.pk])).json()
    assert data["balance"] == "5.000000000" and data["currency"] == "USD" and data["live"] is True
    entries = client_for(cast.vera).get(reverse("credit-entry-list", args=[cast.acme.pk])).json()
    assert [e["kind"] for e in entries["results"]] == ["signup"]


def test_the_schema_documents_the_endpoints(cast: Cast) -> None:
    schema = client_for(cast.alice).get(reverse("api-schema"), {"format": "json"}).json()
    paths = set(schema["paths"])
    assert {
        "/api/teams/{team_id}/limits/",
        "/api/teams/{team_id}/credits/",
        "/api/teams/{team_id}/credits/redeem/",
        "/api/teams/{team_id}/key-limits/{id}/",
        "/api/teams/{team_id}/credential-limits/{id}/",
        "/api/teams/{team_id}/credit-entries/",
    } <= paths
