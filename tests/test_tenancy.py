"""Tenant isolation, proven for every team-scoped URL there is.

The test walks the URL configuration (pages and the API router alike), finds
every pattern that takes a ``team_id``, fills it with a team the caller is not
in (plus ids of that team's objects for the other parameters), and asserts
that every method answers 404 and leaks nothing. A new team-scoped view is
covered the moment it is routed; a new URL parameter fails the test until
``OBJECT_FOR_PARAMETER`` learns how to find a victim object for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts import actions
from accounts.models import Role
from tests.conftest import Cast, client_for
from tests.tenancy_objects import OBJECT_FOR_PARAMETER

METHODS = ("get", "post", "put", "patch", "delete")


def _parameters(pattern: Any) -> list[str]:
    if hasattr(pattern, "converters") and pattern.converters:
        return list(pattern.converters)
    regex = getattr(pattern, "regex", None)
    return list(regex.groupindex) if regex is not None else []


def team_scoped_patterns() -> Iterator[tuple[str, list[str], Any]]:
    def walk(entries: list[Any], inherited: list[str]) -> Iterator[tuple[str, list[str], Any]]:
        for entry in entries:
            params = inherited + _parameters(entry.pattern)
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, params)
            elif isinstance(entry, URLPattern) and "team_id" in params and entry.name:
                yield entry.name, params, entry.callback

    yield from walk(get_resolver().url_patterns, [])


def _victim_object_id(name: str, param: str, callback: Any, cast: Cast) -> Any:
    view_class = getattr(callback, "cls", None)
    queryset: models.QuerySet[Any] | None = getattr(view_class, "team_queryset", None)
    if queryset is not None and param in (
        "pk",
        getattr(view_class, "lookup_url_kwarg", None) or "pk",
    ):
        obj = queryset.model._default_manager.filter(team=cast.acme).first()
        assert obj is not None, f"no {queryset.model.__name__} of the victim team for {name}"
        return obj.pk
    finder: Callable[[Cast], Any] | None = OBJECT_FOR_PARAMETER.get(param)
    assert finder is not None, (
        f"URL {name!r} takes {param!r}: teach tests/tenancy_objects.py how to find "
        "one of the victim team's objects for it"
    )
    return finder(cast)


@pytest.fixture
def populated(cast: Cast) -> Cast:
    """Acme with at least one object of every kind a URL can point at."""
    actions.invite(cast.membership(cast.alice), email="pending@example.com", role=Role.MEMBER)
    from tests.tenancy_objects import populate

    populate(cast)
    return cast


def test_the_walk_finds_the_team_scoped_urls() -> None:
    names = {name for name, _, _ in team_scoped_patterns()}
    # A guard against a walk that silently finds nothing.
    assert {"team_overview", "team_members", "member-list", "member-detail", "team-detail"} <= names


def test_every_team_scoped_url_is_404_for_an_outsider(populated: Cast) -> None:
    cast = populated
    outsider = client_for(cast.charlie)
    checked = 0
    for name, params, callback in team_scoped_patterns():
        kwargs = {
            param: cast.acme.pk
            if param == "team_id"
            else _victim_object_id(name, param, callback, cast)
            for param in params
        }
        url = reverse(name, kwargs=kwargs)
        for method in METHODS:
            response = getattr(outsider, method)(url, content_type="application/json")
            assert response.status_code == 404, (
                f"{method.upper()} {url} ({name}) answered {response.status_code}"
            )
            assert b"Acme" not in response.content, f"{method.upper()} {url} leaked the team name"
            checked += 1
    assert checked >= 5 * 10


# Team-level URLs (only a team_id) the two walks below must reach: guards against a walk or a
# filter that silently skips them.
TEAM_LEVEL = {"team_overview", "team_members", "team_settings", "team-detail", "member-list"}


def test_unknown_team_ids_are_404(cast: Cast) -> None:
    client = client_for(cast.alice)
    checked = set()
    for name, params, _ in team_scoped_patterns():
        if params != ["team_id"]:
            continue
        assert client.get(reverse(name, kwargs={"team_id": uuid.uuid4()})).status_code == 404, name
        checked.add(name)
    assert checked >= TEAM_LEVEL and len(checked) >= 20


def test_members_still_reach_their_team(populated: Cast) -> None:
    """The same walk as a member: proves the 404s above are about membership."""
    client = client_for(populated.alice)
    checked = set()
    for name, params, _ in team_scoped_patterns():
        if params == ["team_id"] and not name.endswith("leave"):
            response = client.get(reverse(name, kwargs={"team_id": populated.acme.pk}))
            assert response.status_code in (200, 405), f"{name} answered {response.status_code}"
            checked.add(name)
    assert checked >= TEAM_LEVEL and len(checked) >= 20
