"""Names never carry control characters: not through the API, not through a
page. A team name with CR/LF used to be accepted, and then every invitation
failed with BadHeaderError (the row saved, the mail never sent)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import ApiKey, Invitation, PersonalAccessToken, Team
from relay.models import ModelRoute, ProviderCredential
from tests.api.conftest import api
from tests.conftest import Cast, client_for

BAD_NAMES = [
    "Acme\r\nBcc: victim@example.com",
    "line\nbreak",
    "carriage\rreturn",
    "nul\x00byte",
    "tab\there",
    "escape\x1b[31m",
    "delete\x7f",
    "next\x85line",
    "line\u2028separator",
]


def _field_error(response: Any, field: str) -> None:
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert field in response.json()["error"]["fields"], response.json()


@pytest.mark.parametrize("name", BAD_NAMES)
def test_the_api_refuses_control_characters_in_names(cast: Cast, name: str) -> None:
    client = api(cast.alice)
    team = f"/api/teams/{cast.acme.pk}"
    teams = Team.objects.count()
    _field_error(
        client.post("/api/teams/", {"name": name}, content_type="application/json"), "name"
    )
    _field_error(client.patch(f"{team}/", {"name": name}, content_type="application/json"), "name")
    _field_error(
        client.post(f"{team}/api-keys/", {"name": name}, content_type="application/json"), "name"
    )
    _field_error(
        client.post(
            f"{team}/credentials/",
            {"name": name, "provider": "openai", "secret": "sk-test-0001"},
            content_type="application/json",
        ),
        "name",
    )
    assert Team.objects.count() == teams
    assert not ApiKey.objects.exists() and not ProviderCredential.objects.exists()


def test_the_api_refuses_control_characters_in_aliases(cast: Cast) -> None:
    client = api(cast.alice)
    credential = client.post(
        f"/api/teams/{cast.acme.pk}/credentials/",
        {"name": "OpenAI", "provider": "openai", "secret": "sk-test-0001"},
        content_type="application/json",
    ).json()["id"]
    for alias in BAD_NAMES:
        response = client.post(
            f"/api/teams/{cast.acme.pk}/routes/",
            {"alias": alias, "targets": [{"credential": credential, "upstream_model": "gpt-4o"}]},
            content_type="application/json",
        )
        _field_error(response, "alias")
    assert not ModelRoute.objects.exists()


def _form_error(response: Any, field: str) -> None:
    assert response.status_code == 200, response.status_code
    assert field in response.context["form"].errors, response.context["form"].errors


@pytest.mark.parametrize("name", BAD_NAMES)
def test_the_pages_refuse_control_characters_in_names(cast: Cast, name: str) -> None:
    client = client_for(cast.alice)
    teams = Team.objects.count()
    _form_error(client.post(reverse("team_create"), {"name": name}), "name")
    _form_error(client.post(reverse("team_settings", args=[cast.acme.pk]), {"name": name}), "name")
    _form_error(client.post(reverse("access_tokens"), {"name": name}), "name")
    _form_error(
        client.post(
            reverse("api_key_create", args=[cast.acme.pk]),
            {"name": name, "budget_period": "month"},
        ),
        "name",
    )
    _form_error(
        client.post(
            reverse("credential_create", args=[cast.acme.pk]),
            {"name": name, "provider": "openai", "secret": "sk-test-0001", "enabled": "on"},
        ),
        "name",
    )
    assert Team.objects.get(pk=cast.acme.pk).name == "Acme"
    assert Team.objects.count() == teams
    assert not PersonalAccessToken.objects.exists()
    assert not ApiKey.objects.exists() and not ProviderCredential.objects.exists()


def invite(cast: Cast, capture: Any) -> Any:
    mail.outbox.clear()
    with capture(execute=True):  # the mail leaves when the transaction commits
        return api(cast.alice).post(
            f"/api/teams/{cast.acme.pk}/invitations/",
            {"email": "newcomer@example.com", "role": "member"},
            content_type="application/json",
        )


def test_an_invitation_is_mailed(cast: Cast, django_capture_on_commit_callbacks: Any) -> None:
    response = invite(cast, django_capture_on_commit_callbacks)
    assert response.status_code == 201
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["newcomer@example.com"] and message.recipients() == message.to
    assert message.subject == "You are invited to join Acme on Baton"
    assert response.json()["url"] in message.body
    assert "\n" not in message.message()["Subject"]


def test_a_name_stored_before_the_rule_still_mails_on_one_line(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    """Rows written before the rule (or by the admin) cannot break the mail either."""
    Team.objects.filter(pk=cast.acme.pk).update(name="Acme\r\nBcc: victim@example.com")
    response = invite(cast, django_capture_on_commit_callbacks)
    assert response.status_code == 201
    assert Invitation.objects.filter(email="newcomer@example.com").count() == 1
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.recipients() == ["newcomer@example.com"]
    assert message.subject == "You are invited to join Acme Bcc: victim@example.com on Baton"
    assert "Bcc" not in message.message()
