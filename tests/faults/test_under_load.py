"""The production stack under faults, with a load running: nothing that reached the upstream
goes unbilled or is billed twice, no client gets a 500, the limit counters come back to the
ledger, and no leftover hold keeps the team out.

Baton runs as deployed (tests/faults/stack.py): ``gateway.serve`` with two workers and DEBUG
off, the usage consumer, a Celery worker and beat, PostgreSQL, and Redis with an append-only
file; the upstream is the fake, in a process of its own, taking about a second a request, so
that requests are in flight when a fault strikes. While 16 clients send chat requests
(streamed and not, each with its own ``x-client-request-id``), the test

1. kills a web worker with SIGKILL while it serves a stream that is sending tokens, among other
   requests in flight (uvicorn starts another);
2. stops Redis and starts it again on the same port (its data kept in the append-only file);
3. stops PostgreSQL for longer than the relay cache's reload interval, and kills the usage
   consumer with SIGKILL while it holds events it could not write (another one is started
   before PostgreSQL returns);

then stops the load. The scenario runs once (``scenario``, about a minute with the processes'
start); each test below checks one guarantee of it, with the fake upstream's own
request log as the truth of what reached a provider.

What a client may see besides a full answer, and why (``acceptable``):

- its connection broken, or its stream cut short, only if a web worker was killed while its
  request was in flight: the process answering it is gone, nothing more can reach the client;
- 503 ``database_unavailable`` in OpenAI's shape (with ``retry-after``), only if PostgreSQL
  was down while the request was in flight: a worker that has not cached the key or team
  cannot load it (uvicorn's replacement for the killed worker starts with an empty cache).

Nothing else: never a 500, never a 503 ``limits_unavailable`` (limits fail open by default),
never a 429. The team's ``max_concurrent`` leaves room for the load and every request the
faults could leave holding a slot, so a leftover slot never refuses the load itself; that
leftovers end in lease time (not the 11-minute hold of old) is checked once the load stops:
nothing is left in flight, and the team is admitted at its full concurrency.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_lib
from celery import Celery
from django.core.management import call_command

from accounts import actions
from accounts.models import ApiKey, User
from billing.consumer import GROUP
from billing.events import STREAM_KEY
from billing.models import KeyLimits, Price, TeamLimits
from billing.quota.live import current_use
from billing.quota.snapshots import Limits
from fake_upstream.app import HISTORY
from relay.catalog_seed import seed
from relay.models import Provider
from scripts.services import Postgres, copy_database, redis_server
from tests.faults.stack import (
    STARTED,
    Ledger,
    Load,
    Outcome,
    Stack,
    Timeline,
    day_start,
    month_start,
    upstream_requests,
)
from tests.polling import until
from tests.processes import FakeUpstreamProcess, subprocess_database_url
from tests.relay.conftest import make_credential, make_key, make_route

# The tests read no database of the test run's own, but the module's fixtures make the tenant in
# it (before copying it to the stack's PostgreSQL): the marker has pytest-django create it.
pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

LATENCY_MS = 300  # before the answer starts
TPS = 16  # then MAX_TOKENS tokens at this pace: about 1.3 s a request, streamed or not
MAX_TOKENS = 16
CONCURRENCY = 16  # clients
# The team's max_concurrent: the load's 16, plus 16 slots the kill may leave behind and 16
# the Redis stop may (requests in flight whose release did not reach Redis).
TEAM_CONCURRENCY = 64
LIMIT = 800  # requests at most, so the fake's log (HISTORY entries) keeps every one
# BATON_LEASE_SECONDS: a slot outlives a dead process by at most 4/3 of it, and the reaper
# bills the process's requests within 3 of it.
LEASE_SECONDS = 3.0
RELOAD_SECONDS = 1.0  # BATON_CACHE_RELOAD_SECONDS, which the database outage outlasts
# How long the clean-up after the faults may take: leases lapsing and the reaper billing the
# dead worker's requests (within 3 leases and a reaper pass, every 5 s), reconciliation
# (BATON_RECONCILE_SECONDS), consumers claiming abandoned events
# (BATON_USAGE_CLAIM_IDLE_SECONDS): seconds each here, on a busy machine. A poll's limit, not
# a timing assertion, and far below the 11 minutes a leftover hold lasted before leases.
SETTLE_TIMEOUT = 60.0
# Once the faults have cleared, every counter equals the ledger to the nano: reconciliation
# raises a counter to the ledger's total, the settle step and the ledger price a request
# alike (billing/money.py), and no settle counts a request the ledger does not have.
COUNTER_BOUND = Decimal(0)
BUDGET = Decimal(1000)  # far above the load's cost: the budgets make every counter count

ENV = {
    "BATON_CACHE_RELOAD_SECONDS": str(RELOAD_SECONDS),
    "BATON_LEASE_SECONDS": str(LEASE_SECONDS),
    "BATON_RECONCILE_SECONDS": "2",
    "BATON_USAGE_CLAIM_IDLE_SECONDS": "2",
}


@pytest.fixture(autouse=True, scope="module")
def _quiet_clients() -> Iterator[None]:
    """No log line per request from the load's clients."""
    logger = logging.getLogger("httpx")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


@dataclass
class Tenant:
    team_id: str
    key: str
    key_id: str
    team_limits: Limits
    key_limits: Limits


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """Outside pytest's own temporary directory, which the postgres user cannot enter."""
    path = Path(tempfile.mkdtemp(prefix="baton-load-faults-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstreamProcess]:
    with FakeUpstreamProcess(latency_ms=LATENCY_MS, tps=TPS) as fake:
        yield fake


def _nanos(amount: Decimal) -> int:
    return int(amount * 10**9)


def make_tenant(upstream: FakeUpstreamProcess) -> Tenant:
    """A prepaid team (the sign-up credit) with a concurrency limit and budgets, and a key with
    budgets of its own: every spend counter of both scopes is counted."""
    seed(Provider)
    Price.objects.create(provider_id="openai", model="demo-chat", input=10, output=100)
    owner = User.objects.create_user("load@example.com", "x-sturdy-passphrase-1")
    team = actions.create_team(owner, name="Load team")
    limits = TeamLimits.objects.get(team=team)
    assert limits.prepaid
    limits.max_concurrent = TEAM_CONCURRENCY
    limits.daily_budget = limits.monthly_budget = BUDGET
    limits.save()
    credential = make_credential(team, "primary", upstream.base_url + "/v1")
    make_route(team, "gpt-4o", (credential, "demo-chat", 0))
    key = make_key(team)
    api_key = ApiKey.objects.get(team=team)
    KeyLimits.objects.create(
        api_key=api_key,
        team=team,
        daily_budget=BUDGET,
        monthly_budget=BUDGET,
        lifetime_budget=BUDGET,
    )
    budget = _nanos(BUDGET)
    return Tenant(
        team_id=str(team.pk),
        key=key,
        key_id=str(api_key.pk),
        team_limits=Limits(concurrency=TEAM_CONCURRENCY, day=budget, month=budget),
        key_limits=Limits(day=budget, month=budget, life=budget),
    )


@dataclass
class Deployment:
    database: Postgres
    tenant: Tenant


@pytest.fixture(scope="module")
def deployment(
    workdir: Path,
    upstream: FakeUpstreamProcess,
    django_db_setup: None,
    django_db_blocker: Any,
) -> Iterator[Deployment]:
    """A PostgreSQL of the stack's own holding the tenant: made in the test database, copied,
    then flushed from the test database (as a transactional test's teardown does)."""
    cluster = Postgres(workdir)
    try:
        cluster.start()
        cluster.create_database()
        with django_db_blocker.unblock():
            try:
                tenant = make_tenant(upstream)
                copy_database(subprocess_database_url(), cluster)
            finally:
                call_command("flush", verbosity=0, interactive=False)
        yield Deployment(cluster, tenant)
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def stack(workdir: Path, deployment: Deployment) -> Iterator[Stack]:
    redis_dir = workdir / "redis"
    redis_dir.mkdir()
    with redis_server(directory=redis_dir, appendonly=True) as redis:
        processes = Stack(workdir, deployment.database, redis, redis_dir, ENV)
        try:
            processes.start()
            yield processes
        finally:
            processes.stop()


@dataclass
class Scenario:
    timeline: Timeline
    outcomes: list[Outcome]
    reached: list[dict[str, Any]]  # the load's requests as the upstream logged them
    stack: Stack
    ledger: Ledger
    tenant: Tenant
    cut: int  # requests the kill cut at the upstream
    held: int  # usage events the killed consumer held unwritten

    def limits_store(self, settings: Any) -> None:
        """Point ``current_use`` (billing.quota.live) at the stack's Redis."""
        settings.BATON_LIMITS_REDIS_URL = self.stack.redis.redis_url


@pytest.fixture(scope="module")
def scenario(stack: Stack, deployment: Deployment, upstream: FakeUpstreamProcess) -> Scenario:
    timeline = Timeline()
    tenant = deployment.tenant
    load = Load(stack.web.base_url, tenant.key, timeline, CONCURRENCY, LIMIT, MAX_TOKENS)
    load.start()
    try:
        cut = kill_a_web_worker(stack, upstream, load, timeline)
        restart_redis(stack, load, timeline)
        held = stop_the_database(stack, deployment.database, load, timeline)
        # The load goes on a while with every fault cleared, then stops.
        mark = timeline.position
        until(lambda: load.served_since(mark) >= 4 * CONCURRENCY, "service after the faults", 60)
    except AssertionError as exc:  # a wait timed out: what the processes said
        raise AssertionError(f"{exc}\n{stack.logs()}") from exc
    finally:
        load.stop()
    until(lambda: not in_flight_upstream(upstream), "the upstream idle", 30, 0.1)
    return Scenario(
        timeline=timeline,
        outcomes=load.outcomes,
        reached=upstream_requests(upstream),
        stack=stack,
        ledger=Ledger(deployment.database, tenant.team_id),
        tenant=tenant,
        cut=cut,
        held=held,
    )


# --- the faults ---------------------------------------------------------------------------------
def eventually(condition: Any, what: str, timeout: float, interval: float = 0.1) -> bool:
    """``until`` that answers False when it times out, for a test that then asserts with
    the details."""
    try:
        until(condition, what, timeout, interval)
    except AssertionError:
        return False
    return True


def in_flight_upstream(upstream: FakeUpstreamProcess) -> list[dict[str, Any]]:
    return [r for r in upstream_requests(upstream) if r["ended_at"] is None]


def cancelled_upstream(upstream: FakeUpstreamProcess) -> int:
    """Requests whose client (Baton) went away before the upstream's answer ended."""
    return sum(1 for record in upstream_requests(upstream) if record["cancelled"])


def kill_a_web_worker(
    stack: Stack, upstream: FakeUpstreamProcess, load: Load, timeline: Timeline
) -> int:
    """SIGKILL the web worker serving a stream that is sending tokens, while the upstream has
    half the load in flight. Returns how many requests the kill cut at the upstream."""
    until(lambda: load.served_since(0) >= CONCURRENCY, "the load under way", 60)
    until(lambda: stack.consumer_name in (stack.consumed() or ()), "the consumer reading", 60)
    before = cancelled_upstream(upstream)

    def victim() -> int | None:
        if len(in_flight_upstream(upstream)) < CONCURRENCY // 2:
            return None
        for port in list(load.streaming.values()):
            pid = stack.web.worker_serving(port)
            if pid is not None:
                return pid
        return None

    pid = until(victim, "a worker with a stream under way", 30, 0.05)
    timeline.mark("web worker killed")
    os.kill(pid, signal.SIGKILL)
    until(lambda: len(stack.web.workers() - {pid}) == 2, "uvicorn's replacement worker", 30)
    until(lambda: stack.web.logs().count(STARTED) == 3, "the replacement serving", 120, 0.2)
    mark = timeline.position
    until(lambda: load.served_since(mark) >= 2 * CONCURRENCY, "service after the kill", 30)
    return cancelled_upstream(upstream) - before


def restart_redis(stack: Stack, load: Load, timeline: Timeline) -> None:
    """Stop Redis while requests run (its append-only file flushed, as a restart does), serve
    some without it (limits fail open), and start it again on the same port."""
    unchecked = stack.metric("baton_limits_unavailable_total", outcome="open") or 0.0
    timeline.mark("redis stopped")
    stack.redis.stop()
    mark = timeline.position
    until(
        lambda: (
            (stack.metric("baton_limits_unavailable_total", outcome="open") or 0) > unchecked
            and load.served_since(mark) >= CONCURRENCY
        ),
        "requests served while Redis is away",
        30,
        0.1,
    )
    checks = stack.metric("baton_cache_version_checks_total", outcome="ok") or 0.0
    stack.restart_redis()
    timeline.mark("redis started")
    until(
        lambda: (stack.metric("baton_cache_version_checks_total", outcome="ok") or 0) > checks,
        "the relay reading Redis again",
        30,
        0.1,
    )


def pending(client: Any, consumer: str | None = None) -> int:
    """Usage events read from the stream and not acknowledged (by ``consumer``, or anyone)."""
    try:
        if consumer is None:
            return int(client.xpending(STREAM_KEY, GROUP)["pending"])
        return len(client.xpending_range(STREAM_KEY, GROUP, "-", "+", 1000, consumername=consumer))
    except redis_lib.ResponseError:  # no group yet
        return 0


def stop_the_database(stack: Stack, database: Postgres, load: Load, timeline: Timeline) -> int:
    """Stop PostgreSQL until the relay has served its cached key and team past their reload
    time; meanwhile SIGKILL the usage consumer holding events it could not write, and start
    another (which meets the database's return). Returns how many events the killed one held."""
    stale = {
        kind: stack.metric("baton_cache_stale_served_total", kind=kind) or 0.0
        for kind in ("key", "team")
    }
    client = redis_lib.Redis.from_url(stack.redis.redis_url)
    try:
        timeline.mark("database stopped")
        database.stop()
        mark = timeline.position
        until(
            lambda: (
                all(
                    (stack.metric("baton_cache_stale_served_total", kind=kind) or 0) > stale[kind]
                    for kind in stale
                )
                and load.served_since(mark) >= CONCURRENCY
            ),
            "the cached key and team served past their reload time",
            30,
            0.1,
        )
        held = until(
            lambda: pending(client, stack.consumer_name),
            "the consumer holding events it could not write",
            30,
            0.1,
        )
        timeline.mark("consumer killed")
        stack.consumer.kill()
        stack.consumer = stack.start_consumer()
        database.start()
        timeline.mark("database started")
        return held
    finally:
        client.close()


# --- the guarantees -----------------------------------------------------------------------------
def acceptable(outcome: Outcome, timeline: Timeline) -> bool:
    """The module docstring's list, a rule each."""
    if outcome.error is not None:  # the connection broke, before or during the answer
        return outcome.code is None and outcome.lived_through(timeline, "web worker killed")
    if outcome.status == 200:
        return outcome.complete and outcome.code is None
    if outcome.status == 503 and outcome.code == "database_unavailable":
        return outcome.retry_after is not None and (
            outcome.lived_through(timeline, "database stopped")
            or (
                outcome.after(timeline, "database stopped")
                and not outcome.after(timeline, "database started")
            )
        )
    return False


def test_every_fault_struck_requests_in_flight(scenario: Scenario) -> None:
    outcomes = scenario.outcomes
    print(  # shown with -rP or -s: what the scenario did
        f"{len(outcomes)} requests, {len(scenario.reached)} reached the upstream, "
        f"{scenario.cut} cut there by the kill, "
        f"{sum(o.error is not None for o in outcomes)} connections broken, "
        f"{sum(o.status == 503 for o in outcomes)} answered 503, "
        f"{scenario.held} usage events held by the killed consumer"
    )
    assert scenario.timeline.events == [
        "web worker killed",
        "redis stopped",
        "redis started",
        "database stopped",
        "consumer killed",
        "database started",
    ]
    assert len(scenario.reached) < HISTORY, "the fake's log may have dropped requests"
    assert scenario.cut > 0, "the killed worker had nothing at the upstream"
    broke = [
        o
        for o in scenario.outcomes
        if o.lived_through(scenario.timeline, "web worker killed") and not o.complete
    ]
    assert broke, "no client saw the kill"
    assert any(o.stream and o.status == 200 for o in broke), "no stream was cut mid-way"
    for fault in ("redis stopped", "database stopped"):
        assert any(o.lived_through(scenario.timeline, fault) for o in scenario.outcomes), fault
    assert scenario.held > 0


def test_clients_see_only_what_the_faults_explain(scenario: Scenario) -> None:
    outcomes, timeline = scenario.outcomes, scenario.timeline
    statuses = Counter(o.status for o in outcomes)
    assert not [s for s in statuses if s is not None and s >= 500 and s != 503], statuses
    unexplained = [o for o in outcomes if not acceptable(o, timeline)]
    assert unexplained == [], unexplained[:10]
    # Every answer names the client's own id, so a client can find its request in the ledger.
    assert [o for o in outcomes if o.status is not None and o.echoed != o.client_id] == []


def test_every_request_that_reached_the_upstream_is_billed_exactly_once(
    scenario: Scenario,
) -> None:
    ids = Counter(record["client_id"] for record in scenario.reached)
    assert [i for i, n in ids.items() if n > 1] == [], "a request reached the upstream twice"
    ledger = scenario.ledger

    def unbilled() -> list[str]:
        billed = {row.client_request_id for row in ledger.rows() if row.prompt_tokens}
        return sorted(set(ids) - billed)

    eventually(lambda: not unbilled(), "every upstream request in the ledger", SETTLE_TIMEOUT)
    cut = {r["client_id"] for r in scenario.reached if r["cancelled"]}
    missing = unbilled()
    assert missing == [], (
        f"{len(missing)} requests reached the upstream and are not in the ledger, "
        f"{len(set(missing) & cut)} of them cut by the kill: {missing[:10]}"
    )
    rows = ledger.rows()
    twice = Counter(row.client_request_id for row in rows if row.prompt_tokens)
    assert {i: n for i, n in twice.items() if n > 1} == {}, "billed twice"
    by_client = {row.client_request_id: row for row in rows if row.prompt_tokens}
    assert all(by_client[i].cost for i in ids), "billed at no cost"
    # Billed without reaching the upstream: only a request the kill cut between its admission
    # and its sending, billed at its prompt estimate (its record cannot tell it was not sent).
    outcomes = {o.client_id: o for o in scenario.outcomes}
    for client_id in set(by_client) - set(ids):
        row, outcome = by_client[client_id], outcomes[client_id]
        assert row.estimated and row.completion_tokens == 0, row
        assert outcome.lived_through(scenario.timeline, "web worker killed"), outcome
    # What Baton answered in full is billed from the provider's own count; what the kill cut
    # is billed estimated, from what was known of it.
    by_request = {row.request_id: row for row in rows}
    for outcome in scenario.outcomes:
        if outcome.request_id is None:
            continue
        row = by_request[outcome.request_id]
        assert row.client_request_id == outcome.client_id, (outcome, row)
        if outcome.complete:
            assert (row.status, row.estimated, row.completion_tokens) == (
                200,
                False,
                MAX_TOKENS,
            ), (outcome, row)
    assert all(by_client[i].estimated for i in cut), [by_client[i] for i in cut]


def test_the_limit_counters_equal_the_ledger_once_the_faults_clear(
    scenario: Scenario, settings: Any
) -> None:
    scenario.limits_store(settings)
    tenant, ledger = scenario.tenant, scenario.ledger

    def counters() -> dict[str, tuple[Decimal, Decimal]] | None:
        use = current_use(tenant.team_id, tenant.team_limits, [(tenant.key_id, tenant.key_limits)])
        if use is None:
            return None
        team, keys = use
        key = keys[tenant.key_id]
        now = datetime.now(UTC)
        day, month = day_start(now), month_start(now)
        return {
            "team day": (team.day, ledger.spend(day)),
            "team month": (team.month, ledger.spend(month)),
            "team lifetime (the prepaid balance's spend)": (team.lifetime, ledger.spend(None)),
            "key day": (key.day, ledger.spend(day, tenant.key_id)),
            "key month": (key.month, ledger.spend(month, tenant.key_id)),
            "key lifetime": (key.lifetime, ledger.spend(None, tenant.key_id)),
        }

    def apart() -> dict[str, tuple[Decimal, Decimal]] | None:
        values = counters()
        if values is None:
            return None
        return {n: v for n, v in values.items() if abs(v[0] - v[1]) > COUNTER_BOUND}

    eventually(lambda: apart() == {}, "the counters equal to the ledger", SETTLE_TIMEOUT)
    off = apart()
    assert off == {}, "; ".join(
        f"{name}: counter {live}, ledger {books} ({live - books:+})"
        for name, (live, books) in (off or {}).items()
    )


def test_no_leftover_hold_keeps_the_team_out(scenario: Scenario, settings: Any) -> None:
    scenario.limits_store(settings)
    tenant = scenario.tenant

    def use() -> tuple[int, Decimal] | None:
        found = current_use(tenant.team_id, tenant.team_limits, [])
        return None if found is None else (found[0].in_flight, found[0].held)

    eventually(lambda: use() == (0, 0), "every slot and hold released", SETTLE_TIMEOUT)
    assert use() == (0, 0), "(requests in flight, money held) with no request running"
    # The team is admitted at its full concurrency.
    burst = Load(
        scenario.stack.web.base_url,
        tenant.key,
        scenario.timeline,
        TEAM_CONCURRENCY,
        LIMIT,
        MAX_TOKENS,
    )
    with (
        ThreadPoolExecutor(TEAM_CONCURRENCY) as pool,
        httpx.Client(base_url=burst.base_url, timeout=30) as client,
    ):
        answers = list(
            pool.map(
                lambda n: burst.send(client, f"burst-{n:03d}", stream=False),
                range(TEAM_CONCURRENCY),
            )
        )
    assert [(a.status, a.code, a.message) for a in answers if not a.complete] == []


def test_the_usage_stream_drains_and_the_credit_ledger_is_charged(scenario: Scenario) -> None:
    """The consumers took over the events the killed one held; Celery's charge task (sent now
    rather than awaited from beat) debits the prepaid credit with exactly the usage ledger."""
    client = redis_lib.Redis.from_url(scenario.stack.redis.redis_url)
    try:
        drained = eventually(
            lambda: pending(client) == 0 and client.xlen(STREAM_KEY) == 0,
            "the usage stream drained",
            SETTLE_TIMEOUT,
        )
        assert drained, (pending(client), client.xlen(STREAM_KEY))
    finally:
        client.close()
    ledger = scenario.ledger
    assert ledger.spend(None) > 0
    # An app of its own for the stack's broker; not the current app, which the rest of the
    # test run's tasks go through.
    app = Celery(broker=scenario.stack.redis.redis_url, set_as_current=False)
    try:
        app.send_task("billing.charge_usage")
    finally:
        app.close()
    charged = eventually(
        lambda: ledger.charged() == ledger.spend(None), "usage charged", SETTLE_TIMEOUT
    )
    assert charged, (ledger.charged(), ledger.spend(None))
