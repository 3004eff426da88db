"""Responses that hold the only copy of a secret are never cached (``Cache-Control: no-store``),
like the API-key pages: a personal access token, an invitation link."""

from __future__ import annotations

import re

from django.urls import reverse

from accounts.api.auth import PAT_PREFIX
from accounts.models import Invitation
from tests.accounts.test_api import api
from tests.conftest import Cast, client_for


def test_the_page_showing_a_new_access_token_is_not_stored(cast: Cast) -> None:
    client = client_for(cast.bob)
    response = client.post(reverse("access_tokens"), {"name": "ci"})
    assert response.status_code == 200
    assert re.search(PAT_PREFIX + r"[A-Za-z0-9]{32}", response.content.decode())
    assert response["Cache-Control"] == "no-store"


def test_the_page_showing_a_new_invitation_link_is_not_stored(cast: Cast) -> None:
    client = client_for(cast.alice)
    response = client.post(
        reverse("team_members", args=[cast.acme.pk]),
        {"email": "dora@example.com", "role": "member"},
    )
    assert response.status_code == 200
    assert Invitation.objects.filter(team=cast.acme, email="dora@example.com").exists()
    assert "/invitations/" in response.content.decode()
    assert response["Cache-Control"] == "no-store"


def test_the_api_response_with_a_new_invitation_link_is_not_stored(cast: Cast) -> None:
    response = api(cast.alice).post(
        f"/api/teams/{cast.acme.pk}/invitations/",
        {"email": "dora@example.com", "role": "member"},
        content_type="application/json",
    )
    assert response.status_code == 201 and "/invitations/" in response.json()["url"]
    assert response["Cache-Control"] == "no-store"


def test_pages_without_a_new_secret_keep_the_default(cast: Cast) -> None:
    """Only the response carrying the secret opts out; the plain pages are unchanged."""
    client = client_for(cast.alice)
    for url in (reverse("access_tokens"), reverse("team_members", args=[cast.acme.pk])):
        response = client.get(url)
        assert response.status_code == 200
        assert "no-store" not in response.get("Cache-Control", ""), url
