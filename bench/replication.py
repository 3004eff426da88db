"""What waiting for a replica costs the usage sink, on a real Sentinel group and Redis Cluster.

    python bench/replication.py     # about half a minute -> bench/results/replication-*.{json,md}

The relay's sink (gateway/metering.py) appends each batch of usage events to the Redis
streams and, with replicas (``BATON_USAGE_WAIT_REPLICAS``), ends it with ``WAIT 1 timeout``
(and, on one primary, ``INFO replication``: which primary took it) on the same connection.
This times ``RedisStreamSink.write`` itself, batch by batch, with and without that WAIT, on
the local Sentinel group and Cluster of scripts/services.py
(loopback: the replication round trip here is the floor; across zones add the network's
round trip to a replica, once per batch). A batch is flushed every 50 ms or every 500
events, off the request path: the figure is added latency between a request's end and its
event being durable, not request latency. Then the loss window: the same writes with the
replicas frozen (SIGSTOP), where each batch waits the whole timeout and is counted as
unreplicated.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
sys.path.insert(0, str(ROOT))

BATCHES = (1, 100, 500)
ROUNDS = 200
STREAMS = 4


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.pop("REDIS_URL", None)  # each measurement makes its own clients
    import django

    django.setup()


def events(count: int) -> list[Any]:
    from billing.events import UsageEvent

    teams = [str(uuid.uuid4()) for _ in range(16)]
    return [
        UsageEvent(
            request_id="req_" + uuid.uuid4().hex,
            team_id=teams[i % len(teams)],
            api_key_id=str(uuid.uuid4()),
            endpoint="chat",
            alias="gpt-4o",
            credential_id=str(uuid.uuid4()),
            provider="openai",
            upstream_model="gpt-4o",
            prompt_tokens=1200,
            cached_tokens=0,
            cache_write_tokens=0,
            completion_tokens=300,
            reasoning_tokens=0,
            estimated=False,
            status=200,
            error_class="",
            streamed=True,
            attempts=1,
            latency_ms=812.5,
            ttfb_ms=210.0,
            overhead_ms=0.4,
            created_at=time.time(),
        )
        for i in range(count)
    ]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def time_writes(url: str, size: int, rounds: int, wait_ms: int) -> list[dict[str, Any]]:
    """Batches of ``size`` events written without and with WAIT 1, alternately, so that
    whatever else the machine does falls on both alike."""
    from config.redis_clients import async_client
    from gateway.metering import RedisStreamSink

    redis = async_client(url, socket_timeout=5 + wait_ms / 1000)
    sinks = [
        RedisStreamSink(redis, url=url, streams=STREAMS, replicas=replicas, wait_ms=wait_ms)
        for replicas in (0, 1)
    ]
    took: list[list[float]] = [[], []]
    try:
        for index in range(rounds + 5):
            order = (0, 1) if index % 2 else (1, 0)
            for which in order:
                batch = events(size)
                started = time.perf_counter()
                await sinks[which].write(batch)
                if index >= 5:  # the first ones open the connections
                    took[which].append((time.perf_counter() - started) * 1000)
        await redis.flushdb()
    finally:
        for sink in sinks:
            await sink.close()
        await redis.aclose()
    return [
        {
            "replicas": replicas,
            "batch": size,
            "rounds": rounds,
            "p50_ms": round(statistics.median(took[replicas]), 3),
            "p99_ms": round(percentile(took[replicas], 0.99), 3),
            "mean_ms": round(statistics.fmean(took[replicas]), 3),
            "unreplicated_events": sinks[replicas].unreplicated,
        }
        for replicas in (0, 1)
    ]


def measure(url: str) -> list[dict[str, Any]]:
    rows = []
    for size in BATCHES:
        rows += asyncio.run(time_writes(url, size, ROUNDS, 1000))
    return rows


def frozen(group: Any, url: str, wait_ms: int) -> dict[str, Any]:
    """Writes while every replica is stopped: each waits the whole timeout."""
    primary = group.primary_port()
    paused = [s for s in group.servers if s.port != primary]
    for server in paused:
        os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        return asyncio.run(time_writes(url, 100, 10, wait_ms))[1]
    finally:
        for server in paused:
            os.kill(server.proc.pid, signal.SIGCONT)


def render(report: dict[str, Any]) -> str:
    lines = [
        f"Measured {report['when']} on {report['machine']} (loopback, Redis {report['redis']}); "
        f"`python bench/replication.py`. Each row: {ROUNDS} batches written by "
        "`RedisStreamSink.write` to 4 streams, without and with WAIT alternately.",
        "",
        "| topology | events per batch | no WAIT p50 / p99 (ms) | WAIT 1 (+ INFO on Sentinel) p50 / p99 (ms) | added p50 (ms) | unreplicated |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for topology in ("sentinel", "cluster"):
        rows = report[topology]
        for size in BATCHES:
            off = next(r for r in rows if r["batch"] == size and r["replicas"] == 0)
            on = next(r for r in rows if r["batch"] == size and r["replicas"] == 1)
            lines.append(
                f"| {topology} | {size} | {off['p50_ms']:.2f} / {off['p99_ms']:.2f} | "
                f"{on['p50_ms']:.2f} / {on['p99_ms']:.2f} | {on['p50_ms'] - off['p50_ms']:.2f} | "
                f"{on['unreplicated_events']} |"
            )
    stuck = report["frozen"]
    lines += [
        "",
        f"Replicas frozen (SIGSTOP), `BATON_USAGE_WAIT_TIMEOUT_MS={stuck['wait_ms']}`: each batch "
        f"took {stuck['p50_ms']:.0f} ms (p50: the timeout, rounded up to the server's 100 ms "
        f"clock at `hz 10`) and every event written ({stuck['unreplicated_events']}) was counted "
        "in `baton_usage_unreplicated_events_total`: the loss window is those events, lost only "
        "if the primary dies before a replica has them, a replica is promoted, and the web "
        "process stops before it writes them to the new primary (it keeps them until then).",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    setup_django()
    from scripts.services import redis_cluster, redis_sentinel

    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    import subprocess

    report["redis"] = (
        subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=False)
        .stdout.split()[2]
        .removeprefix("v=")
    )
    with redis_sentinel(replicas=1) as group:
        report["sentinel"] = measure(group.url)
        report["frozen"] = {**frozen(group, group.url, 200), "wait_ms": 200}
    with redis_cluster() as cluster:
        report["cluster"] = measure(cluster.url)
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"replication-{stamp}.json").write_text(json.dumps(report, indent=2))
    text = render(report)
    (RESULTS / f"replication-{stamp}.md").write_text(text)
    (RESULTS / "replication-latest.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
