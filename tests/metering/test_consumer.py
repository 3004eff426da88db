"""The Redis stream consumer: every event into the ledger exactly once, whatever
dies on the way (the consumer, its database write, Redis itself)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from typing import Any

import pytest
import redis as redis_lib
from django.utils import timezone

from billing import consumer as consumer_module
from billing.consumer import DEAD_LETTERS, GROUP, Consumer, consume
from billing.events import STREAM_KEY, UsageEvent
from billing.models import UsageRecord
from gateway.metering import RedisStreamSink
from scripts.services import Server, free_port, redis_server
from tests.metering.conftest import Metered, event


def events(metered: Metered, count: int) -> list[UsageEvent]:
    acme = metered.cast.acme
    key = metered.keys[str(acme.pk)][0]
    return [event(acme.pk, key, timezone.now()) for _ in range(count)]


def publish(client: Any, batch: list[UsageEvent]) -> None:
    """What the relay's sink does."""
    for item in batch:
        client.xadd(STREAM_KEY, {"event": item.to_json()})


def ledger_ids() -> list[str]:
    return sorted(UsageRecord.objects.values_list("request_id", flat=True))


def test_events_reach_the_ledger_once_and_leave_the_stream(
    metered: Metered, redis_client: Any
) -> None:
    batch = events(metered, 1200)
    publish(redis_client, batch)
    result = Consumer(redis_client, name="a", batch=500).drain(seconds=30)
    assert (result.read, result.written, result.batches) == (1200, 1200, 3)
    assert ledger_ids() == sorted(e.request_id for e in batch)
    assert redis_client.xlen(STREAM_KEY) == 0
    assert redis_client.xpending(STREAM_KEY, GROUP)["pending"] == 0

    publish(redis_client, batch[:10])  # a replay: the relay retried a flush
    Consumer(redis_client, name="a").drain(seconds=30)
    assert UsageRecord.objects.count() == 1200


def test_entries_of_a_consumer_that_died_after_reading_are_claimed(
    metered: Metered, redis_client: Any
) -> None:
    batch = events(metered, 30)
    publish(redis_client, batch)
    dying = Consumer(redis_client, name="dying", batch=20)
    dying.ensure_group()
    assert len(dying.read()) == 20  # read, then killed before writing anything
    assert UsageRecord.objects.count() == 0

    patient = Consumer(redis_client, name="patient", claim_idle_ms=60_000)
    patient.drain(seconds=30)
    assert UsageRecord.objects.count() == 10  # the dead one's entries are not idle long enough

    successor = Consumer(redis_client, name="successor", claim_idle_ms=0)
    result = successor.drain(seconds=30)
    assert result.claimed == 20
    assert ledger_ids() == sorted(e.request_id for e in batch)
    assert redis_client.xpending(STREAM_KEY, GROUP)["pending"] == 0


def test_a_consumer_killed_between_commit_and_ack_is_not_counted_twice(
    metered: Metered, redis_client: Any
) -> None:
    batch = events(metered, 25)
    publish(redis_client, batch)

    def killed(ids: list[str]) -> None:
        raise SystemExit("killed after the commit, before XACK")

    with pytest.raises(SystemExit):
        Consumer(redis_client, name="dying", before_ack=killed).drain(seconds=30)
    assert UsageRecord.objects.count() == 25
    assert redis_client.xpending(STREAM_KEY, GROUP)["pending"] == 25

    result = Consumer(redis_client, name="successor", claim_idle_ms=0).drain(seconds=30)
    assert result.claimed == 25
    assert UsageRecord.objects.count() == 25
    assert redis_client.xlen(STREAM_KEY) == 0


def test_a_failed_database_write_acknowledges_nothing(
    metered: Metered, redis_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(redis_client, events(metered, 5))

    def down(batch: Any) -> int:
        raise ConnectionError("database unavailable")

    monkeypatch.setattr(consumer_module, "ingest", down)
    with pytest.raises(ConnectionError):
        Consumer(redis_client, name="a").drain(seconds=30)
    assert redis_client.xpending(STREAM_KEY, GROUP)["pending"] == 5
    monkeypatch.undo()
    Consumer(redis_client, name="b", claim_idle_ms=0).drain(seconds=30)
    assert UsageRecord.objects.count() == 5


def test_entries_that_are_not_usage_events_are_set_aside(
    metered: Metered, redis_client: Any
) -> None:
    good = events(metered, 2)
    publish(redis_client, good[:1])
    redis_client.xadd(STREAM_KEY, {"event": b"{not json"})
    redis_client.xadd(STREAM_KEY, {"something": b"else"})
    publish(redis_client, good[1:])
    result = Consumer(redis_client, name="a").drain(seconds=30)
    assert (result.written, result.dead) == (2, 2)
    assert redis_client.xlen(DEAD_LETTERS) == 2
    assert redis_client.xlen(STREAM_KEY) == 0


def test_a_scheduled_run_leaves_a_leased_stream_alone(metered: Metered, redis_client: Any) -> None:
    publish(redis_client, events(metered, 3))
    holder = Consumer(redis_client, name="dedicated")
    holder.ensure_group()
    holder.balance(force=True)
    assert holder.held == [STREAM_KEY]
    assert consume(redis_client, seconds=5) is None  # the one stream is the dedicated one's
    assert UsageRecord.objects.count() == 0
    holder.leave()
    result = consume(redis_client, seconds=5)
    assert result is not None and result.written == 3


def aof_redis(directory: str, port: int) -> contextlib.AbstractContextManager[Server]:
    """A Redis that writes every command to its append-only file before it answers."""
    return redis_server("--appendfsync", "always", port=port, directory=directory, appendonly=True)


def test_a_redis_crash_with_aof_loses_no_event(metered: Metered) -> None:
    batch = events(metered, 40)
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o700)
        with aof_redis(directory, port) as server:
            client = redis_lib.Redis(port=port)

            async def relay_flush() -> None:
                import redis.asyncio as aioredis

                connection = aioredis.Redis(port=port)
                await RedisStreamSink(connection).write(batch)
                await connection.aclose()

            asyncio.run(relay_flush())
            reader = Consumer(client, name="before-crash", batch=15)
            reader.ensure_group()
            assert len(reader.read()) == 15  # read, never acknowledged
            client.close()
            server.kill()  # SIGKILL: no shutdown, no save
        with aof_redis(directory, port):
            client = redis_lib.Redis(port=port)
            assert client.xlen(STREAM_KEY) == 40
            assert client.xpending(STREAM_KEY, GROUP)["pending"] == 15
            deadline = time.monotonic() + 10
            while UsageRecord.objects.count() < 40 and time.monotonic() < deadline:
                Consumer(client, name="after-crash", claim_idle_ms=0).drain(seconds=10)
            client.close()
    assert ledger_ids() == sorted(e.request_id for e in batch)


def test_a_long_running_consumer_survives_a_flushed_redis(
    metered: Metered, redis_client: Any
) -> None:
    consumer = Consumer(redis_client, name="long-running")
    publish(redis_client, events(metered, 2))
    consumer.drain(seconds=5)
    redis_client.flushdb()  # the stream and its group are gone
    publish(redis_client, events(metered, 3))
    consumer.drain(seconds=5)
    assert UsageRecord.objects.count() == 5
