"""PATCH is a partial update on every endpoint: any subset of the fields,
the empty one included, is validated and applied; nothing else changes."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent, Membership
from tests.api.conftest import api, concrete_path, operations
from tests.conftest import Cast

VOLATILE = {"updated_at", "last_used_at", "use"}


def _stable(body: object) -> object:
    if isinstance(body, dict):
        return {k: _stable(v) for k, v in body.items() if k not in VOLATILE}
    return body


@pytest.mark.parametrize("template", operations("patch"))
def test_an_empty_patch_changes_nothing(world: Cast, template: str) -> None:
    client = api(world.alice)
    url = concrete_path(template, world)
    before = client.get(url)
    assert before.status_code == 200, f"GET {url}: {before.status_code}"
    events = AuditEvent.objects.count()
    response = client.patch(url, {}, content_type="application/json")
    assert response.status_code == 200, (
        f"PATCH {url} {{}}: {response.status_code} {response.content[:300]!r}"
    )
    assert _stable(response.json()) == _stable(before.json())
    assert _stable(client.get(url).json()) == _stable(before.json())
    assert AuditEvent.objects.count() == events, "an empty PATCH recorded a change"


def test_a_partial_team_update_is_validated(cast: Cast) -> None:
    url = f"/api/teams/{cast.acme.pk}/"
    response = api(cast.alice).patch(url, {"name": "   "}, content_type="application/json")
    assert response.status_code == 400 and "name" in response.json()["error"]["fields"]
    renamed = api(cast.alice).patch(url, {"name": "Acme 2"}, content_type="application/json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "Acme 2"


def test_a_partial_member_update_is_validated(cast: Cast) -> None:
    bob = cast.membership(cast.bob)
    url = f"/api/teams/{cast.acme.pk}/members/{bob.pk}/"
    bad = api(cast.alice).patch(url, {"role": "emperor"}, content_type="application/json")
    assert bad.status_code == 400 and "role" in bad.json()["error"]["fields"]
    good = api(cast.alice).patch(url, {"role": "admin"}, content_type="application/json")
    assert good.status_code == 200 and good.json()["role"] == "admin"
    assert Membership.objects.get(pk=bob.pk).role == "admin"
