"""Admin sign-in is throttled: it goes through the site's login and its rate limits."""

from __future__ import annotations

import uuid

import pytest
from allauth.account.models import EmailAddress
from django.test import Client
from django.urls import reverse

from accounts.models import User

pytestmark = pytest.mark.django_db

PASSWORD = "the operator's long passphrase 7"


@pytest.fixture
def superuser() -> User:
    # A fresh address each test: allauth's per-account failure count lives in the cache.
    user = User.objects.create_superuser(f"root-{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
    EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
    return user


def test_the_admin_login_form_checks_no_passwords(superuser: User) -> None:
    client = Client(REMOTE_ADDR="198.51.100.61")
    for _ in range(40):
        response = client.post("/admin/login/", {"username": superuser.email, "password": "guess"})
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))
    # Not even the right password signs in there: the site login does.
    client.post("/admin/login/", {"username": superuser.email, "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    assert (
        client.get("/admin/", follow=True)
        .redirect_chain[-1][0]
        .startswith(reverse("account_login"))
    )


def test_wrong_passwords_for_a_superuser_are_refused_after_five(superuser: User) -> None:
    client = Client(REMOTE_ADDR="198.51.100.62")
    login = reverse("account_login")
    for _ in range(5):
        response = client.post(login, {"login": superuser.email, "password": "guess"})
        assert response.status_code == 200
        assert b"Too many failed login attempts" not in response.content
    # The sixth try is refused before the password is looked at: even the right one.
    refused = client.post(login, {"login": superuser.email, "password": PASSWORD})
    assert b"Too many failed login attempts" in refused.content
    assert "_auth_user_id" not in client.session


def test_staff_reach_the_admin_through_the_site_login(superuser: User) -> None:
    client = Client(REMOTE_ADDR="198.51.100.63")
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("account_login"))
    signed_in = client.post(
        reverse("account_login") + "?next=/admin/",
        {"login": superuser.email, "password": PASSWORD},
    )
    assert signed_in.status_code == 302 and signed_in["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_signed_in_non_staff_are_refused_the_admin_login() -> None:
    user = User.objects.create_user("plain@example.com", PASSWORD)
    client = Client()
    client.force_login(user)
    assert client.get("/admin/login/").status_code == 403
