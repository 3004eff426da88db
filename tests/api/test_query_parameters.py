"""Query parameters: a value the API cannot honour is a 400 in the API's
error shape, never a 500 and never silently ignored."""

from __future__ import annotations

import pytest

from accounts.api.pagination import MAX_LIMIT
from tests.api.conftest import api, concrete_path, generated_schema
from tests.conftest import Cast


def paginated_lists(by: str = "limit") -> list[str]:
    """The lists that take ``limit`` (all), or ``offset`` or ``cursor`` (how they page)."""
    paths = [
        path
        for path, item in generated_schema()["paths"].items()
        if "get" in item and any(p["name"] == by for p in item["get"].get("parameters", []))
    ]
    assert len(paths) >= (5 if by != "cursor" else 1), paths
    return paths


BAD_LIMITS = ["9223372036854775808", "-1", "0", str(MAX_LIMIT + 1), "abc", "", "1.5", "1_0", "٣"]
BAD_OFFSETS = ["-1", "9223372036854775808", "x", "", "1e3"]


@pytest.mark.parametrize("template", paginated_lists())
def test_bad_limits_and_offsets_are_400(world: Cast, template: str) -> None:
    client = api(world.alice)
    url = concrete_path(template, world)
    for name, values in (("limit", BAD_LIMITS), ("offset", BAD_OFFSETS)):
        for value in values:
            response = client.get(url, {name: value})
            assert response.status_code == 400, f"{url}?{name}={value!r}: {response.status_code}"
            error = response.json()["error"]
            assert error["type"] == "invalid_request" and name in error["fields"], error


@pytest.mark.parametrize("template", paginated_lists("offset"))
def test_good_limits_and_offsets_page(world: Cast, template: str) -> None:
    client = api(world.alice)
    url = concrete_path(template, world)
    whole = client.get(url, {"limit": MAX_LIMIT})
    assert whole.status_code == 200
    count = whole.json()["count"]
    assert (
        client.get(url, {"limit": 1, "offset": 0}).json()["results"] == whole.json()["results"][:1]
    )
    beyond = client.get(url, {"offset": 2**63 - 1})
    assert beyond.status_code == 200 and beyond.json() == {
        "count": count,
        "next": None,
        "previous": beyond.json()["previous"],
        "results": [],
    }


def test_the_lists_too_long_to_count_page_by_cursor() -> None:
    assert paginated_lists("cursor") == ["/api/teams/{team_id}/requests/"]
    assert not set(paginated_lists("cursor")) & set(paginated_lists("offset"))


def test_the_schema_documents_the_bounds() -> None:
    item = generated_schema()["paths"]["/api/teams/"]["get"]
    params = {p["name"]: p["schema"] for p in item["parameters"]}
    assert params["limit"]["minimum"] == 1 and params["limit"]["maximum"] == MAX_LIMIT
    assert params["offset"]["minimum"] == 0 and params["offset"]["maximum"] == 2**63 - 1


@pytest.mark.parametrize(
    "query",
    [
        {"start": "9999-12-31", "end": "9999-12-31"},
        {"end": "0001-01-01"},
        {"start": "0001-01-01", "end": "0001-01-02"},
        {"start": "2025-02-30"},
        {"key": "not-a-uuid"},
        {"key": ""},
    ],
)
def test_bad_usage_filters_are_400(cast: Cast, query: dict[str, str]) -> None:
    response = api(cast.alice).get(f"/api/teams/{cast.acme.pk}/usage/", query)
    assert response.status_code == 400, (query, response.status_code)
    assert response.json()["error"]["type"] == "invalid_request"


def test_good_usage_filters(cast: Cast) -> None:
    response = api(cast.alice).get(
        f"/api/teams/{cast.acme.pk}/usage/",
        {"start": "2025-01-01", "end": "2025-01-31", "key": "00000000-0000-0000-0000-000000000000"},
    )
    assert response.status_code == 200 and response.json()["totals"]["requests"] == 0
