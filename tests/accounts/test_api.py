"""The management API: personal access tokens, teams, members, invitations, audit."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.validation import validate_schema

from accounts import tokens
from accounts.api.auth import PAT_PREFIX
from accounts.models import Invitation, Membership, PersonalAccessToken, Role, User
from scripts.services import free_port
from tests.conftest import Cast, client_for


def token_for(user: User) -> str:
    issued = tokens.issue(PAT_PREFIX)
    PersonalAccessToken.objects.create(
        user=user, name="script", lookup=issued.lookup, digest=issued.digest, last4=issued.last4
    )
    return issued.token


def api(user: User) -> Client:
    return Client(headers={"authorization": f"Bearer {token_for(user)}"})


def test_token_lists_only_my_teams(cast: Cast) -> None:
    response = api(cast.bob).get("/api/teams/")
    assert response.status_code == 200
    names = {team["name"]: team["role"] for team in response.json()["results"]}
    assert names == {"Acme": "member", "bob": "owner"}


def test_bad_or_revoked_token_is_401_json(cast: Cast) -> None:
    response = Client(headers={"authorization": "Bearer baton_pat_nope"}).get("/api/teams/")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_failed"
    token = token_for(cast.bob)
    PersonalAccessToken.objects.update(revoked_at="2020-01-01T00:00:00Z")
    assert (
        Client(headers={"authorization": f"Bearer {token}"}).get("/api/teams/").status_code == 401
    )


def test_tokens_are_stored_as_digests(cast: Cast) -> None:
    token = token_for(cast.bob)
    stored = PersonalAccessToken.objects.get()
    assert token not in (stored.digest, stored.lookup) and stored.last4 == token[-4:]


def test_create_team_and_rename(cast: Cast) -> None:
    client = api(cast.bob)
    created = client.post("/api/teams/", {"name": "Bob Labs"}, content_type="application/json")
    assert created.status_code == 201 and created.json()["name"] == "Bob Labs"
    assert created.json()["role"] == "owner"  # the creator's role, not null
    team_id = created.json()["id"]
    renamed = client.patch(
        f"/api/teams/{team_id}/", {"name": "Bob Labs 2"}, content_type="application/json"
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "Bob Labs 2"


def test_overlong_name_is_a_field_error(cast: Cast) -> None:
    response = api(cast.bob).post(
        "/api/teams/", {"name": "x" * 81}, content_type="application/json"
    )
    assert response.status_code == 400
    assert "name" in response.json()["error"]["fields"]


def test_invite_through_the_api_returns_the_link_once(cast: Cast) -> None:
    url = f"/api/teams/{cast.acme.pk}/invitations/"
    response = api(cast.adam).post(
        url, {"email": "new@example.com", "role": "viewer"}, content_type="application/json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "pending" and "/invitations/" in body["url"]
    listed = api(cast.adam).get(url).json()["results"]
    assert "url" not in listed[0]


def test_viewer_cannot_invite_via_api(cast: Cast) -> None:
    response = api(cast.vera).post(
        f"/api/teams/{cast.acme.pk}/invitations/",
        {"email": "x@example.com"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_denied"
    assert not Invitation.objects.exists()


def test_rule_violations_are_400_with_a_message(cast: Cast) -> None:
    alice = Membership.objects.get(team=cast.acme, user=cast.alice)
    response = api(cast.alice).patch(
        f"/api/teams/{cast.acme.pk}/members/{alice.pk}/",
        {"role": "admin"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "rule_violation"
    assert "owner" in response.json()["error"]["message"]


def test_accept_invitation_via_api(cast: Cast) -> None:
    from accounts import actions

    issued = actions.invite(cast.membership(cast.alice), email="api@example.com", role=Role.MEMBER)
    token = issued.url.rstrip("/").rsplit("/", 1)[1]
    newcomer = User.objects.create_user("api@example.com", "x-sturdy-passphrase-1")
    response = api(newcomer).post(
        "/api/invitations/accept/", {"token": token}, content_type="application/json"
    )
    assert response.status_code == 201 and response.json()["role"] == "member"
    again = api(newcomer).post(
        "/api/invitations/accept/", {"token": token}, content_type="application/json"
    )
    assert again.status_code == 400


def test_invalid_json_is_a_json_400(cast: Cast) -> None:
    response = api(cast.bob).post("/api/teams/", "{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request"


def test_session_api_requires_csrf(cast: Cast) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.bob)
    response = client.post("/api/teams/", {"name": "no csrf"}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_denied"


def test_audit_log_via_api_is_for_admins(cast: Cast) -> None:
    url = f"/api/teams/{cast.acme.pk}/audit-events/"
    assert api(cast.bob).get(url).status_code == 403
    events = api(cast.alice).get(url).json()["results"]
    assert events[0]["action"] == "team.created"


def test_schema_and_docs(cast: Cast, tmp_path: Path) -> None:
    """The schema generates without a single warning and is valid OpenAPI, as
    `manage.py spectacular --validate --fail-on-warn` checks it; the schema the
    API serves validates too; the docs page loads every asset it names."""
    GENERATOR_STATS.reset()  # warnings are counted per process; count this run's only
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert not GENERATOR_STATS, "schema generation emitted warnings"
    generated = yaml.safe_load(target.read_text())
    assert len(generated["paths"]) >= 20

    client = client_for(cast.bob)
    served = client.get("/api/schema/", {"format": "json"})
    assert served.status_code == 200
    validate_schema(served.json())
    assert served.json()["paths"].keys() == generated["paths"].keys()
    assert not GENERATOR_STATS, "serving the schema emitted warnings"

    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    # Every script and stylesheet the page loads (links to other pages are not assets).
    assets = re.findall(r'<script[^>]* src="(/[^"]+)"', html)
    assets += re.findall(r'<link[^>]* rel="stylesheet"[^>]* href="(/[^"]+)"', html)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, f"{asset}: {response.status_code}"
        assert response.getvalue(), f"{asset} is empty"
    # Swagger UI's start-up script (served from a URL, not inline: the CSP) names the schema.
    start_up = [a for a in assets if "?script" in a]
    assert len(start_up) == 1, assets
    script = client.get(start_up[0]).content.decode()
    schema_url = re.search(r'url: "([^"]+)"', script)
    assert schema_url and client.get(schema_url.group(1)).status_code == 200


def test_access_token_page_shows_the_token_once(cast: Cast) -> None:
    client = client_for(cast.bob)
    response = client.post(reverse("access_tokens"), {"name": "ci"})
    stored = PersonalAccessToken.objects.get(user=cast.bob)
    body = response.content.decode()
    assert PAT_PREFIX in body and stored.last4 in body
    again = client.get(reverse("access_tokens")).content.decode()
    shown = re.findall(PAT_PREFIX + r"[A-Za-z0-9]{32}", body)
    assert shown and shown[0].endswith(stored.last4)
    assert shown[0] not in again


@pytest.fixture
def broken_smtp(settings: Any) -> None:
    """A real SMTP client aimed at a port where nothing listens."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    settings.EMAIL_USE_TLS = False


def test_an_unreachable_mail_server_does_not_fail_an_invitation(
    cast: Cast, broken_smtp: None, django_capture_on_commit_callbacks: Any, caplog: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api(cast.adam).post(
            f"/api/teams/{cast.acme.pk}/invitations/",
            {"email": "new@example.com", "role": "viewer"},
            content_type="application/json",
        )
    assert len(callbacks) == 1  # the mail was attempted, after the commit
    assert response.status_code == 201
    assert "/invitations/" in response.json()["url"]  # the sender can pass the link on
    assert Invitation.objects.get(email="new@example.com").accepted_at is None
    [warning] = [r for r in caplog.records if r.name == "accounts.mail"]
    assert "ConnectionRefusedError" in warning.getMessage()
    assert "/invitations/" not in warning.getMessage()
