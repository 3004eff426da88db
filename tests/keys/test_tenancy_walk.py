"""The tenancy walk of tests/test_tenancy.py, for this package's URLs alone:
every credential and API key URL is a 404 to an outsider, with every method."""

from __future__ import annotations

from django.urls import reverse

from tests.conftest import Cast, client_for
from tests.tenancy_objects import populate
from tests.test_tenancy import METHODS, _victim_object_id, team_scoped_patterns

PREFIXES = ("credential", "api_key", "api-key")


def test_key_urls_are_404_for_an_outsider(cast: Cast) -> None:
    populate(cast)
    outsider = client_for(cast.charlie)
    names = []
    for name, params, callback in team_scoped_patterns():
        if not name.startswith(PREFIXES):
            continue
        names.append(name)
        kwargs = {
            p: cast.acme.pk if p == "team_id" else _victim_object_id(name, p, callback, cast)
            for p in params
        }
        url = reverse(name, kwargs=kwargs)
        for method in METHODS:
            response = getattr(outsider, method)(url, content_type="application/json")
            assert response.status_code == 404, f"{method.upper()} {url} ({name})"
            assert b"Acme" not in response.content
    assert {
        "credential_list",
        "credential_create",
        "credential_detail",
        "credential_secret",
        "credential_test",
        "credential_delete",
        "credential-list",
        "credential-detail",
        "credential-secret",
        "credential-test",
        "api_key_list",
        "api_key_create",
        "api_key_edit",
        "api_key_revoke",
        "api-key-list",
        "api-key-detail",
        "api-key-revoke",
    } <= set(names)


def test_members_reach_the_key_pages(cast: Cast) -> None:
    populate(cast)
    client = client_for(cast.alice)
    for name in (
        "credential_list",
        "credential_create",
        "api_key_list",
        "api_key_create",
        "credential-list",
        "api-key-list",
    ):
        assert client.get(reverse(name, args=[cast.acme.pk])).status_code == 200, name
