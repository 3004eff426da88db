from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, Role, User

pytestmark = pytest.mark.django_db


def _signup(client: Client, email: str, password: str = "a sturdy passphrase 42") -> Any:
    return client.post(
        reverse("account_signup"), {"email": email, "password1": password, "password2": password}
    )


def test_signup_creates_a_user_with_a_personal_team_and_logs_in() -> None:
    client = Client()
    response = _signup(client, "Dana@Example.com")
    assert response.status_code == 302
    user = User.objects.get(email="dana@example.com")
    membership = Membership.objects.get(user=user)
    assert membership.role == Role.OWNER
    assert membership.team.is_personal
    assert membership.team.audit_events.filter(action="team.created").exists()
    # The dashboard sends the new user to that team.
    dashboard = client.get(reverse("dashboard"))
    assert dashboard.status_code == 302
    assert dashboard["Location"] == reverse("team_overview", args=[membership.team_id])
    assert client.get(dashboard["Location"]).status_code == 200


def test_duplicate_email_is_a_form_error(cast: object) -> None:
    response = _signup(Client(), "alice@example.com")
    assert response.status_code == 200
    assert response.context["form"].errors["email"]
    assert User.objects.filter(email="alice@example.com").count() == 1


def test_weak_password_is_a_form_error() -> None:
    response = _signup(Client(), "erin@example.com", password="12345678")
    assert response.status_code == 200
    assert response.context["form"].errors
    assert not User.objects.filter(email="erin@example.com").exists()


def test_signup_without_csrf_token_is_refused_cleanly() -> None:
    client = Client(enforce_csrf_checks=True)
    response = _signup(client, "frank@example.com")
    assert response.status_code == 403
    assert not User.objects.filter(email="frank@example.com").exists()


def test_login_and_logout() -> None:
    User.objects.create_user("gina@example.com", "a sturdy passphrase 42")
    client = Client()
    response = client.post(
        reverse("account_login"),
        {"login": "gina@example.com", "password": "a sturdy passphrase 42"},
    )
    assert response.status_code == 302
    assert client.get(reverse("dashboard")).status_code == 302
    client.post(reverse("account_logout"))
    assert client.get(reverse("dashboard"))["Location"].startswith(reverse("account_login"))


def test_password_reset_sends_mail(mailoutbox: list) -> None:
    User.objects.create_user("hana@example.com", "a sturdy passphrase 42")
    response = Client().post(reverse("account_reset_password"), {"email": "hana@example.com"})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    assert "hana@example.com" in mailoutbox[0].to
