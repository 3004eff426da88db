"""What a request in flight leaves behind when something dies: its durable record is billed
once, its concurrency slot comes back within a lease, and the spend counters end equal to
the ledger (billing/quota/reaper.py, billing/quota/reconcile.py, gateway/admission.py).

The relay whose process dies runs as a real subprocess (``tests/processes.py``) and is
killed with SIGKILL or frozen with SIGSTOP; the reaper and the reconciliation are the
Celery tasks themselves, called by the test the way beat calls them; leases are one
second so that what production does in a minute happens here in seconds.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import tempfile
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, cast

import httpx
import orjson
import pytest
from django.conf import settings as django_settings

from billing import credits
from billing.models import Price, UsageRecord
from billing.money import to_nanos
from billing.quota import script
from billing.tasks import reap_inflight_task, reconcile_counters_task
from config.redis_clients import sync_client
from scripts.services import Server, free_port, redis_server
from tests.polling import until
from tests.processes import baton
from tests.quotas.conftest import Quota, chat, ledger_rows
from tests.relay.conftest import make_credential, make_route

LEASE = "1"  # seconds: renewed every third of it; a reaper takes a record 2 1/3 leases on


@pytest.fixture(autouse=True)
def _short_leases(settings: Any) -> None:
    # The reaper and reconciliation run in this process (as Celery would), with the same
    # lease as the relays under test.
    settings.BATON_LEASE_SECONDS = LEASE


def route(quota: Quota, name: str, faults: str) -> None:
    """An alias ``name`` to the fake upstream's demo model, behind fault directives."""
    credential = make_credential(quota.team, name, f"{quota.fake.base_url}/_f/{faults}/v1")
    make_route(quota.team, name, (credential, "demo-chat", 0))


def post(base: str, key: str, body: dict[str, Any], timeout: float = 30) -> httpx.Response:
    return httpx.post(
        base + "/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {key}"},
        timeout=timeout,
    )


def in_background(function: Any, *args: Any) -> tuple[threading.Thread, list[Any]]:
    """Run ``function(*args)`` in a thread; its result (or error) lands in the list."""
    out: list[Any] = []

    def target() -> None:
        try:
            out.append(function(*args))
        except Exception as exc:
            out.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


def records(team_id: str, url: str | None = None) -> list[script.Record]:
    """The team's in-flight records (lease live or ended) in the limits Redis."""
    client = sync_client(url or django_settings.BATON_LIMITS_REDIS_URL)
    try:
        members = [
            member
            for name in (script.flight(team_id), script.lapsed(team_id))
            for member in client.zrange(name, 0, -1)
        ]
    finally:
        client.close()
    return [script.Record.parse(cast(bytes, member)) for member in members]


def reported(team_id: str, request_id: str) -> script.Report | None:
    client = sync_client(django_settings.BATON_LIMITS_REDIS_URL)
    try:
        raw = client.hget(script.base(team_id) + ":p", request_id)
    finally:
        client.close()
    return script.Report.parse(raw or b"")


def settles_retried(base_url: str) -> float:
    """A relay's count of settles it could not send and keeps for retry (its /metrics)."""
    text = httpx.get(base_url + "/metrics", timeout=5).text
    found = re.search(
        r'^baton_limits_unavailable_total\{outcome="settle_retried"\} (\S+)$', text, re.M
    )
    return float(found.group(1)) if found else 0.0


def reap_until(condition: Any, what: str) -> Any:
    """Run the reaper (the Celery task) until ``condition`` holds."""

    def step() -> Any:
        reap_inflight_task()
        return condition()

    return until(step, what, timeout=20, interval=0.1)


def ledger_cost(quota: Quota) -> int:
    rows = UsageRecord.objects.filter(team=quota.team)
    return sum(to_nanos(row.cost or Decimal(0)) for row in rows)


def test_a_killed_process_stream_is_billed_once_from_what_it_streamed(quota: Quota) -> None:
    """SIGKILL while a stream is sending tokens: the reaper turns the request's record into
    exactly one estimated ledger row, with the completion tokens its process last
    reported, at the price of the target it went to."""
    route(quota, "trickle", "tps=4;chunks=400")
    with (
        baton(BATON_LEASE_SECONDS=LEASE) as doomed,
        httpx.stream(
            "POST",
            doomed.base_url + "/v1/chat/completions",
            json=chat(500, model="trickle", stream=True),
            headers={"authorization": f"Bearer {quota.key}", "x-request-id": "client-7"},
            timeout=30,
        ) as response,
    ):
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        lines = response.iter_lines()
        content = 0
        while content < 3:  # tokens reached the client
            if '"content"' in next(lines):
                content += 1
        # Its process has told the record how far it got.
        until(
            lambda: (r := reported(str(quota.team.pk), request_id)) and r.completion >= 3,
            "a renewal reporting the streamed tokens",
        )
        doomed.kill()
    last = reported(str(quota.team.pk), request_id)
    assert last is not None and last.target.model == "demo-chat"
    assert UsageRecord.objects.filter(request_id=request_id).count() == 0  # nothing yet

    reap_until(lambda: UsageRecord.objects.filter(request_id=request_id).exists(), "the reaper")
    for _ in range(3):
        reap_inflight_task()  # again and again: still one row
    rows = ledger_rows(1, team=quota.team)
    assert len(rows) == 1
    row = rows[0]
    assert (row.request_id, row.estimated, row.error_class, row.streamed) == (
        request_id,
        True,
        "relay_lost",
        True,
    )
    assert row.completion_tokens == last.completion >= 3
    assert row.client_request_id == "client-7"  # the client can find it
    assert row.cost == Decimal("0.001") * last.completion  # 1000 USD per 1M output tokens
    # The team's counters took its cost, and its record is gone.
    assert quota.counter("lifetime") == to_nanos(row.cost) == quota.counter("day")
    assert records(str(quota.team.pk)) == []


def test_a_settle_after_the_reaper_billed_the_request_does_not_bill_it_again(
    quota: Quota,
) -> None:
    """A relay frozen (SIGSTOP) past its lease: the reaper bills the request from its
    record; thawed, the relay finishes the request and settles it, which counts nothing,
    and its usage event is a duplicate the ledger ignores."""
    # Input priced too, so that the reaper's estimate is not zero.
    Price.objects.filter(provider_id="openai", model="demo-chat").update(input=Decimal("1000"))
    route(quota, "slow", "latency_ms=1500")
    with baton(BATON_LEASE_SECONDS=LEASE) as frozen:
        thread, answer = in_background(post, frozen.base_url, quota.key, chat(10, model="slow"))
        until(lambda: len(records(str(quota.team.pk))) == 1, "the request's record")
        request_id = records(str(quota.team.pk))[0].request_id
        os.kill(frozen.proc.pid, signal.SIGSTOP)
        try:
            reap_until(
                lambda: UsageRecord.objects.filter(request_id=request_id).exists(),
                "the reaper to bill the frozen relay's request",
            )
        finally:
            os.kill(frozen.proc.pid, signal.SIGCONT)
        reaped = UsageRecord.objects.get(request_id=request_id)
        assert reaped.estimated and reaped.error_class == "relay_lost"
        counted = quota.counter("lifetime")
        assert reaped.cost is not None and counted == to_nanos(reaped.cost) > 0

        thread.join(30)
        assert answer and isinstance(answer[0], httpx.Response), answer
        assert answer[0].status_code == 200  # the client got its answer
        until(
            lambda: f"request {request_id} was settled after a reaper billed it" in frozen.logs(),
            "the thawed relay's settle",
        )
    real = answer[0].json()["usage"]
    assert to_nanos(Decimal("0.001") * real["total_tokens"]) != counted  # would show if added
    rows = ledger_rows(1, team=quota.team)
    assert [(row.request_id, row.estimated) for row in rows] == [(request_id, True)]
    assert quota.counter("lifetime") == counted == quota.counter("day")


def test_a_lease_nobody_renews_frees_the_concurrency_slot(quota: Quota) -> None:
    """A process killed while it holds the team's only concurrency slot: the slot comes
    back once its lease ends, not after the old 11-minute hold."""
    quota.limits(max_concurrent=1)
    route(quota, "hanging", "hang")
    with baton(BATON_LEASE_SECONDS=LEASE) as doomed, quota.serve() as base:
        in_background(post, doomed.base_url, quota.key, chat(10, model="hanging"))
        until(lambda: len(records(str(quota.team.pk))) == 1, "the hanging request's record")
        refused = post(base, quota.key, chat(10))
        assert refused.status_code == 429
        assert "concurrent" in refused.json()["error"]["message"]
        doomed.kill()
        # Polled: each refused try is another request; the first admitted one is the answer.
        served = until(
            lambda: (r := post(base, quota.key, chat(10))).status_code == 200 and r,
            "the dead process's slot to come back",
            interval=0.1,
        )
    assert served.json()["usage"]["completion_tokens"] > 0


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as servers:
        yield servers


@contextlib.contextmanager
def durable_redis(directory: str, port: int) -> Iterator[Server]:
    """A limits Redis that writes every command to its append-only file before answering,
    as production's AOF does within a second: a restart keeps everything."""
    with redis_server(
        "--appendfsync", "always", port=port, directory=directory, appendonly=True
    ) as server:
        yield server


def test_counters_and_balance_equal_the_ledger_after_redis_stops_mid_request(
    quota: Quota, settings: Any, stack: contextlib.ExitStack
) -> None:
    """The limits Redis stops while a request runs and comes back after it ended: the
    settle that failed is retried, so the day, month and lifetime counters, and the
    prepaid balance the relay admits against, equal the ledger."""
    quota.limits(daily_budget=Decimal("1"))
    route(quota, "slow", "latency_ms=1500")
    directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="baton-limits-"))
    port = free_port()
    limits = stack.enter_context(durable_redis(directory, port))
    settings.BATON_LIMITS_REDIS_URL = limits.redis_url
    settings.BATON_LIMITS_REDIS_TIMEOUT = 0.3
    with quota.serve() as base:
        assert post(base, quota.key, chat(10)).status_code == 200
        until(lambda: records(str(quota.team.pk)) == [], "the first request's settle")
        thread, answer = in_background(post, base, quota.key, chat(10, model="slow"))
        (record,) = until(lambda: records(str(quota.team.pk)), "the slow request's record")
        assert record.alias == "slow"
        limits.kill()
        thread.join(30)
        assert answer[0].status_code == 200  # served while the limits store was away
        stack.enter_context(durable_redis(directory, port))
        rows = ledger_rows(2, team=quota.team)
        assert len(rows) == 2
        spent = ledger_cost(quota)
        assert spent == to_nanos(Decimal("0.02"))
        until(
            lambda: [quota.counter(p) for p in ("day", "month", "lifetime")] == [spent] * 3,
            "the counters to equal the ledger",
        )
        balance = credits.balance(quota.team)
        assert balance.live and balance.spent == Decimal("0.02")
        assert records(str(quota.team.pk)) == []


def test_a_relay_killed_with_its_settle_pending_is_settled_from_the_ledger(
    quota: Quota, settings: Any, stack: contextlib.ExitStack
) -> None:
    """Worse: the limits Redis is down when the request ends, and the relay is killed
    before it could retry the settle. Its usage event is already in the usage stream; the
    reaper finds it in the ledger and settles the record at the ledger's cost (not its
    estimate), so the counters and the prepaid balance equal the ledger."""
    quota.limits(daily_budget=Decimal("1"))
    # The fake writes 10 tokens where 50 are allowed: the estimate is five times the cost.
    route(quota, "slow", "latency_ms=1500;chunks=10")
    directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="baton-limits-"))
    port = free_port()
    limits = stack.enter_context(durable_redis(directory, port))
    settings.BATON_LIMITS_REDIS_URL = limits.redis_url
    env = {
        "BATON_LEASE_SECONDS": LEASE,
        "BATON_LIMITS_REDIS_URL": limits.redis_url,
        "BATON_LIMITS_REDIS_TIMEOUT": "0.3",
    }
    with baton(**env) as doomed:
        assert post(doomed.base_url, quota.key, chat(10)).status_code == 200
        until(lambda: records(str(quota.team.pk)) == [], "the first request's settle")
        thread, answer = in_background(post, doomed.base_url, quota.key, chat(50, model="slow"))
        (record,) = until(lambda: records(str(quota.team.pk)), "the slow request's record")
        assert record.alias == "slow"
        limits.kill()
        thread.join(30)
        assert answer[0].status_code == 200
        # At least once: it retries each third of a lease, which can come before a poll.
        until(lambda: settles_retried(doomed.base_url) >= 1, "the relay to fail to settle")
        doomed.kill()
    stack.enter_context(durable_redis(directory, port))
    rows = ledger_rows(2, team=quota.team)  # the usage stream reached the ledger
    assert len(rows) == 2 and not any(row.estimated for row in rows)
    spent = ledger_cost(quota)
    assert spent == to_nanos(Decimal("0.02")) and record.held > to_nanos(Decimal("0.01"))
    reap_until(lambda: records(str(quota.team.pk)) == [], "the reaper")
    assert ledger_rows(2, team=quota.team) == rows  # nothing more written
    assert [quota.counter(p) for p in ("day", "month", "lifetime")] == [spent] * 3
    balance = credits.balance(quota.team)
    assert balance.live and balance.spent == Decimal("0.02")


def test_reconciliation_raises_a_counter_left_low_to_the_ledger(quota: Quota) -> None:
    """A counter that missed spend (whatever lost it) is raised to the ledger by the
    periodic reconciliation, the prepaid balance with it; one ahead of the ledger (events
    still on their way) is never lowered."""
    quota.limits(daily_budget=Decimal("1"))
    with quota.serve() as base:
        for _ in range(3):
            assert post(base, quota.key, chat(10)).status_code == 200
        quota.settled(Decimal("0.03"))
    ledger_rows(3, team=quota.team)
    spent = ledger_cost(quota)
    state = script.state(str(quota.team.pk))
    day, month = script.periods()
    client = sync_client(django_settings.BATON_LIMITS_REDIS_URL)
    try:
        # Lost: one request's spend never reached the counters.
        low = spent - to_nanos(Decimal("0.01"))
        client.hset(state, mapping={"d" + day: low, "m" + month: low, "l": low})
        # What the relay admits against (credit not yet debited from the credit ledger).
        assert credits.balance(quota.team).spent == Decimal("0.02")
        result = reconcile_counters_task()
        assert result is not None and result["raised"] >= 1
        assert [quota.counter(p) for p in ("day", "month", "lifetime")] == [spent] * 3
        assert credits.balance(quota.team).spent == Decimal("0.03")
        # Ahead of the ledger: left as it is.
        high = spent + to_nanos(Decimal("0.01"))
        client.hset(state, "l", high)
        reconcile_counters_task()
        assert quota.counter("lifetime") == high
    finally:
        client.close()


def test_the_tasks_leave_the_embedded_default_to_its_relay(settings: Any) -> None:
    """Without a limits Redis the records and counters live in the relay process, which
    reaps and reconciles them itself: the Celery tasks have nothing to reach."""
    settings.BATON_LIMITS_REDIS_URL = ""
    assert reap_inflight_task() is None
    assert reconcile_counters_task() is None


def test_every_record_field_survives_the_round_trip() -> None:
    record = script.Record(
        request_id="req_1",
        key_id="k",
        started_ms=1,
        held=2,
        prompt=3,
        team_held=True,
        key_held=False,
        endpoint="chat",
        dialect="messages",
        alias="a model with spaces",
        streamed=True,
        target=script.Target("c", "openai", "gpt", 4, 5),
        client_request_id="the client's",
    )
    member = record.member()
    assert member.startswith("req_1 k 1 [")
    assert script.Record.parse(member.encode()) == record
    report = script.Report(record.target, 7)
    assert script.Report.parse(report.dump()) == report
    assert orjson.loads(report.dump())[-1] == 7
