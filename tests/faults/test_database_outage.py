"""PostgreSQL stopped for longer than the relay cache's reload interval: the keys and teams
Baton already knows keep being served, an invalidated one is refused, a lookup that needs the
database fails fast with a 503 in the client's dialect, and nothing is a 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from accounts import invalidation, tokens
from accounts.models import ApiKey
from scripts.services import Postgres, Server, copy_database
from tests.faults.conftest import Probe, World
from tests.polling import until
from tests.processes import BatonProcess, subprocess_database_url

pytestmark = pytest.mark.faults


@pytest.fixture
def database(world: World, workdir: Path) -> Iterator[Postgres]:
    """A PostgreSQL of Baton's own, holding a copy of the test database (the world in it)."""
    cluster = Postgres(workdir)
    try:
        cluster.start()
        cluster.create_database()
        copy_database(subprocess_database_url(), cluster)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def baton(database: Postgres, own_redis: Server) -> Iterator[BatonProcess]:
    env = {
        "DATABASE_URL": database.url,
        "REDIS_URL": own_redis.redis_url,
        "BATON_CACHE_RELOAD_SECONDS": "0.5",
    }
    with BatonProcess(env) as process:
        yield process


def unknown_key() -> str:
    return tokens.issue(ApiKey.PREFIX).token  # well formed, never stored


def test_a_database_outage_is_served_from_memory_and_fails_fast_beyond_it(
    world: World, database: Postgres, baton: BatonProcess
) -> None:
    probe = Probe(baton.base_url)
    assert probe.chat(world.key).status_code == 200
    assert probe.chat(unknown_key()).status_code == 401
    database.stop()

    def served_stale() -> bool:
        # Every answer while the entries pass their reload time is a success from memory.
        assert probe.chat(world.key).status_code == 200
        return (
            probe.metric("baton_cache_stale_served_total", kind="key") >= 2
            and probe.metric("baton_cache_stale_served_total", kind="team") >= 2
        )

    until(served_stale, "the key and its team served past their reload time", timeout=30)
    assert probe.metric("baton_cache_loads_total", outcome="unavailable") >= 1
    assert probe.messages(world.key).status_code == 200

    # Nothing to fall back on: a 503 at once (not the pool's wait), in each client's dialect.
    chat = probe.chat(unknown_key())
    assert chat.status_code == 503, chat.text
    assert chat.json()["error"]["code"] == "database_unavailable"
    assert chat.headers["retry-after"] == "1"
    messages = probe.messages(unknown_key())
    assert messages.status_code == 503, messages.text
    body = messages.json()
    assert body["type"] == "error" and body["error"]["type"] in {"api_error", "overloaded_error"}
    assert "database" in body["error"]["message"]
    # A string that cannot be a key is refused without the database.
    assert probe.chat("sk-baton-short").status_code == 401

    # A change to the team (made where the database still answers) reaches the relay through
    # Redis: the team's key and settings are evicted, and refused since they cannot be reloaded.
    invalidation.bump_team_now(str(world.team.pk))
    until(lambda: probe.chat(world.key).status_code == 503, "the evicted key refused")
    assert probe.chat(world.key).json()["error"]["code"] == "database_unavailable"

    database.start()
    until(lambda: probe.chat(world.key).status_code == 200, "the key reloaded")
    assert probe.chat(unknown_key()).status_code == 401
    assert set(probe.statuses) <= {200, 401, 503}, probe.statuses


def test_the_pool_waits_far_longer_than_the_test_client(settings: Any) -> None:
    """The premise of the fast-failure assertions: the pool waits far longer than a client."""
    from tests.faults.conftest import CLIENT_TIMEOUT

    pool = settings.DATABASES["default"]["OPTIONS"]["pool"]
    assert pool.get("timeout", 30.0) >= 3 * CLIENT_TIMEOUT
    assert settings.BATON_CACHE_LOAD_TIMEOUT < CLIENT_TIMEOUT
