from __future__ import annotations

import re
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, Role, User
from scripts.services import free_port

pytestmark = pytest.mark.django_db

CONFIRM_LINK = re.compile(r"https?://[^/\s]+(/accounts/confirm-email/[^/\s]+/)")


def _signup(client: Client, email: str, password: str = "a sturdy passphrase 42") -> Any:
    return client.post(
        reverse("account_signup"), {"email": email, "password1": password, "password2": password}
    )


def confirmation_path(mailoutbox: list[Any], email: str) -> str:
    bodies = [mail.body for mail in mailoutbox if email in mail.to]
    links = [m.group(1) for body in bodies for m in CONFIRM_LINK.finditer(body)]
    assert len(links) == 1, bodies
    return links[0]


def test_signup_creates_a_user_with_a_personal_team_and_logs_in_once_confirmed(
    mailoutbox: list[Any],
) -> None:
    client = Client()
    response = _signup(client, "Dana@Example.com")
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    user = User.objects.get(email="dana@example.com")
    membership = Membership.objects.get(user=user)
    assert membership.role == Role.OWNER
    assert membership.team.is_personal
    assert membership.team.audit_events.filter(action="team.created").exists()
    # Not signed in until the address is confirmed.
    assert client.get(reverse("dashboard"))["Location"].startswith(reverse("account_login"))
    link = confirmation_path(mailoutbox, "dana@example.com")
    assert client.get(link).status_code == 200  # a page with a button: link scanners do nothing
    assert client.post(link).status_code == 302
    # Confirmed in the browser that signed up: signed in, and sent to the new team.
    dashboard = client.get(reverse("dashboard"))
    assert dashboard.status_code == 302
    assert dashboard["Location"] == reverse("team_overview", args=[membership.team_id])
    assert client.get(dashboard["Location"]).status_code == 200


def without_tokens(html: bytes) -> str:
    """A page without its CSRF tokens (different in every session)."""
    return re.sub(r"\b[A-Za-z0-9]{64}\b", "<csrf>", html.decode())


def test_signup_answers_the_same_for_known_and_unknown_addresses(
    cast: object, mailoutbox: list[Any]
) -> None:
    known, unknown = Client(), Client()
    taken = _signup(known, "alice@example.com")
    fresh = _signup(unknown, "newcomer@example.com")
    assert (taken.status_code, taken["Location"]) == (fresh.status_code, fresh["Location"])
    # The page repeats the address typed in; otherwise it is the same page.
    assert without_tokens(known.get(taken["Location"]).content).replace(
        "alice@example.com", "<email>"
    ) == without_tokens(unknown.get(fresh["Location"]).content).replace(
        "newcomer@example.com", "<email>"
    )
    assert User.objects.filter(email="alice@example.com").count() == 1
    # The owner of the known address hears about it; nobody else does.
    to_alice = [mail for mail in mailoutbox if "alice@example.com" in mail.to]
    assert len(to_alice) == 1 and "already" in to_alice[0].body
    assert len([mail for mail in mailoutbox if "newcomer@example.com" in mail.to]) == 1


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
    user = User.objects.create_user("gina@example.com", "a sturdy passphrase 42")
    EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
    client = Client()
    response = client.post(
        reverse("account_login"),
        {"login": "gina@example.com", "password": "a sturdy passphrase 42"},
    )
    assert response.status_code == 302
    assert client.get(reverse("dashboard")).status_code == 302
    client.post(reverse("account_logout"))
    assert client.get(reverse("dashboard"))["Location"].startswith(reverse("account_login"))


def test_an_unconfirmed_address_cannot_sign_in(mailoutbox: list[Any]) -> None:
    User.objects.create_user("ida@example.com", "a sturdy passphrase 42")
    client = Client()
    response = client.post(
        reverse("account_login"), {"login": "ida@example.com", "password": "a sturdy passphrase 42"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert client.get(reverse("dashboard"))["Location"].startswith(reverse("account_login"))
    confirmation_path(mailoutbox, "ida@example.com")


def test_password_reset_sends_mail(mailoutbox: list) -> None:
    User.objects.create_user("hana@example.com", "a sturdy passphrase 42")
    response = Client().post(reverse("account_reset_password"), {"email": "hana@example.com"})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    assert "hana@example.com" in mailoutbox[0].to


def test_password_reset_answers_the_same_for_known_and_unknown_addresses(
    mailoutbox: list[Any],
) -> None:
    User.objects.create_user("jo@example.com", "a sturdy passphrase 42")
    known, unknown = Client(), Client()
    url = reverse("account_reset_password")
    for_known = known.post(url, {"email": "jo@example.com"})
    for_unknown = unknown.post(url, {"email": "nobody-here@example.com"})
    assert (for_known.status_code, for_known["Location"]) == (
        for_unknown.status_code,
        for_unknown["Location"],
    )
    assert without_tokens(known.get(for_known["Location"]).content) == without_tokens(
        unknown.get(for_unknown["Location"]).content
    )


def test_an_unreachable_mail_server_does_not_fail_a_sign_up(settings: Any, caplog: Any) -> None:
    """The account is made and the page says a mail was sent; it can be sent again from
    there once the operator fixes the mail server. Never a 500."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    settings.EMAIL_USE_TLS = False
    response = _signup(Client(), "erin@example.com")
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert User.objects.filter(email="erin@example.com").exists()
    [warning] = [r for r in caplog.records if r.name == "accounts.mail"]
    assert "email_confirmation_signup" in warning.getMessage()
    assert "confirm-email" not in warning.getMessage()
