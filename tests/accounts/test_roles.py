from __future__ import annotations

import pytest
from django.urls import reverse

from accounts import actions
from accounts.models import Membership, Role
from tests.conftest import Cast, client_for


def test_viewer_cannot_invite(cast: Cast) -> None:
    response = client_for(cast.vera).post(
        reverse("team_members", args=[cast.acme.pk]), {"email": "x@example.com", "role": "member"}
    )
    assert response.status_code == 403
    assert not cast.acme.invitations.exists()


def test_member_cannot_invite(cast: Cast) -> None:
    with pytest.raises(actions.TeamRuleError):
        actions.invite(cast.membership(cast.bob), email="x@example.com", role=Role.MEMBER)


def test_member_cannot_change_roles(cast: Cast) -> None:
    vera = cast.membership(cast.vera)
    response = client_for(cast.bob).post(
        reverse("member_role", args=[cast.acme.pk, vera.pk]), {"role": "admin"}
    )
    assert response.status_code == 302
    vera.refresh_from_db()
    assert vera.role == Role.VIEWER


def test_admin_changes_roles_and_it_is_audited(cast: Cast) -> None:
    bob = cast.membership(cast.bob)
    client_for(cast.adam).post(
        reverse("member_role", args=[cast.acme.pk, bob.pk]), {"role": "viewer"}
    )
    bob.refresh_from_db()
    assert bob.role == Role.VIEWER
    event = cast.acme.audit_events.get(action="member.role_changed")
    assert event.actor == cast.adam
    assert event.details == {"old": "member", "new": "viewer"}
    assert event.ip_address == "127.0.0.1"


def test_admin_cannot_make_an_owner(cast: Cast) -> None:
    with pytest.raises(actions.TeamRuleError, match="owner"):
        actions.change_role(cast.membership(cast.adam), cast.membership(cast.bob), Role.OWNER)


def test_admin_cannot_demote_an_owner(cast: Cast) -> None:
    with pytest.raises(actions.TeamRuleError):
        actions.change_role(cast.membership(cast.adam), cast.membership(cast.alice), Role.MEMBER)


def test_last_owner_cannot_leave(cast: Cast) -> None:
    response = client_for(cast.alice).post(
        reverse("member_remove", args=[cast.acme.pk, cast.membership(cast.alice).pk])
    )
    assert response.status_code == 302
    assert Membership.objects.filter(team=cast.acme, user=cast.alice, role=Role.OWNER).exists()


def test_last_owner_cannot_be_demoted(cast: Cast) -> None:
    alice = cast.membership(cast.alice)
    with pytest.raises(actions.TeamRuleError, match="at least one owner"):
        actions.change_role(alice, alice, Role.ADMIN)


def test_owner_can_leave_once_another_owner_exists(cast: Cast) -> None:
    alice = cast.membership(cast.alice)
    actions.change_role(alice, cast.membership(cast.adam), Role.OWNER)
    actions.leave_team(alice)
    assert not Membership.objects.filter(team=cast.acme, user=cast.alice).exists()


def test_member_can_leave(cast: Cast) -> None:
    bob = cast.membership(cast.bob)
    client_for(cast.bob).post(reverse("member_remove", args=[cast.acme.pk, bob.pk]))
    assert not Membership.objects.filter(pk=bob.pk).exists()
    assert cast.acme.audit_events.filter(action="member.left").exists()


def test_member_cannot_remove_others(cast: Cast) -> None:
    vera = cast.membership(cast.vera)
    client_for(cast.bob).post(reverse("member_remove", args=[cast.acme.pk, vera.pk]))
    assert Membership.objects.filter(pk=vera.pk).exists()


def test_admin_removes_a_member(cast: Cast) -> None:
    bob = cast.membership(cast.bob)
    client_for(cast.adam).post(reverse("member_remove", args=[cast.acme.pk, bob.pk]))
    assert not Membership.objects.filter(pk=bob.pk).exists()


def test_viewer_cannot_see_the_audit_log(cast: Cast) -> None:
    assert client_for(cast.vera).get(reverse("team_audit", args=[cast.acme.pk])).status_code == 403
    assert client_for(cast.adam).get(reverse("team_audit", args=[cast.acme.pk])).status_code == 200


def test_overlong_team_name_is_a_form_error(cast: Cast) -> None:
    response = client_for(cast.alice).post(reverse("team_create"), {"name": "x" * 300})
    assert response.status_code == 200
    assert response.context["form"].errors["name"]


def test_user_creates_a_team_and_switches_to_it(cast: Cast) -> None:
    client = client_for(cast.bob)
    response = client.post(reverse("team_create"), {"name": "Bob's lab"})
    team = Membership.objects.get(user=cast.bob, team__name="Bob's lab").team
    assert response["Location"] == reverse("team_overview", args=[team.pk])
    switched = client.post(reverse("team_switch"), {"team_id": str(cast.acme.pk)})
    assert switched["Location"] == reverse("team_overview", args=[cast.acme.pk])
    assert client.get(reverse("dashboard"))["Location"] == reverse(
        "team_overview", args=[cast.acme.pk]
    )


def test_switching_to_a_foreign_team_is_404(cast: Cast) -> None:
    response = client_for(cast.bob).post(reverse("team_switch"), {"team_id": str(cast.globex.pk)})
    assert response.status_code == 404
    response = client_for(cast.bob).post(reverse("team_switch"), {"team_id": "not-a-uuid"})
    assert response.status_code == 404
