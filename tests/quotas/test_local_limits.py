"""The embedded default's limits store (billing/quota/local.py): Lua scripts on
lupa with the Redis commands admission.lua uses, answering as Redis answers,
called from the relay's event loop and the pages' threads at once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_lib
from django.conf import settings

from billing.quota import local as local_limits
from billing.quota import script
from billing.quota.live import current_use
from billing.quota.local import LocalLimits
from billing.quota.script import LUA, periods
from billing.quota.snapshots import Limits
from config.redis_clients import sync_client
from tests.quotas.conftest import Quota, chat

ROOT = Path(__file__).resolve().parents[2]
WINDOW = 60_000


def admit(store: LocalLimits, team: str, key: Limits) -> int:
    """One request of key "key" of ``team``, with ``key``'s limits: 1 admitted, 0 refused."""
    day, month = periods()
    record = script.Record(
        request_id=uuid.uuid4().hex, key_id="key", started_ms=0, held=0, prompt=1,
        team_held=False, key_held=True, endpoint="chat", dialect="chat", alias="m",
        streamed=False, target=script.Target(),
    ).member()  # fmt: skip
    request = script.Admit(record, 0, 1, "key", key, {}, False)
    keys, args = script.admit_call(
        team_id=team, requests=[request], team=None, granted=None, lease_ms=60_000,
        window_ms=WINDOW, day=day, month=month, prune_ms=1000, noseed=True,
    )  # fmt: skip
    return int(store.run(keys, args)[0][0])


def peek(store: LocalLimits, team: str) -> list[Any]:
    day, month = periods()
    return store.run(*script.peek_call(team, "key", WINDOW, day, month, Limits(), Limits()))


@pytest.fixture
def redis_client() -> Iterator[redis_lib.Redis]:
    client = sync_client(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.close()


# Each script runs on a real Redis and on the store; the replies (or the errors) must agree.
CASES: dict[str, tuple[str, list[str], list[Any]]] = {
    "hash replies": (
        """
        local out = {}
        out[#out + 1] = redis.call('HSET', KEYS[1], 'a', 1, 'b', 'x')
        out[#out + 1] = redis.call('HSET', KEYS[1], 'a', 2)
        out[#out + 1] = redis.call('HSETNX', KEYS[1], 'a', 3)
        out[#out + 1] = redis.call('HSETNX', KEYS[1], 'c', 3)
        out[#out + 1] = redis.call('HGET', KEYS[1], 'a')
        out[#out + 1] = redis.call('HGET', KEYS[1], 'zz') == false and 'nil' or 'value'
        out[#out + 1] = redis.call('HMGET', KEYS[1], 'a', 'zz', 'b')
        out[#out + 1] = redis.call('HINCRBY', KEYS[1], 'n', ARGV[1])
        out[#out + 1] = redis.call('HINCRBY', KEYS[1], 'n', -7)
        out[#out + 1] = redis.call('HDEL', KEYS[1], 'a', 'a', 'zz')
        out[#out + 1] = redis.call('HMGET', KEYS[2], 'x')
        return out
        """,
        ["{t}h1", "{t}h2"],  # one hash tag: one slot on a cluster
        [5],
    ),
    "an emptied hash or sorted set is gone": (
        """
        redis.call('HSET', KEYS[1], 'f', 'v')
        redis.call('HDEL', KEYS[1], 'f')
        local hash = redis.call('PEXPIRE', KEYS[1], 10)
        redis.call('ZADD', KEYS[2], 1, 'm')
        redis.call('ZREM', KEYS[2], 'm')
        local zset = redis.call('EXPIRE', KEYS[2], 10)
        redis.call('ZADD', KEYS[3], 1, 'm')
        redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '+inf')
        local range = redis.call('PEXPIRE', KEYS[3], 10)
        redis.call('ZADD', KEYS[1], 1, 'now a sorted set')
        return {hash, zset, range, redis.call('ZCARD', KEYS[1]), redis.call('PEXPIRE', KEYS[4], 10)}
        """,
        ["{t}e1", "{t}e2", "{t}e3", "{t}e4"],
        [],
    ),
    "sorted set ranges": (
        """
        local out = {}
        out[#out + 1] = redis.call('ZADD', KEYS[1], 3, 'c')
        redis.call('ZADD', KEYS[1], 1, 'b')
        redis.call('ZADD', KEYS[1], 1, 'a')
        redis.call('ZADD', KEYS[1], '2.5', 'd')
        out[#out + 1] = redis.call('ZADD', KEYS[1], 4, 'c')
        out[#out + 1] = redis.call('ZCARD', KEYS[1])
        out[#out + 1] = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '+inf')
        out[#out + 1] = redis.call('ZRANGEBYSCORE', KEYS[1], '(1', 4)
        out[#out + 1] = redis.call('ZRANGEBYSCORE', KEYS[1], 1, '(4')
        out[#out + 1] = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', 2.5)
        out[#out + 1] = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '+inf')
        out[#out + 1] = redis.call('ZREM', KEYS[1], 'c', 'zz')
        out[#out + 1] = redis.call('ZCARD', KEYS[1])
        out[#out + 1] = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '+inf')
        return out
        """,
        ["{t}z1", "{t}z2"],
        [],
    ),
    "sorted set options, scores and pages": (
        """
        local out = {}
        out[#out + 1] = redis.call('ZADD', KEYS[1], 5, 'a', 3, 'b')
        out[#out + 1] = redis.call('ZADD', KEYS[1], 'LT', 4, 'a', 9, 'b', 1, 'c')
        out[#out + 1] = redis.call('ZADD', KEYS[1], 'GT', 'CH', 2, 'a', 7, 'b')
        out[#out + 1] = redis.call('ZADD', KEYS[1], 'NX', 0, 'a', 8, 'd')
        out[#out + 1] = redis.call('ZADD', KEYS[1], 'XX', 'CH', 6, 'd', 6, 'e')
        out[#out + 1] = redis.call('ZSCORE', KEYS[1], 'a')
        out[#out + 1] = redis.call('ZSCORE', KEYS[1], 'zz') == false and 'nil' or 'value'
        redis.call('ZADD', KEYS[1], '1700000000123.5', 'f')
        out[#out + 1] = redis.call('ZSCORE', KEYS[1], 'f')
        out[#out + 1] = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '+inf', 'WITHSCORES')
        out[#out + 1] = redis.call('ZRANGEBYSCORE', KEYS[1], 2, '+inf', 'LIMIT', 1, 2)
        out[#out + 1] = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', 6, 'WITHSCORES', 'LIMIT', 0, 1)
        out[#out + 1] = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '+inf', 'LIMIT', 0, -1)
        out[#out + 1] = redis.call('ZCOUNT', KEYS[1], '(4', '+inf')
        out[#out + 1] = redis.call('ZADD', KEYS[2], 'XX', 1, 'x')
        out[#out + 1] = redis.call('ZCARD', KEYS[2])
        return out
        """,
        ["{o}1", "{o}2"],  # one hash slot: the suite also runs on a cluster
        [],
    ),
    "conflicting sorted set options": (
        "return redis.call('ZADD', KEYS[1], 'GT', 'LT', 1, 'a')",
        ["o3"],
        [],
    ),
    "hash listings": (
        """
        redis.call('HSET', KEYS[1], 'b', 1, 'a', 2)
        redis.call('HSET', KEYS[1], 'c', 'x')
        return {redis.call('HKEYS', KEYS[1]), redis.call('HGETALL', KEYS[1]),
                redis.call('HKEYS', KEYS[2]), redis.call('HGETALL', KEYS[2])}
        """,
        ["{l}1", "{l}2"],
        [],
    ),
    "numbers as arguments and replies": (
        """
        redis.call('HSET', KEYS[1], 'int', 61000, 'big', 1700000000123)
        return {redis.call('HGET', KEYS[1], 'int'), redis.call('HGET', KEYS[1], 'big'),
                3.99, -3.99, true, false, 'text', {1, {2, 'x'}}, 7, nil, 8}
        """,
        ["n1"],
        [],
    ),
    "a time": ("return #redis.call('TIME')", [], []),
    "a command error stops the script": (
        "redis.call('HSET', KEYS[1], 'f', 'text'); redis.call('HINCRBY', KEYS[1], 'f', 1); return 1",
        ["x1"],
        [],
    ),
    "a wrong type stops the script": (
        "redis.call('ZADD', KEYS[1], 1, 'm'); return redis.call('HGET', KEYS[1], 'f')",
        ["x2"],
        [],
    ),
    "a bad increment stops the script": (
        "return redis.call('HINCRBY', KEYS[1], 'f', '1.5')",
        ["x3"],
        [],
    ),
    "pcall hands the error back": (
        """
        redis.call('HSET', KEYS[1], 'f', 'text')
        local reply = redis.pcall('HINCRBY', KEYS[1], 'f', 1)
        return {type(reply), reply.err ~= nil and 'err' or 'no err'}
        """,
        ["x4"],
        [],
    ),
    "a table is not a command argument": ("return redis.call('HGET', KEYS[1], {})", ["x5"], []),
    "too few arguments": ("return redis.call('HGET', KEYS[1])", ["x6"], []),
    "too many arguments": ("return redis.call('HGET', KEYS[1], 'a', 'b')", ["x6"], []),
    "an odd field list": ("return redis.call('HSET', KEYS[1], 'a', 1, 'b')", ["x6"], []),
    "an error reply": ("return redis.error_reply('My error')", [], []),
    "a status reply": ("return redis.status_reply('FINE')", [], []),
    "no new globals": ("counter = 1; return counter", [], []),
    "no unknown globals": ("return undefined_name", [], []),
    "no files": ("return io.open('/etc/hostname')", [], []),
}


def outcome(call: Any) -> Any:
    try:
        return ("reply", call())
    except redis_lib.ResponseError:
        return ("error",)


@pytest.mark.parametrize("name", list(CASES))
def test_the_store_answers_as_redis_does(name: str, redis_client: redis_lib.Redis) -> None:
    script, keys, args = CASES[name]
    on_redis = redis_client.register_script(script)
    local = LocalLimits(script)
    assert outcome(lambda: local.run(keys, args)) == outcome(lambda: on_redis(keys=keys, args=args))


def test_threads_calling_at_once_never_pass_the_limit() -> None:
    """Each script call is atomic across threads: 16 threads racing for five
    concurrent slots (nothing settled) get exactly five, while another peeks."""
    store = LocalLimits(LUA)
    team = str(uuid.uuid4())
    start = threading.Barrier(17)
    admitted: list[int] = []
    peeks: list[list[Any]] = []

    def admits() -> None:
        start.wait()
        for _ in range(10):
            admitted.append(admit(store, team, Limits(concurrency=5)))

    def peeks_() -> None:
        start.wait()
        for _ in range(20):
            peeks.append(peek(store, team))

    threads = [threading.Thread(target=admits) for _ in range(16)]
    threads.append(threading.Thread(target=peeks_))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 160 and sum(admitted) == 5
    assert len(peeks) == 20 and all(0 <= int(p[8]) <= 5 for p in peeks)
    assert int(peek(store, team)[8]) == 5


def test_expired_keys_nobody_touches_again_are_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys past their time go even when no command touches them again, as Redis
    expires them by itself, so a long-running process stays small."""
    monkeypatch.setattr(local_limits, "SWEEP_EVERY", 5)
    store = LocalLimits(LUA)
    team = str(uuid.uuid4())
    peek(store, team)  # call 1
    for i in range(50):  # what a script with expiring keys left, say
        store.hashes[b"bq:{gone}:k:%d:d:20200101" % i] = {b"n": b"1"}
        store.expires[b"bq:{gone}:k:%d:d:20200101" % i] = store.now - 1
    store.hashes[b"bq:{kept}:s"] = {b"l": b"1"}
    for _ in range(3):  # calls 2 to 4
        peek(store, team)
    assert len(store.hashes) == 51
    peek(store, team)  # call 5 sweeps
    assert list(store.hashes) == [b"bq:{kept}:s"] and not store.expires


def test_reset_forgets_everything_like_a_restart() -> None:
    store = LocalLimits(LUA)
    team = str(uuid.uuid4())
    day, month = periods()
    store.run(*script.reconcile_call(team, None, day, month, (123, 123, 123)))
    assert peek(store, team)[4] == 123
    store.reset()
    assert peek(store, team)[4] == 0


def test_a_process_with_a_limits_redis_never_loads_lua() -> None:
    code = (
        "import sys, django; django.setup()\n"
        "from gateway.admission import Admission\n"
        "import billing.quota.live\n"
        "admission = Admission(); admission.configure()\n"
        "assert admission.redis is not None and admission.local is None\n"
        "print('lupa' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "BATON_LIMITS_REDIS_URL": "redis://127.0.0.1:1/0",
        },
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False"]


def test_the_pages_read_what_the_relay_counted_in_the_embedded_default(
    quota: Quota, settings: Any
) -> None:
    """One process: the relay's admission and the pages' live use share the store."""
    settings.REDIS_URL = ""
    settings.BATON_LIMITS_REDIS_URL = ""
    quota.limits(daily_budget=Decimal("1"), rpm_limit=10)
    with quota.serve() as base:
        response = httpx.post(
            base + "/v1/chat/completions",
            json=chat(10),
            headers={"authorization": f"Bearer {quota.key}"},
            timeout=15,
        )
        assert response.status_code == 200
        deadline = time.monotonic() + 10
        while True:  # the relay settles once the response is out
            use = current_use(quota.team.pk, Limits(rpm=10), [])
            assert use is not None
            if use[0].day or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    team = use[0]
    assert (team.day, team.lifetime, team.held, team.in_flight) == (
        Decimal("0.01"),
        Decimal("0.01"),
        0,
        0,
    )
    assert team.rpm_remaining == 9
