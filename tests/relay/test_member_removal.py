"""A member removed from a team (or leaving it) loses /v1 access through the keys they created
there, in a separately running Baton whose caches are warm; everyone else's keys keep working.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from accounts import actions, apikeys
from accounts.models import ApiKey, AuditEvent, Membership, Role, Team, User
from tests.processes import BatonProcess


def status(base_url: str, key: str) -> httpx.Response:
    return httpx.get(base_url + "/v1/models", headers={"authorization": f"Bearer {key}"})


def wait_until_refused(base_url: str, key: str) -> httpx.Response:
    """Poll until the key is refused; the bound is generous, the propagation itself is
    BATON_CACHE_CHECK_SECONDS (test_key_resolution measures it)."""
    deadline = time.monotonic() + 10
    while True:
        response = status(base_url, key)
        if response.status_code != 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.02)


def join(team: Team, email: str) -> Membership:
    user = User.objects.create_user(email, "x-sturdy-passphrase-1")
    return Membership.objects.create(team=team, user=user, role=Role.MEMBER)


def test_removed_and_leaving_members_keys_stop_working(
    transactional_db: None, redis_client: Any
) -> None:
    owner = User.objects.create_user("crew-owner@example.com", "x-sturdy-passphrase-1")
    team = actions.create_team(owner, name="Crew")
    owning = Membership.objects.get(team=team, user=owner)
    removed, leaver = join(team, "removed@example.com"), join(team, "leaver@example.com")
    owners_key = apikeys.create_api_key(owning, name="owner's").key
    removed_keys = [apikeys.create_api_key(removed, name=f"removed {i}").key for i in (1, 2)]
    leavers_key = apikeys.create_api_key(leaver, name="leaver's").key
    # The removed member's key in their own personal team is not this team's business.
    elsewhere = Membership.objects.get(user=removed.user, team__is_personal=True)
    personal_key = apikeys.create_api_key(elsewhere, name="personal").key
    everyone = [owners_key, *removed_keys, leavers_key, personal_key]

    with BatonProcess(env={"BATON_CACHE_CHECK_SECONDS": "0.5"}) as baton:
        for key in everyone:  # every key warm in the relay's cache
            assert status(baton.base_url, key).status_code == 200

        actions.remove_member(owning, removed)
        for key in removed_keys:
            refused = wait_until_refused(baton.base_url, key)
            assert refused.status_code == 401
            assert refused.json()["error"]["message"] == "This API key has been revoked."
        for key in (owners_key, leavers_key, personal_key):
            assert status(baton.base_url, key).status_code == 200

        actions.leave_team(leaver)
        assert wait_until_refused(baton.base_url, leavers_key).status_code == 401
        for key in (owners_key, personal_key):
            assert status(baton.base_url, key).status_code == 200

    revoked = {
        event.target_id: event
        for event in AuditEvent.objects.filter(team=team, action="api_key.revoked")
    }
    assert len(revoked) == 3
    keys = {key.name: key for key in ApiKey.objects.filter(team=team)}
    for name in ("removed 1", "removed 2"):
        event = revoked[str(keys[name].pk)]
        assert (event.actor, event.details) == (owner, {"reason": "member_removed"})
        assert keys[name].revoked_by == owner
    event = revoked[str(keys["leaver's"].pk)]
    assert (event.actor, event.details) == (leaver.user, {"reason": "member_left"})
    removal = AuditEvent.objects.get(team=team, action="member.removed")
    assert sorted(removal.details["revoked_api_keys"]) == sorted(
        str(keys[name].pk) for name in ("removed 1", "removed 2")
    )
    left = AuditEvent.objects.get(team=team, action="member.left")
    assert left.details["revoked_api_keys"] == [str(keys["leaver's"].pk)]
    assert keys["owner's"].revoked_at is None
    assert ApiKey.objects.get(team=elsewhere.team).revoked_at is None
