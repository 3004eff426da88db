from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import actions
from accounts.models import Invitation, Membership, Role, User
from tests.conftest import Cast, client_for


def _invite(cast: Cast, email: str = "dora@example.com", role: str = Role.MEMBER) -> str:
    issued = actions.invite(cast.membership(cast.alice), email=email, role=role)
    return issued.url.rsplit("/invitations/", 1)[1].strip("/")


def test_invitation_is_emailed_and_accepted(
    cast: Cast, mailoutbox: list, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        token = _invite(cast, role=Role.ADMIN)
    assert len(mailoutbox) == 1
    assert token in mailoutbox[0].body
    dora = User.objects.create_user("dora@example.com", "x-sturdy-passphrase-1")
    response = client_for(dora).post(reverse("invitation_accept", args=[token]))
    assert response.status_code == 302
    membership = Membership.objects.get(team=cast.acme, user=dora)
    assert membership.role == Role.ADMIN
    assert cast.acme.audit_events.filter(action="member.joined", actor=dora).exists()


def test_invitation_cannot_be_reused(cast: Cast) -> None:
    token = _invite(cast)
    dora = User.objects.create_user("dora@example.com", "x-sturdy-passphrase-1")
    actions.accept_invitation(dora, token)
    response = client_for(dora).post(reverse("invitation_accept", args=[token]))
    assert response.status_code == 400
    assert "already been used" in response.content.decode()


def test_expired_invitation_is_refused(cast: Cast) -> None:
    token = _invite(cast)
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    dora = User.objects.create_user("dora@example.com", "x-sturdy-passphrase-1")
    response = client_for(dora).post(reverse("invitation_accept", args=[token]))
    assert response.status_code == 400
    assert "expired" in response.content.decode()
    assert not Membership.objects.filter(team=cast.acme, user=dora).exists()


def test_unknown_invitation_token_is_404_not_500(cast: Cast) -> None:
    response = client_for(cast.bob).get(reverse("invitation_accept", args=["nope"]))
    assert response.status_code == 404


def test_invitation_for_another_address_is_refused(cast: Cast) -> None:
    token = _invite(cast)
    with pytest.raises(actions.TeamRuleError, match=r"dora@example\.com"):
        actions.accept_invitation(cast.charlie, token)


def test_anonymous_visitor_is_asked_to_log_in(cast: Cast) -> None:
    token = _invite(cast)
    response = Client().get(reverse("invitation_accept", args=[token]))
    assert response.status_code == 200
    assert reverse("account_login") in response.content.decode()


def test_a_new_invitation_replaces_the_pending_one(cast: Cast) -> None:
    first = _invite(cast)
    _invite(cast)
    dora = User.objects.create_user("dora@example.com", "x-sturdy-passphrase-1")
    with pytest.raises(actions.TeamRuleError, match="not valid"):
        actions.accept_invitation(dora, first)


def test_inviting_an_existing_member_is_a_form_error(cast: Cast) -> None:
    response = client_for(cast.alice).post(
        reverse("team_members", args=[cast.acme.pk]), {"email": "bob@example.com", "role": "member"}
    )
    assert response.status_code == 200
    assert "already a member" in response.content.decode()


def test_revoked_invitation_cannot_be_accepted(cast: Cast) -> None:
    token = _invite(cast)
    invitation = Invitation.objects.get()
    response = client_for(cast.adam).post(
        reverse("invitation_revoke", args=[cast.acme.pk, invitation.pk])
    )
    assert response.status_code == 302
    dora = User.objects.create_user("dora@example.com", "x-sturdy-passphrase-1")
    with pytest.raises(actions.TeamRuleError, match="not valid"):
        actions.accept_invitation(dora, token)
