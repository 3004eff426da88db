"""The usage consumer (``manage.py consume_usage``) through a PostgreSQL restart: it writes
again once the database is back, without being restarted itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis as redis_lib
from django.utils import timezone

from accounts import actions
from accounts.models import User
from billing.events import STREAM_KEY
from scripts.services import Postgres, Server, copy_database
from tests.faults.conftest import own_redis, workdir
from tests.metering.conftest import event
from tests.polling import until
from tests.processes import Program, baton_environment, consumer_command, subprocess_database_url

pytestmark = pytest.mark.faults

__all__ = ["own_redis", "workdir"]


@pytest.fixture
def team_id(transactional_db: None) -> str:
    owner = User.objects.create_user("consumer@example.com", "x-sturdy-passphrase-1")
    return str(actions.create_team(owner, name="Consumer team").pk)


@pytest.fixture
def database(team_id: str, workdir: Path) -> Iterator[Postgres]:
    cluster = Postgres(workdir)
    try:
        cluster.start()
        cluster.create_database()
        copy_database(subprocess_database_url(), cluster)
        yield cluster
    finally:
        cluster.stop()


def ledger_size(database: Postgres, team_id: str) -> int | None:
    try:
        with psycopg.connect(database.url, connect_timeout=2) as connection:
            row = connection.execute(
                "SELECT count(*) FROM billing_usagerecord WHERE team_id = %s", (team_id,)
            ).fetchone()
    except psycopg.OperationalError:
        return None
    assert row is not None
    return int(row[0])


def test_the_consumer_writes_again_after_a_database_restart(
    team_id: str, database: Postgres, own_redis: Server
) -> None:
    env = baton_environment(
        {
            "DATABASE_URL": database.url,
            "REDIS_URL": own_redis.redis_url,
            "BATON_USAGE_CLAIM_IDLE_SECONDS": "1",
        }
    )
    consumer = Program(consumer_command("restart-consumer"), env)
    client: Any = redis_lib.Redis.from_url(own_redis.redis_url)

    def send(count: int) -> None:
        for _ in range(count):
            item = event(team_id, None, timezone.now())
            client.xadd(STREAM_KEY, {"event": item.to_json()})

    try:
        send(3)
        until(lambda: ledger_size(database, team_id) == 3, "the first events written", 60)
        database.stop()
        send(3)
        until(
            lambda: client.xpending(STREAM_KEY, "baton-ledger")["pending"] > 0,
            "events read while the database is away",
            30,
        )
        database.start()
        send(3)
        until(
            lambda: ledger_size(database, team_id) == 9,
            "every event written once the database is back",
            60,
        )
        assert consumer.alive()
    finally:
        client.close()
        consumer.stop()
