"""Removing a member, or leaving: the confirmation page says which API keys are revoked, and
the page and the API both revoke them (the relay side is tests/relay/test_member_removal.py).
"""

from __future__ import annotations

from django.urls import reverse

from accounts import apikeys
from accounts.models import ApiKey, AuditEvent, Membership, User
from tests.accounts.test_api import api
from tests.conftest import Cast, client_for


def issue(cast: Cast, user: User, name: str) -> ApiKey:
    membership = Membership.objects.get(team=cast.acme, user=user)
    return apikeys.create_api_key(membership, name=name).api_key


def active(*keys: ApiKey) -> list[bool]:
    return [ApiKey.objects.get(pk=key.pk).revoked_at is None for key in keys]


def test_the_confirmation_names_the_keys_that_removal_revokes(cast: Cast) -> None:
    bobs = issue(cast, cast.bob, "bob's batch job")
    alices = issue(cast, cast.alice, "alice's service")
    bob = cast.membership(cast.bob)
    url = reverse("member_remove", args=[cast.acme.pk, bob.pk])
    page = client_for(cast.adam).get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "bob@example.com" in html
    assert "bob&#x27;s batch job" in html and bobs.masked in html
    assert "alice&#x27;s service" not in html
    assert "revoked with the removal" in html
    assert active(bobs, alices) == [True, True]  # looking changes nothing

    response = client_for(cast.adam).post(url)
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=bob.pk).exists()
    assert active(bobs, alices) == [False, True]
    revoked = AuditEvent.objects.get(team=cast.acme, action="api_key.revoked")
    assert (revoked.actor, revoked.target_id) == (cast.adam, str(bobs.pk))
    assert revoked.details == {"reason": "member_removed"}
    removal = AuditEvent.objects.get(team=cast.acme, action="member.removed")
    assert removal.details["revoked_api_keys"] == [str(bobs.pk)]


def test_the_members_page_leads_to_the_confirmation(cast: Cast) -> None:
    bob = cast.membership(cast.bob)
    page = client_for(cast.adam).get(reverse("team_members", args=[cast.acme.pk]))
    assert reverse("member_remove", args=[cast.acme.pk, bob.pk]).encode() in page.content
    assert b"the API keys you created in it are revoked" in page.content


def test_a_member_without_keys_is_told_so(cast: Cast) -> None:
    vera = cast.membership(cast.vera)
    page = client_for(cast.alice).get(reverse("member_remove", args=[cast.acme.pk, vera.pk]))
    assert b"has no active API keys in this team" in page.content


def test_leaving_revokes_my_keys_and_says_so_first(cast: Cast) -> None:
    mine = issue(cast, cast.bob, "mine")
    theirs = issue(cast, cast.adam, "theirs")
    bob = cast.membership(cast.bob)
    url = reverse("member_remove", args=[cast.acme.pk, bob.pk])
    client = client_for(cast.bob)
    page = client.get(url)
    assert page.status_code == 200
    assert b"The API keys you created in this team are revoked when you leave" in page.content
    assert b"mine" in page.content and b"theirs" not in page.content
    assert client.post(url)["Location"] == reverse("dashboard")
    assert active(mine, theirs) == [False, True]
    event = AuditEvent.objects.get(team=cast.acme, action="api_key.revoked")
    assert (event.actor, event.details) == (cast.bob, {"reason": "member_left"})


def test_who_may_not_remove_is_not_shown_the_confirmation(cast: Cast) -> None:
    vera = cast.membership(cast.vera)
    response = client_for(cast.bob).get(reverse("member_remove", args=[cast.acme.pk, vera.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("team_members", args=[cast.acme.pk])
    alice = cast.membership(cast.alice)  # the last owner cannot leave
    response = client_for(cast.alice).get(reverse("member_remove", args=[cast.acme.pk, alice.pk]))
    assert response.status_code == 302


def test_the_api_revokes_too(cast: Cast) -> None:
    bobs, adams = issue(cast, cast.bob, "bob's"), issue(cast, cast.adam, "adam's")
    bob, adam = cast.membership(cast.bob), cast.membership(cast.adam)
    removed = api(cast.alice).delete(f"/api/teams/{cast.acme.pk}/members/{bob.pk}/")
    assert removed.status_code == 204
    assert active(bobs, adams) == [False, True]
    left = api(cast.adam).post(f"/api/teams/{cast.acme.pk}/leave/")
    assert left.status_code == 204
    assert active(adams) == [False]
    assert not Membership.objects.filter(pk=adam.pk).exists()
