"""Redis stopped: the relay keeps its cached keys and teams (no reload from the database on
every poll), and a key revoked during the outage is refused once Redis is back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from accounts import actions, invalidation
from accounts.apikeys import revoke_api_key
from accounts.models import ApiKey, Membership, User
from scripts.services import Server, redis_server
from tests.fake_upstream.conftest import Fake
from tests.faults.conftest import Probe, World
from tests.polling import until
from tests.processes import BatonProcess
from tests.relay.conftest import make_credential, make_key, make_route

pytestmark = pytest.mark.faults


@pytest.fixture
def other_key(world: World, fake: Fake) -> str:
    """A key of another team, whose cache entries must survive the catch-up."""
    owner = User.objects.create_user("other@example.com", "x-sturdy-passphrase-1")
    team = actions.create_team(owner, name="Other team")
    credential = make_credential(team, "primary", fake.base_url + "/v1")
    make_route(team, "gpt-4o", (credential, "demo-chat", 0))
    return make_key(team)


@pytest.fixture
def baton(world: World, other_key: str, own_redis: Server) -> Iterator[BatonProcess]:
    with BatonProcess({"REDIS_URL": own_redis.redis_url}) as process:
        yield process


def checks(probe: Probe, outcome: str) -> float:
    return probe.metric("baton_cache_version_checks_total", outcome=outcome)


def next_check(probe: Probe, outcome: str) -> None:
    """Wait until the relay has polled the cache version (once more) with that outcome."""
    seen = checks(probe, outcome)
    until(lambda: checks(probe, outcome) > seen, f"a version check: {outcome}")


def loads(probe: Probe) -> float:
    return probe.metric("baton_cache_loads_total")


def test_the_cache_outlives_a_redis_outage_and_catches_up_after_it(
    world: World, other_key: str, own_redis: Server, workdir: Path, baton: BatonProcess
) -> None:
    probe = Probe(baton.base_url)
    next_check(probe, "ok")  # the relay has read the version: nothing evicts what it loads now
    assert probe.chat(world.key).status_code == 200
    assert probe.chat(other_key).status_code == 200
    before = loads(probe)

    own_redis.stop()
    for _ in range(3):  # a few polls fail between requests, and nothing is reloaded
        next_check(probe, "failed")
        assert probe.chat(world.key).status_code == 200
        assert probe.chat(other_key).status_code == 200
    assert loads(probe) == before

    # Revoked while Redis is away: the change cannot be published yet, and the relay, which
    # cannot see it either, still serves the key from memory (the documented bound).
    membership = Membership.objects.get(team=world.team, user=world.owner)
    revoke_api_key(membership, ApiKey.objects.get(team=world.team))
    assert invalidation.unpublished() == {str(world.team.pk)}
    assert probe.chat(world.key).status_code == 200

    with redis_server(port=own_redis.port, directory=workdir / "redis", appendonly=True):
        until(lambda: not invalidation.unpublished(), "the revocation published")
        until(lambda: probe.chat(world.key).status_code == 401, "the revoked key refused")
        assert probe.chat(other_key).status_code == 200
        # The revoked key was read again from the database; the other team's was not.
        assert loads(probe) == before + 1
    assert set(probe.statuses) <= {200, 401}, probe.statuses
