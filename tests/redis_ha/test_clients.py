"""Every Redis client Baton makes, against a real Redis Cluster and a real Sentinel group."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from kombu import Connection
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError

from accounts import invalidation
from billing.quota.script import LUA, peek_call, periods
from billing.quota.snapshots import Limits
from config.redis_cache import BatonRedisCache
from config.redis_clients import async_client, celery_broker, parse, sync_client
from gateway.cache import RelayCache
from gateway.cooldown import Cooldowns
from gateway.redis_pipe import PipelinedRedis, Script
from gateway.redis_topology import ClusterPipelinedRedis, SentinelPipelinedRedis, pipelined
from scripts.services import Cluster, SentinelGroup, ServiceError, redis_cli, redis_server
from tests.polling import until
from tests.redis_ha.conftest import flush, use_redis


@pytest.fixture(params=["cluster", "sentinel"])
def url(request: pytest.FixtureRequest) -> str:
    group: Cluster | SentinelGroup = request.getfixturevalue(request.param)
    flush(group.url)
    return group.url


def test_the_sync_and_asyncio_clients_reach_the_primary(url: str) -> None:
    client = sync_client(url, socket_timeout=2)
    client.set("plain", "1")
    pipe = client.pipeline(transaction=True)  # one slot: a transaction on a cluster too
    pipe.incr("{t}a")
    pipe.incr("{t}a")
    assert pipe.execute() == [1, 2]
    assert client.get("plain") == b"1"

    async def asynchronous() -> list[Any]:
        aclient = async_client(url, socket_timeout=2)
        try:
            pipe = aclient.pipeline(transaction=False)
            for name in ("x", "y", "z"):  # different slots on a cluster
                pipe.set(name, name)
            await pipe.execute()
            return [await aclient.get(name) for name in ("x", "y", "z", "plain")]
        finally:
            await aclient.aclose()

    assert asyncio.run(asynchronous()) == [b"x", b"y", b"z", b"1"]
    client.close()


def test_djangos_cache_works_on_each(url: str) -> None:
    cache = BatonRedisCache([url], {"KEY_PREFIX": "t"})
    cache.set("one", {"a": 1}, 30)
    cache.set_many({"two": 2, "three": [3]}, 30)  # keys in different slots on a cluster
    assert cache.get_many(["one", "two", "three", "none"]) == {
        "one": {"a": 1},
        "two": 2,
        "three": [3],
    }
    assert cache.add("two", 9, 30) is False
    assert cache.incr("two") == 3
    cache.delete_many(["one", "two"])
    assert cache.get_many(["one", "two", "three"]) == {"three": [3]}


def test_a_change_reaches_the_relay_cache(url: str, settings: Any) -> None:
    """The version and the change log share a slot (on the one-key-per-slot layout the
    publishing script fails with CROSSSLOT)."""
    use_redis(settings, url)
    evicted: list[str] = []

    async def watch() -> None:
        redis = async_client(url)
        cache = RelayCache()
        cache.evict_team = evicted.append  # type: ignore[method-assign,assignment]
        try:
            await cache.check_version(redis)
            invalidation.bump_team_now("team-a")
            invalidation.bump_team_now("team-b")
            await cache.check_version(redis)
        finally:
            await redis.aclose()

    asyncio.run(watch())
    assert evicted[-2:] == ["team-a", "team-b"]
    assert not invalidation.unpublished()


def test_cooldowns_are_shared(url: str) -> None:
    async def share() -> bool:
        redis = async_client(url)
        one, other = Cooldowns(), Cooldowns()
        try:
            one.record("target-1", ok=False, retry_after=30)
            await one.sync(redis)
            await other.sync(redis)
            return other.cooling("target-1")
        finally:
            await redis.aclose()

    assert asyncio.run(share())


def peek(team: str) -> tuple[list[Any], list[Any]]:
    """A call of the script reading a team's live use (all its keys in the team's slot)."""
    day, month = periods()
    keys, args = peek_call(team, "x", 60_000, day, month, Limits(), Limits())
    return list(keys), list(args)


UNUSED = [0, 0, -1, -1, 0, 0, 0, 0, 0, 0, -1, -1, 0, 0, 0, 0]  # a team nothing has used


def test_the_pipelined_limits_connection_runs_the_script(url: str) -> None:
    """Teams whose keys hash to every primary of the cluster, in one loop turn."""
    script = Script(LUA)

    async def admit_all() -> tuple[list[Any], Any]:
        connection = pipelined(url, 2.0)
        try:
            calls = []
            for _ in range(60):
                calls.append(connection.evalsha(script, *peek(str(uuid.uuid4()))))
            return await asyncio.gather(*calls), connection
        finally:
            await connection.aclose()

    replies, connection = asyncio.run(admit_all())
    assert [[int(v) for v in reply] for reply in replies] == [UNUSED] * 60
    if "cluster" in url:
        assert isinstance(connection, ClusterPipelinedRedis)
        assert len({address for address in connection.table or []}) == 3
    else:
        assert isinstance(connection, SentinelPipelinedRedis)


def test_the_limits_connection_follows_moved(cluster: Cluster) -> None:
    """A slot table that names the wrong primary (a slot moved since it was read): Redis
    answers MOVED and the call goes where it says."""
    flush(cluster.url)
    script = Script(LUA)
    keys, args = peek(str(uuid.uuid4()))

    async def admit() -> tuple[Any, int]:
        connection = ClusterPipelinedRedis(parse(cluster.url), 2.0)
        try:
            await connection.refresh()
            assert connection.table is not None
            slot = key_slot(keys[0].encode())
            right = connection.table[slot]
            wrong = next(a for a in set(connection.table) if a != right)
            connection.table[slot] = wrong
            connection.refreshed_at = float("inf")  # no refresh: only MOVED can put it right
            reply = await connection.evalsha(script, keys, args)
            return reply, connection.table[slot] == right
        finally:
            await connection.aclose()

    reply, corrected = asyncio.run(admit())
    assert [int(v) for v in reply] == UNUSED
    assert corrected


def test_celery_reaches_the_broker_through_the_sentinels(sentinel: SentinelGroup) -> None:
    broker = celery_broker(sentinel.url)
    with Connection(broker.url, transport_options=broker.transport_options) as connection:
        queue = connection.SimpleQueue("baton-ha-test")
        queue.put({"hello": "sentinel"})
        message = queue.get(timeout=10)
        assert message.payload == {"hello": "sentinel"}
        message.ack()
        queue.close()
    port = sentinel.primary_port()
    assert int(redis_cli(port, "exists", "baton-ha-test").strip()) == 0  # consumed there


def test_one_server_still_uses_plain_pipelined_connection() -> None:
    assert type(pipelined("redis://127.0.0.1:1/0", 1.0)) is PipelinedRedis


def test_changes_cross_a_rolling_upgrade_from_the_untagged_keys(settings: Any) -> None:
    """On one server, for one release: a change published by a process of the previous
    release (the old script on the old names) evicts in a relay of this one, and a change
    this release publishes reaches the old names too."""
    url = settings.REDIS_URL
    flush(url)
    use_redis(settings, url)
    version_key, changes_key = invalidation.LEGACY_KEYS
    evicted: list[str] = []
    client = sync_client(url)

    async def watch() -> None:
        redis = async_client(url)
        cache = RelayCache()
        cache.evict_team = evicted.append  # type: ignore[method-assign,assignment]
        try:
            await cache.check_version(redis)
            # The previous release's publisher, verbatim.
            client.eval(
                "local v = redis.call('INCR', KEYS[1]) redis.call('ZADD', KEYS[2], v, ARGV[1]) "
                "return v",
                2,
                version_key,
                changes_key,
                "old-process-team",
            )
            await cache.check_version(redis)
        finally:
            await redis.aclose()

    asyncio.run(watch())
    assert evicted == ["old-process-team"]
    invalidation.bump_team_now("new-process-team")
    assert client.zscore(changes_key, "new-process-team") == float(client.get(version_key) or 0)
    assert client.zscore(invalidation.CHANGES_KEY, "new-process-team") is not None
    client.close()


INCR = Script("return redis.call('INCR', KEYS[1])")


def test_a_primary_demoted_under_the_limits_connection_counts_as_a_lost_connection() -> None:
    """READONLY (the server became a replica) drops the connection, so the next call connects
    again (through the sentinels, with a Sentinel URL) instead of writing to a replica."""
    with redis_server() as old, redis_server() as new:

        async def run() -> tuple[int, type[BaseException], bool]:
            connection = PipelinedRedis(old.redis_url, 2.0)
            try:
                first = await connection.evalsha(INCR, ["n"], [])
                sync_client(old.redis_url).execute_command("REPLICAOF", "127.0.0.1", new.port)
                with pytest.raises(RedisConnectionError) as refused:
                    await connection.evalsha(INCR, ["n"], [])
                return first, refused.type, connection._protocol is None
            finally:
                await connection.aclose()

        first, error, dropped = asyncio.run(run())
    assert (first, error, dropped) == (1, RedisConnectionError, True)


def test_the_limits_connection_follows_a_sentinel_failover(fresh_sentinel: SentinelGroup) -> None:
    """Once the sentinels have promoted a replica and demoted the old primary, the calls
    reach the new primary (after a failure or two on the old one's connection)."""
    before = fresh_sentinel.primary_port()

    def demoted() -> bool:
        if fresh_sentinel.primary_port() == before:
            return False
        try:
            return "slave" in redis_cli(before, "role")
        except ServiceError:
            return False  # the old primary drops its clients as it is reconfigured

    async def run() -> tuple[int, int]:
        connection = pipelined(fresh_sentinel.url, 2.0)
        try:
            assert await connection.evalsha(INCR, ["{t}n"], []) == 1
            redis_cli(fresh_sentinel.sentinels[0].port, "sentinel", "failover", "baton")
            until(demoted, "the failover", timeout=30)
            failures = 0
            while True:
                try:
                    return await connection.evalsha(INCR, ["{t}n"], []), failures
                except RedisConnectionError:
                    failures += 1
                    assert failures <= 5
        finally:
            await connection.aclose()

    value, failures = asyncio.run(run())
    assert int(redis_cli(fresh_sentinel.primary_port(), "get", "{t}n").strip()) == value == 2
    assert failures <= 5
