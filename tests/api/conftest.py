"""A team with one object of every kind, and the calls a script makes.

``concrete_path`` turns a path of the OpenAPI schema (``/api/teams/{team_id}/
routes/{id}/``) into a URL of a real object of Acme's, by asking the view that
serves it for its queryset: a new endpoint needs no entry here.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import resolve

from accounts import actions, tokens
from accounts.api.auth import PAT_PREFIX
from accounts.models import PersonalAccessToken, Role, User
from tests.conftest import Cast
from tests.tenancy_objects import populate


def token_for(user: User) -> str:
    issued = tokens.issue(PAT_PREFIX)
    PersonalAccessToken.objects.create(
        user=user, name="script", lookup=issued.lookup, digest=issued.digest, last4=issued.last4
    )
    return issued.token


def api(user: User) -> Client:
    return Client(headers={"authorization": f"Bearer {token_for(user)}"})


@pytest.fixture
def world(cast: Cast) -> Cast:
    """Acme with a credential, an API key, a route, a billing record and an invitation."""
    actions.invite(cast.membership(cast.alice), email="pending@example.com", role=Role.MEMBER)
    populate(cast)
    return cast


def _object_id(view_class: Any, cast: Cast) -> str:
    queryset = getattr(view_class, "team_queryset", None)
    if queryset is not None:
        obj = queryset.filter(team=cast.acme).first()
    else:
        obj = view_class.queryset.first()
    assert obj is not None, f"{view_class.__name__}: no object to point at"
    return str(getattr(obj, view_class.lookup_field))


def concrete_path(template: str, cast: Cast) -> str:
    """The schema's path template filled with Acme and one of its objects."""
    path = template.replace("{team_id}", str(cast.acme.pk))
    for name in ("id", "slug"):
        placeholder = "{" + name + "}"
        if placeholder in path:
            view_class = resolve(path.replace(placeholder, "0")).func.cls  # type: ignore[attr-defined]
            path = path.replace(placeholder, _object_id(view_class, cast))
    assert "{" not in path, f"teach tests/api/conftest.py the parameters of {template}"
    return path


def generated_schema() -> dict[str, Any]:
    """The OpenAPI document /api/schema/ serves, generated in process."""
    from drf_spectacular.generators import SchemaGenerator

    schema: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
    return schema


def operations(method: str) -> list[str]:
    """Every schema path that takes ``method``."""
    paths = [path for path, item in generated_schema()["paths"].items() if method in item]
    assert paths, f"the schema has no {method.upper()} operation"
    return paths
