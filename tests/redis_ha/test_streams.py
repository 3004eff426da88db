"""The usage streams: a team's events in one of N streams, consumers sharing the streams by
leases, and the relay's WAIT for a replica on each batch."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from accounts import actions
from accounts.models import Team, User
from billing.consumer import GROUP, Consumer
from billing.events import STREAM_KEY, UsageEvent, shard_of, stream_for, stream_keys
from billing.models import UsageRecord
from config.redis_clients import async_client, sync_client
from gateway import metering
from gateway.metering import RedisStreamSink
from relay.catalog_seed import seed
from relay.models import Provider
from scripts.services import FAST_SYNC, Cluster, SentinelGroup, redis_cli, redis_server
from tests.metering.conftest import event, prices
from tests.polling import until
from tests.redis_ha.conftest import flush

STREAMS = 4


def test_a_teams_events_all_go_to_one_stream_and_teams_spread_over_all() -> None:
    teams = [str(uuid.uuid4()) for _ in range(2000)]
    counts = [0] * 8
    for team in teams:
        counts[shard_of(team, 8)] += 1
        assert stream_for(team, 8) == stream_keys(8)[shard_of(team, 8)]
    assert min(counts) > 2000 / 8 * 0.7 and max(counts) < 2000 / 8 * 1.3
    assert stream_for(teams[0], 1) == STREAM_KEY == "baton:usage"  # one stream: its old name
    assert stream_keys(3) == ["baton:usage", "baton:usage:1", "baton:usage:2"]


@pytest.fixture
def teams(transactional_db: None) -> list[Team]:
    """Teams whose events fill every one of the four streams."""
    seed(Provider)
    prices()
    owner = User.objects.create_user("streams@example.com", "x-sturdy-passphrase-1")
    made: list[Team] = []
    covered: set[int] = set()
    while len(covered) < STREAMS or len(made) < 8:
        team = actions.create_team(owner, name=f"Team {len(made)}")
        made.append(team)
        covered.add(shard_of(str(team.pk), STREAMS))
    return made


def usage(teams: list[Team], count: int) -> list[UsageEvent]:
    return [event(teams[i % len(teams)].pk, None, timezone.now()) for i in range(count)]


def write(url: str, batch: list[UsageEvent], **options: Any) -> RedisStreamSink:
    async def run() -> RedisStreamSink:
        redis = async_client(url, socket_timeout=5)
        sink = RedisStreamSink(redis, url=url, streams=STREAMS, **options)
        try:
            await sink.write(batch)
        finally:
            await sink.close()
            await redis.aclose()
        return sink

    return asyncio.run(run())


def ledger_ids() -> list[str]:
    return sorted(UsageRecord.objects.values_list("request_id", flat=True))


@pytest.fixture
def streams_setting(settings: Any) -> Iterator[None]:
    settings.BATON_USAGE_STREAMS = STREAMS
    yield


def test_consumers_share_the_streams_and_ingest_each_event_once(
    teams: list[Team], streams_setting: None, settings: Any
) -> None:
    url = settings.REDIS_URL
    flush(url)
    client = sync_client(url)
    batch = usage(teams, 400)
    write(url, batch)
    for index, key in enumerate(stream_keys(STREAMS)):
        entries = client.xrange(key)
        assert entries
        for _, fields in entries:  # each event in its team's stream
            assert shard_of(UsageEvent.from_json(fields[b"event"]).team_id, STREAMS) == index

    first, second = Consumer(client, name="first"), Consumer(client, name="second")
    for consumer in (first, second, first, second):  # join, then rebalance to a fair share
        consumer.ensure_group()
        consumer.balance(force=True)
    assert len(first.held) == len(second.held) == STREAMS // 2
    assert sorted(first.held + second.held) == sorted(stream_keys(STREAMS))

    errors: list[BaseException] = []

    def run(consumer: Consumer) -> None:
        try:
            while consumer.run_once().batches:
                pass
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()  # this thread's own

    threads = [threading.Thread(target=run, args=(c,)) for c in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert ledger_ids() == sorted(e.request_id for e in batch)
    assert sum(client.xlen(key) for key in stream_keys(STREAMS)) == 0
    first.leave()
    second.leave()
    client.close()


def test_a_dead_consumers_streams_and_unacknowledged_entries_are_taken_over(
    teams: list[Team], streams_setting: None, settings: Any
) -> None:
    url = settings.REDIS_URL
    flush(url)
    client = sync_client(url)
    batch = usage(teams, 120)
    write(url, batch)
    dead = Consumer(client, name="dead", lease_ms=1000)
    dead.ensure_group()
    dead.balance(force=True)
    assert len(dead.held) == STREAMS
    taken = dead.read()  # read, then it dies: never written, never acknowledged
    assert taken

    alive = Consumer(client, name="alive", lease_ms=1000, claim_idle_ms=0)
    alive.ensure_group()
    alive.balance(force=True)
    assert alive.held == []  # every stream is still the dead one's

    def takes_all() -> bool:
        alive.balance(force=True)
        return len(alive.held) == STREAMS

    until(takes_all, "the dead consumer's leases to expire", timeout=10)
    total = 0
    claimed = 0
    while True:
        step = alive.run_once()
        total += step.written
        claimed += step.claimed
        if not step.batches:
            break
    assert claimed == len(taken)
    assert ledger_ids() == sorted(e.request_id for e in batch)
    assert all(client.xpending(k, GROUP)["pending"] == 0 for k in stream_keys(STREAMS))
    alive.leave()
    client.close()


def test_on_a_cluster_the_sink_writes_each_primarys_part_and_the_consumer_reads_it(
    teams: list[Team], streams_setting: None, cluster: Cluster
) -> None:
    flush(cluster.url)
    batch = usage(teams, 300)
    sink = write(cluster.url, batch, replicas=1, wait_ms=2000)
    assert sink.unreplicated == 0
    client = sync_client(cluster.url)
    assert sum(client.xlen(key) for key in stream_keys(STREAMS)) == 300
    consumer = Consumer(client, name="on-the-cluster")
    result = consumer.drain(seconds=60)
    assert result.written == 300
    assert ledger_ids() == sorted(e.request_id for e in batch)
    client.close()


def replicas_of(group: SentinelGroup) -> list[int]:
    primary = group.primary_port()
    return [s.port for s in group.servers if s.port != primary and s.proc.poll() is None]


def test_a_written_batch_is_on_a_replica_already(
    teams: list[Team], streams_setting: None, sentinel: SentinelGroup
) -> None:
    flush(sentinel.url)
    batch = usage(teams, 200)
    sink = write(sentinel.url, batch, replicas=1, wait_ms=2000)
    assert sink.unreplicated == 0
    # No waiting: WAIT returned only once a replica had acknowledged every XADD.
    on_replicas = [
        sum(int(redis_cli(port, "xlen", key).strip()) for key in stream_keys(STREAMS))
        for port in replicas_of(sentinel)
    ]
    assert max(on_replicas) == 200


def test_a_batch_no_replica_acknowledged_is_counted_as_the_loss_window(
    teams: list[Team], streams_setting: None, sentinel: SentinelGroup
) -> None:
    flush(sentinel.url)
    frozen = [s for s in sentinel.servers if s.port in replicas_of(sentinel)]
    before = metering.UNREPLICATED._value.get()
    for server in frozen:
        os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        sink = write(sentinel.url, usage(teams, 50), replicas=1, wait_ms=200)
    finally:
        for server in frozen:
            os.kill(server.proc.pid, signal.SIGCONT)
    assert sink.unreplicated == 50
    assert metering.UNREPLICATED._value.get() - before == 50
    # Replicas back: the next batch is acknowledged again.
    assert write(sentinel.url, usage(teams, 5), replicas=1, wait_ms=5000).unreplicated == 0


def test_a_batch_half_written_when_a_primary_died_keeps_only_the_rest(
    teams: list[Team], fresh_cluster: Cluster
) -> None:
    """The parts for live primaries are written; the dead one's part is kept to be retried
    (not the whole batch: that would write the others twice)."""
    url = fresh_cluster.url
    batch = usage(teams, 100)

    async def run() -> list[UsageEvent]:
        redis = async_client(url, socket_timeout=2)
        sink = RedisStreamSink(redis, url=url, streams=STREAMS, replicas=1, wait_ms=1000)
        try:
            await redis.initialize()
            victim = redis.get_node_from_key(stream_for(batch[0].team_id, STREAMS)).port
            next(n for n in fresh_cluster.nodes if n.port == victim).kill()
            with pytest.raises(metering.PartialWrite) as partial:
                await sink.write(batch)
            return partial.value.remaining
        finally:
            await sink.close()
            await redis.aclose()

    remaining = asyncio.run(run())
    lost_streams = {stream_for(e.team_id, STREAMS) for e in remaining}
    assert remaining and len(remaining) < len(batch)
    assert remaining == [
        e for e in batch if stream_for(e.team_id, STREAMS) in lost_streams
    ]  # exactly the dead primary's part, in order
    live = next(n for n in fresh_cluster.nodes if n.proc.poll() is None)
    written = sum(
        int(redis_cli(live.port, "-c", "xlen", key).strip())
        for key in stream_keys(STREAMS)
        if key not in lost_streams
    )
    assert written == len(batch) - len(remaining)


def test_what_a_primary_lost_in_a_failover_is_written_again(teams: list[Team]) -> None:
    """The primary the sink writes to loses a batch that a replica had acknowledged, and comes
    back with a new replication id (as a replica promoted in a failover does): the sink sees
    the new id on its next batch and writes the lost one again."""
    with (
        redis_server(*FAST_SYNC) as primary,
        redis_server("--replicaof", "127.0.0.1", str(primary.port), *FAST_SYNC) as replica,
        redis_server(*FAST_SYNC) as empty,
    ):
        until(lambda: in_sync(replica.port), "the replica's first sync")
        url = primary.redis_url
        lost, later = usage(teams, 30), usage(teams, 20)

        async def run() -> RedisStreamSink:
            redis = async_client(url, socket_timeout=5)
            sink = RedisStreamSink(redis, url=url, streams=STREAMS, replicas=1, wait_ms=2000)
            try:
                sink.pending = list(lost)
                await sink.flush()
                assert sink.unreplicated == 0  # the replica acknowledged it
                # The primary loses it: it syncs from an empty server, then is promoted back
                # (a new replication id), as a replica promoted without it would be.
                admin = sync_client(url)
                admin.execute_command("REPLICAOF", "127.0.0.1", str(empty.port))
                until(lambda: in_sync(primary.port), "the primary's sync from the empty server")
                admin.execute_command("REPLICAOF", "NO", "ONE")
                admin.close()
                sink.pending = list(later)
                await sink.flush()  # sees the new id: the lost batch is pending again
                await sink.flush()
                return sink
            finally:
                await redis.aclose()

        sink = asyncio.run(run())
        client = sync_client(url)
        stored = {
            UsageEvent.from_json(fields[b"event"]).request_id
            for key in stream_keys(STREAMS)
            for _, fields in client.xrange(key)
        }
        client.close()
    assert stored == {e.request_id for e in lost + later}
    assert sink.resent == len(lost)


def in_sync(port: int) -> bool:
    return "master_link_status:up" in redis_cli(port, "info", "replication")


def test_what_a_deposed_primary_took_is_written_again_however_late_its_demotion(
    teams: list[Team], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``SENTINEL FAILOVER`` promotes one replica while the old primary keeps taking writes,
    acknowledged by its other replica, until the sentinels demote it (8 to 20 s later). Those
    batches are not on the new primary: the sink keeps them however long it takes (no time
    limit here at all) and writes them again once it reaches the new primary."""
    monkeypatch.setattr(metering, "RETAIN_SECONDS", 0.0)
    with (
        redis_server(*FAST_SYNC) as primary,
        redis_server("--replicaof", "127.0.0.1", str(primary.port), *FAST_SYNC) as promoted,
        redis_server("--replicaof", "127.0.0.1", str(primary.port), *FAST_SYNC) as other,
    ):
        until(lambda: in_sync(promoted.port) and in_sync(other.port), "the replicas' sync")
        before, after, later = usage(teams, 30), usage(teams, 20), usage(teams, 10)

        async def run() -> RedisStreamSink:
            redis = async_client(primary.redis_url, socket_timeout=5)
            sink = RedisStreamSink(
                redis, url=primary.redis_url, streams=STREAMS, replicas=1, wait_ms=2000
            )
            try:
                sink.pending = list(before)
                await sink.flush()
                redis_cli(promoted.port, "replicaof", "no", "one")
                until(lambda: "connected_slaves:1" in info(primary.port), "the promotion")
                for half in (after[:10], after[10:]):  # each batch in its own write
                    sink.pending = list(half)
                    await sink.flush()
                assert sink.unreplicated == 0  # the other replica acknowledged them
                # The sentinels demote the old primary: it and its replica follow the new one,
                # and lose what the new one never had.
                for server in (primary, other):
                    redis_cli(server.port, "replicaof", "127.0.0.1", str(promoted.port))
                until(lambda: in_sync(primary.port) and in_sync(other.port), "the demotion")
                sink.redis = async_client(promoted.redis_url, socket_timeout=5)  # as Sentinel
                await redis.aclose()
                sink.pending = list(later)
                await sink.flush()  # sees the new primary: what the old one took is pending
                await sink.flush()
                await sink.redis.aclose()
                return sink
            finally:
                await redis.aclose()

        sink = asyncio.run(run())
        client = sync_client(promoted.redis_url)
        stored = {
            UsageEvent.from_json(fields[b"event"]).request_id
            for key in stream_keys(STREAMS)
            for _, fields in client.xrange(key)
        }
        client.close()
    assert stored == {e.request_id for e in before + after + later}
    assert sink.resent >= len(after)


def info(port: int) -> str:
    return redis_cli(port, "info", "replication")
