"""The fault suite: Baton as a real process (tests/processes.py) in front of the fake upstream,
on a PostgreSQL and a Redis of its own that a test stops and starts again. Every test here is
marked ``faults``. test_under_load.py runs the whole production stack (tests/faults/stack.py)
under a load and every fault at once; the other modules take one dependency away at a time.

``Probe`` sends requests and reads the relay's metrics; it keeps every status it saw, so a test
can say that none was a 500.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from accounts import actions, invalidation
from accounts.models import Team, User
from relay.catalog_seed import seed
from relay.models import Provider
from scripts.services import Server, redis_server
from tests.ops.test_metrics import scrape, total
from tests.relay.conftest import fake, fake_upstream, make_credential, make_key, make_route

__all__ = ["fake", "fake_upstream"]

# Far below the connection pool's 30 s wait (psycopg_pool's default, which Baton keeps): a
# request that waited for the pool fails the test with a timeout.
CLIENT_TIMEOUT = 10.0
MESSAGES: Any = [{"role": "user", "content": "still there?"}]


@dataclass
class World:
    team: Team
    owner: User
    key: str


@pytest.fixture
def world(transactional_db: None, fake: Any) -> World:
    seed(Provider)
    owner = User.objects.create_user("faults@example.com", "x-sturdy-passphrase-1")
    team = actions.create_team(owner, name="Fault team")
    credential = make_credential(team, "primary", fake.base_url + "/v1")
    make_route(team, "gpt-4o", (credential, "demo-chat", 0))
    return World(team=team, owner=owner, key=make_key(team))


@pytest.fixture
def workdir() -> Iterator[Path]:
    """Outside pytest's own temporary directory, which the postgres user cannot enter."""
    path = Path(tempfile.mkdtemp(prefix="baton-faults-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def own_redis(workdir: Path, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A Redis with an append-only file (as deployed) that survives a stop, which this test
    process publishes its cache invalidations to, as the control plane would."""
    directory = workdir / "redis"
    directory.mkdir()
    with redis_server(directory=directory, appendonly=True) as server:
        settings.REDIS_URL = server.redis_url
        monkeypatch.setattr(invalidation, "_sync_client", None)
        yield server
        client = invalidation._sync_client
        if client is not None:
            client.close()


@dataclass
class Probe:
    base_url: str
    statuses: list[int] = field(default_factory=list)

    def chat(self, key: str) -> httpx.Response:
        response = httpx.post(
            self.base_url + "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": MESSAGES},
            headers={"authorization": f"Bearer {key}"},
            timeout=CLIENT_TIMEOUT,
        )
        self.statuses.append(response.status_code)
        return response

    def messages(self, key: str) -> httpx.Response:
        response = httpx.post(
            self.base_url + "/v1/messages",
            json={"model": "gpt-4o", "max_tokens": 16, "messages": MESSAGES},
            headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
            timeout=CLIENT_TIMEOUT,
        )
        self.statuses.append(response.status_code)
        return response

    def metric(self, name: str, **labels: str) -> float:
        return total(scrape(self.base_url), name, **labels)
