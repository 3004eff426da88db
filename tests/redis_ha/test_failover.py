"""A primary fails over under load: Baton as a process, two usage consumers as processes, a
real Sentinel group or Redis Cluster, and the primary holding the team's keys killed
(SIGKILL) while requests run, or, on Sentinel, moved by ``SENTINEL FAILOVER`` (the old
primary lives on, taking writes until the sentinels demote it).

What must hold, by counts (no clock in the assertions):

- **No 5xx beyond the failover window.** The limits fail closed (``closed``), so a request
  whose limits cannot be checked is refused with a 503 ``limits_unavailable`` and never
  served unchecked. Each client thread sends its requests one after another; for each, the
  window opens at its first request not answered when the primary was killed, and closes at
  its first success among the requests it started after the engine reported a new primary:
  every response outside that window is a 200, and every one inside it a 200 or that 503
  (never a 500, never another error).
- **No usage event lost or doubled.** Every response names its request id; the ledger holds
  exactly those ids (each once) when the consumers are done, whatever the primary had not
  replicated when it died.
- **Limits still enforced.** After the failover, a key limited to 3 requests a minute is
  served 3 times out of 5.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
import pytest
import redis as redis_lib
from django.conf import settings
from redis.crc import key_slot

from accounts.models import ApiKey
from billing.credits import add_credit
from billing.models import UsageRecord
from billing.quota import script
from scripts.services import Cluster, SentinelGroup, redis_cli
from tests.polling import until
from tests.processes import ROOT, BatonProcess, subprocess_database_url
from tests.quotas.conftest import Quota, chat
from tests.relay.conftest import make_key

pytestmark = pytest.mark.faults

THREADS = 4
BEFORE = 30  # successes before the kill
AFTER = 40  # successes after the engine recovered


@dataclass
class Engine:
    kind: str
    group: Cluster | SentinelGroup
    killed: int = 0
    slot: int = 0

    @property
    def url(self) -> str:
        return self.group.url

    def kill_primary(self, team_id: str) -> None:
        """SIGKILL the primary that holds the team's keys (or, for ``sentinel-failover``, have
        the sentinels move it: the old primary lives on and is demoted)."""
        if isinstance(self.group, SentinelGroup):
            self.killed = self.group.primary_port()
            if self.kind == "sentinel-failover":
                sentinel = self.group.sentinels[0].port
                redis_cli(sentinel, "sentinel", "failover", self.group.service)
            else:
                self.group.server(self.killed).kill()
            return
        self.slot = key_slot(script.state(team_id).encode())
        self.killed = self.slot_owner()
        next(n for n in self.group.nodes if n.port == self.killed).kill()

    def slot_owner(self) -> int:
        """The primary of the team's slot, as the first live node sees it."""
        assert isinstance(self.group, Cluster)
        live = next(n for n in self.group.nodes if n.proc.poll() is None)
        client = redis_lib.Redis(port=live.port, socket_timeout=2)
        try:
            for start, end, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if int(start) <= self.slot <= int(end):
                    return int(primary[1])
        finally:
            client.close()
        raise AssertionError(f"no node serves slot {self.slot}")

    def recovered(self) -> bool:
        """A new primary serves what the killed one did."""
        with contextlib.suppress(Exception):
            if isinstance(self.group, SentinelGroup):
                port = self.group.primary_port()
                if self.kind == "sentinel-failover" and "slave" not in redis_cli(
                    self.killed, "role", timeout=2
                ):
                    return False  # until the old primary is demoted, it still takes writes
                return port != self.killed and "master" in redis_cli(port, "role", timeout=2)
            return self.slot_owner() != self.killed and self.group.healthy()
        return False


@pytest.fixture(params=["sentinel", "sentinel-failover", "cluster"])
def engine(request: pytest.FixtureRequest) -> Engine:
    group = request.getfixturevalue(f"fresh_{request.param.split('-')[0]}")
    return Engine(request.param, group)


@dataclass
class Sent:
    thread: int
    seq: int  # order of starting, over every thread
    status: int
    request_id: str
    code: str
    done: float = 0.0  # monotonic clock when answered (reported, never asserted)


@dataclass
class Load:
    base_url: str
    key: str
    sent: list[Sent] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    seq: int = 0
    in_flight: set[int] = field(default_factory=set)
    errors: list[BaseException] = field(default_factory=list)

    def next_seq(self) -> int:
        with self.lock:
            self.seq += 1
            self.in_flight.add(self.seq)
            return self.seq

    def mark(self) -> int:
        """The first request not answered yet: the oldest in flight, or the next one."""
        with self.lock:
            return min(self.in_flight, default=self.seq + 1)

    def run(self, thread: int) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                seq = self.next_seq()
                try:
                    response = client.post(
                        self.base_url + "/v1/chat/completions",
                        json=chat(5),
                        headers={"authorization": f"Bearer {self.key}"},
                    )
                except BaseException as exc:
                    self.errors.append(exc)
                    return
                code = ""
                if response.status_code != 200:
                    code = response.json().get("error", {}).get("code", "")
                with self.lock:
                    self.in_flight.discard(seq)
                    self.sent.append(
                        Sent(
                            thread,
                            seq,
                            response.status_code,
                            response.headers["x-request-id"],
                            code,
                            time.monotonic(),
                        )
                    )

    def successes(self, since: int = 0) -> int:
        with self.lock:
            return sum(1 for s in self.sent if s.status == 200 and s.seq >= since)


@contextlib.contextmanager
def consumers(env: dict[str, str], count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    environ = {
        **os.environ,
        "BATON_TESTING": "1",
        "DATABASE_URL": subprocess_database_url(),
        "BATON_USAGE_CLAIM_IDLE_SECONDS": "1",
        **env,
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "manage.py", "consume_usage", "--block-ms", "300"],
            cwd=ROOT,
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_a_failover_under_load_loses_no_event_and_keeps_the_limits(
    quota: Quota, engine: Engine
) -> None:
    add_credit(quota.team, Decimal(1000), actor=None)
    env = {
        "REDIS_URL": engine.url,
        "BATON_USAGE_STREAMS": "4",
        "BATON_LIMITS_ON_REDIS_FAILURE": "closed",
        "BATON_LIMITS_REDIS_TIMEOUT": "0.5",
    }
    if engine.kind == "cluster":
        env["CELERY_BROKER_URL"] = settings.REDIS_URL  # kombu has no cluster transport
    load = Load("", quota.key)
    with BatonProcess(env) as web, consumers(env, 2):
        load.base_url = web.base_url
        threads = [threading.Thread(target=load.run, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        try:
            until(lambda: load.successes() >= BEFORE or load.errors, "traffic", timeout=60)
            killed_at = load.mark()
            kill_time = time.monotonic()
            engine.kill_primary(str(quota.team.pk))
            until(engine.recovered, "a new primary", timeout=60)
            recovered_at = load.seq + 1  # started after the engine had a new primary
            promoted = time.monotonic() - kill_time
            until(
                lambda: load.successes(since=recovered_at) >= AFTER or load.errors,
                "traffic after the failover",
                timeout=120,
            )
        finally:
            load.stop.set()
            for thread in threads:
                thread.join(60)
        assert not load.errors, f"{load.errors!r}\n{web.logs()[-4000:]}"

        # The limits, on the new primary: a key allowed 3 requests a minute.
        limited = make_key(quota.team, name="three a minute", rpm_limit=3)
        statuses = []
        with httpx.Client(timeout=30) as client:
            for _ in range(5):
                response = client.post(
                    web.base_url + "/v1/chat/completions",
                    json=chat(5),
                    headers={"authorization": f"Bearer {limited}"},
                )
                statuses.append(response.status_code)
                load.sent.append(
                    Sent(-1, 0, response.status_code, response.headers["x-request-id"], "")
                )
        assert sorted(statuses) == [200, 200, 200, 429, 429], statuses

        expected = sorted(s.request_id for s in load.sent)
        try:
            until(
                lambda: UsageRecord.objects.filter(team=quota.team).count() >= len(expected),
                "every usage event in the ledger",
                timeout=90,
            )
        except AssertionError:
            have = set(
                UsageRecord.objects.filter(team=quota.team).values_list("request_id", flat=True)
            )
            missing = [s for s in load.sent if s.request_id not in have]
            raise AssertionError(
                f"{len(missing)} of {len(expected)} events not in the ledger "
                f"(killed at {killed_at}, new primary at {recovered_at}): {missing[:20]}\n"
                f"{web.logs()[-6000:]}"
            ) from None

    by_thread: dict[int, list[Sent]] = {}
    for answer in load.sent:
        if answer.thread >= 0:
            by_thread.setdefault(answer.thread, []).append(answer)
    failures = 0
    for number, answers in by_thread.items():
        answers.sort(key=lambda s: s.seq)
        closes = next(
            (i for i, s in enumerate(answers) if s.seq >= recovered_at and s.status == 200), None
        )
        assert closes is not None, f"thread {number} never succeeded after the failover"
        for index, each in enumerate(answers):
            inside = each.seq >= killed_at and index < closes
            if each.status == 200:
                continue
            failures += 1
            assert inside, (
                f"thread {number}: {each} outside the failover window ({killed_at} to "
                f"{answers[closes].seq}, new primary at {recovered_at}): "
                f"{[(s.seq, s.status) for s in answers if s.status != 200 or s.seq >= killed_at][:80]}"
            )
            assert (each.status, each.code) == (503, "limits_unavailable"), each
    ledger = sorted(
        UsageRecord.objects.filter(team=quota.team).values_list("request_id", flat=True)
    )
    assert ledger == expected  # each request once: none lost, none doubled
    last_refusal = max((s.done for s in load.sent if s.status >= 500), default=kill_time)
    print(  # the figures for the record; nothing above depends on the clock
        f"\n{engine.kind}: {len(load.sent)} requests, {failures} refused (503) in the failover "
        f"window; a new primary {promoted:.1f}s after the kill (or failover), the last refusal "
        f"{last_refusal - kill_time:.1f}s after it"
    )
    assert ApiKey.objects.filter(team=quota.team).count() == 2
