"""Real processes: a Celery worker that was not running, consumers killed with
SIGKILL, and a web process killed after accepting requests. No usage event
is lost and none is counted twice."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
from django.conf import settings
from django.utils import timezone

from billing.consumer import GROUP, LEASE_PREFIX
from billing.events import STREAM_KEY
from billing.models import BillingRecord, HourlyUsage, UsageRecord
from billing.tasks import consume_usage_task, rollup_usage_task, update_billing_records_task
from tests.metering.conftest import Metered, event
from tests.processes import ROOT, Program, baton, baton_environment, celery_command
from tests.quotas.conftest import Quota, chat


def environment(**extra: str) -> dict[str, str]:
    return baton_environment({"REDIS_URL": settings.REDIS_URL, **extra})


@contextlib.contextmanager
def celery_worker(**env: str) -> Iterator[Program]:
    worker = Program(
        celery_command("worker", "--pool", "solo", "--without-mingle", "--without-gossip"),
        environment(**env),
    )
    try:
        yield worker
    finally:
        worker.kill()
        worker.stop()


def dying_consumer(mode: str, batch: int) -> str:
    """Run ``consumer_probe`` until it has read (then kill it) or killed itself."""
    probe = subprocess.Popen(
        [sys.executable, "-m", "tests.metering.consumer_probe", mode, str(batch)],
        cwd=ROOT,
        env=environment(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert probe.stdout is not None
    line = probe.stdout.readline().strip()
    probe.kill()
    probe.wait(10)
    return line


def wait_for(check: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_events_from_while_the_worker_was_down_are_all_billed_once(
    transactional_db: None, metered: Metered, redis_client: Any
) -> None:
    acme = metered.cast.acme
    key = metered.keys[str(acme.pk)][0]
    batch = [event(acme.pk, key, timezone.now(), model="meter-large") for _ in range(30)]
    for item in batch:
        redis_client.xadd(STREAM_KEY, {"event": item.to_json()})

    # Two consumers die on the way: one after reading, one after its commit.
    assert dying_consumer("read", 10) == "read 10"
    assert dying_consumer("commit", 10) == "committed 10"
    assert UsageRecord.objects.count() == 10
    assert redis_client.xpending(STREAM_KEY, GROUP)["pending"] == 20
    # The one that died holding the stream's lease: no one reads the stream until it expires.
    assert redis_client.get(LEASE_PREFIX + "0") == b"probe-commit"
    wait_for(lambda: not redis_client.exists(LEASE_PREFIX + "0"))

    # Queued while no worker runs, as beat would.
    consume_usage_task.delay()
    rollup_usage_task.delay()
    update_billing_records_task.delay()
    with celery_worker(BATON_USAGE_CLAIM_IDLE_SECONDS="0"):
        wait_for(lambda: BillingRecord.objects.filter(team=acme).exists())
    ids = sorted(UsageRecord.objects.values_list("request_id", flat=True))
    assert ids == sorted(item.request_id for item in batch)
    assert redis_client.xlen(STREAM_KEY) == 0
    cost = sum((r.cost or Decimal(0) for r in UsageRecord.objects.all()), Decimal(0))
    assert cost > 0
    assert sum(h.cost for h in HourlyUsage.objects.filter(team=acme)) == cost
    assert BillingRecord.objects.get(team=acme).total == cost


def test_a_killed_web_process_loses_no_accepted_event(quota: Quota, redis_client: Any) -> None:
    with baton() as web:
        accepted = []
        for _ in range(5):
            response = httpx.post(
                web.base_url + "/v1/chat/completions",
                json=chat(10),
                headers={"authorization": f"Bearer {quota.key}"},
                timeout=15,
            )
            assert response.status_code == 200
            accepted.append(response.headers["x-request-id"])
        wait_for(lambda: redis_client.xlen(STREAM_KEY) >= 5, 10)
        web.kill()  # SIGKILL: no graceful shutdown
    from billing.consumer import Consumer

    Consumer(redis_client, name="after-the-crash").drain(seconds=30)
    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == sorted(accepted)
    assert {r.cost for r in UsageRecord.objects.all()} == {Decimal("0.01")}
