"""The partitioned usage ledger, measured on PostgreSQL (part of ``make bench``).

    python scripts/services.py -- python bench/ledger.py [--hour-rows N] [--ledger-rows N] ...

On the throwaway PostgreSQL and Redis that scripts/services.py starts:

1. **Consumer throughput**: ``--events`` usage events on the Redis stream, drained by one
   ``billing.consumer.Consumer`` in this process (parse, price, COPY, ON CONFLICT insert, ack),
   in events per second of wall time and of this process's CPU. Beside it, the same priced rows
   written by the two bulk paths alone: COPY through a temporary table (what ``ingest`` does on
   PostgreSQL) and Django's multi-row ``bulk_create(ignore_conflicts=True)`` (what it did).
2. **An hour's rollup**: ``--hour-rows`` ledger rows in one hour (``manage.py generate_ledger
   --hours 1``), rolled up by ``billing.rollups.rebuild``, twice (the second with the
   partition in cache).
3. **A large ledger**: ``--ledger-rows`` rows over ``--days`` days and a year of hourly rollups
   for ``--teams`` teams, then the usage dashboard (``billing.dashboard.summary``, 30 and 365
   days), the request log's first page (all requests, errors only, by request id), the API's
   count of a team's requests, and the rollup's late-row check, each the median of five runs
   after one warm-up, with the partitions each plan touched and its buffers.

Writes bench/results/ledger-latest.json and .md; ``bench/update_docs.py`` copies the .md into
BENCHMARKS.md. Sizes are arguments so a bigger machine can run the issue's 100 million rows.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))
if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
    raise SystemExit("bench/ledger.py needs DATABASE_URL=postgres://... (scripts/services.py)")
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "BATON_MASTER_KEYS": "bench1:" + base64.b64encode(os.urandom(32)).decode(),
        "BATON_API_KEY_PEPPER": secrets.token_urlsafe(32),
        "BATON_DATA_DIR": tempfile.mkdtemp(prefix="bench-ledger-"),
        "LOG_LEVEL": "ERROR",
    }
)

import django  # noqa: E402

django.setup()

import redis  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import Team  # noqa: E402
from billing import partitions, rollups  # noqa: E402
from billing.consumer import Consumer  # noqa: E402
from billing.dashboard import DateRange, summary  # noqa: E402
from billing.events import STREAM_KEY, UsageEvent  # noqa: E402
from billing.ledger import Pricer, _copy, record_from_event  # noqa: E402
from billing.models import HourlyUsage, Price, UsageRecord  # noqa: E402
from billing.periods import HOUR, floor_hour  # noqa: E402
from billing.usage_views import log_records  # noqa: E402

PARTITION = re.compile(r"on (billing_usagerecord_(?:p\d{8}|default))")


def timed(run: Callable[[], Any], repeat: int = 5) -> dict[str, float]:
    run()  # warm-up
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return {"median_ms": statistics.median(samples), "min_ms": min(samples)}


def plan_of(query: Any) -> dict[str, Any]:
    """Which ledger partitions a query's plan lists and which it ran, and its buffers."""
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) " + sql, params)
        text = "\n".join(row[0] for row in cursor.fetchall())
    planned = set(PARTITION.findall(text))
    never = {
        match.group(1)
        for match in re.finditer(r"on (billing_usagerecord_\w+) [^\n]*never executed", text)
    }
    # The first Buffers line is the top node's: everything the query touched.
    top = next((line for line in text.splitlines() if "Buffers:" in line), "")
    hit = sum(int(n) for n in re.findall(r"shared hit=(\d+)", top))
    read = sum(int(n) for n in re.findall(r" read=(\d+)", top))
    return {
        "partitions_planned": len(planned),
        "partitions_run": len(planned - never),
        "top_buffers_hit": hit,
        "top_buffers_read": read,
    }


def machine() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
        cursor.execute("SHOW shared_buffers")
        shared = cursor.fetchone()[0]
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": server,
        "shared_buffers": shared,
    }


def neighbours() -> dict[str, Any]:
    """What else ran on the machine: the load average and the busiest other processes."""
    load = os.getloadavg()
    top = subprocess.run(
        ["ps", "-eo", "pcpu,comm", "--sort=-pcpu", "--no-headers"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()[:6]
    return {"load_1m": round(load[0], 2), "load_5m": round(load[1], 2), "busiest": top}


def ledger_bytes() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits "
            "WHERE inhparent = 'billing_usagerecord'::regclass"
        )
        return int(cursor.fetchone()[0])


def events_for(teams: list[Team], count: int, at: datetime) -> list[UsageEvent]:
    models = list(
        Price.objects.filter(currency="USD").values_list("provider_id", "model").distinct()[:4]
    )
    keys = [str(uuid.uuid4()) for _ in range(50)]  # a team's keys: a few, not one a request
    out = []
    for n in range(count):
        provider, model = models[n % len(models)]
        out.append(
            UsageEvent(
                request_id="req_" + uuid.uuid4().hex,
                team_id=str(teams[n % len(teams)].pk),
                api_key_id=keys[n % len(keys)],
                endpoint="chat",
                alias=model,
                credential_id=None,
                provider=provider,
                upstream_model=model,
                prompt_tokens=1000 + n % 500,
                cached_tokens=0,
                cache_write_tokens=0,
                completion_tokens=200 + n % 300,
                reasoning_tokens=0,
                estimated=False,
                status=200 if n % 20 else 502,
                error_class="" if n % 20 else "upstream_error",
                streamed=bool(n % 2),
                attempts=1,
                latency_ms=400.0 + n % 900,
                ttfb_ms=120.0,
                overhead_ms=0.4,
                created_at=(at + timedelta(milliseconds=n)).timestamp(),
            )
        )
    return out


def consumer_throughput(teams: list[Team], count: int) -> dict[str, Any]:
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    # In the current hour: never in the hour the rollup phase measures (the previous one),
    # whose 240 rollup rows became 100,240 when these events (then a key each) fell into it.
    now = timezone.now()
    events = events_for(teams, count, max(floor_hour(now), now - timedelta(minutes=30)))
    pipe = client.pipeline(transaction=False)
    for n, event in enumerate(events):
        pipe.xadd(STREAM_KEY, {"event": event.to_json()})
        if n % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    consumer = Consumer(client, name="bench-ledger")
    cpu, wall = time.process_time(), time.perf_counter()
    result = consumer.drain(seconds=3600)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert result.read == count and result.written == count, result

    # The two bulk paths alone, on rows already priced (fresh request ids each time).
    paths: dict[str, float] = {}
    sample = events_for(teams, min(count, 20_000), timezone.now() - timedelta(minutes=20))
    for name in ("copy", "bulk_create"):
        rows = [record_from_event(event) for event in sample]
        for row in rows:
            row.request_id = "req_" + uuid.uuid4().hex
            row.ingested_at = timezone.now()
        Pricer().price_all(rows)
        started = time.perf_counter()
        for offset in range(0, len(rows), 500):
            with transaction.atomic():
                if name == "copy":
                    _copy(rows[offset : offset + 500])
                else:
                    UsageRecord.objects.bulk_create(
                        rows[offset : offset + 500], ignore_conflicts=True, batch_size=500
                    )
        paths[name] = len(rows) / (time.perf_counter() - started)
    return {
        "events": count,
        "batch": consumer.batch,
        "wall_s": wall,
        "events_per_s": count / wall,
        "events_per_cpu_s": count / cpu,
        "copy_rows_per_s": paths["copy"],
        "bulk_create_rows_per_s": paths["bulk_create"],
        "path_rows": len(sample),
    }


def hour_rollup(rows: int, teams: int) -> dict[str, Any]:
    started = time.perf_counter()
    call_command(
        "generate_ledger",
        rows=rows,
        teams=teams,
        hours=1,
        rollup_days=0,
        stdout=io.StringIO(),
    )
    generated = time.perf_counter() - started
    hour = floor_hour(timezone.now()) - HOUR
    in_hour = UsageRecord.objects.filter(created_at__gte=hour, created_at__lt=hour + HOUR).count()
    runs = []
    for _ in range(2):
        started = time.perf_counter()
        written = rollups.rebuild(hour, hour + HOUR)
        runs.append(time.perf_counter() - started)
    plan = plan_of(rollups.grouped(hour, hour + HOUR))
    return {
        "rows": in_hour,
        "generate_s": generated,
        "rollup_rows": written,
        "first_s": runs[0],
        "second_s": runs[1],
        "partitions_planned": plan["partitions_planned"],
    }


def large_ledger(rows: int, teams: int, days: int) -> dict[str, Any]:
    started = time.perf_counter()
    call_command(
        "generate_ledger",
        rows=rows,
        teams=teams,
        days=days,
        rollup_days=365,
        stdout=io.StringIO(),
    )
    generated = time.perf_counter() - started
    team = Team.objects.filter(name="ledger-bench-0").get()
    today = timezone.now().date()
    since = timezone.now() - timedelta(days=90)
    page = lambda q: list(q.order_by("-created_at", "-pk")[:51])  # noqa: E731
    some_id = UsageRecord.objects.filter(team=team).values_list("request_id", flat=True)[:1][0]
    queries: dict[str, tuple[Callable[[], Any], Any]] = {
        "dashboard, 30 days": (
            lambda: summary(team.pk, DateRange(today - timedelta(days=29), today), "USD"),
            None,
        ),
        "dashboard, 365 days": (
            lambda: summary(team.pk, DateRange(today - timedelta(days=364), today), "USD"),
            None,
        ),
        "request log, first page": (
            lambda: page(log_records(team.pk, since)),
            log_records(team.pk, since).order_by("-created_at", "-pk")[:51],
        ),
        "request log, errors only": (
            lambda: page(log_records(team.pk, since).filter(status__gte=400)),
            log_records(team.pk, since).filter(status__gte=400).order_by("-created_at", "-pk")[:51],
        ),
        "request log, by request id": (
            lambda: page(log_records(team.pk, since).filter(request_id=some_id)),
            log_records(team.pk, since).filter(request_id=some_id).order_by("-created_at")[:51],
        ),
        "request API, a page of 100 (cursor)": (
            lambda: list(
                UsageRecord.objects.filter(team=team, created_at__gte=since).order_by(
                    "-created_at", "-pk"
                )[:101]
            ),
            UsageRecord.objects.filter(team=team, created_at__gte=since).order_by(
                "-created_at", "-pk"
            )[:101],
        ),
        "count of the team's rows (what the API's pages no longer run)": (
            lambda: log_records(team.pk, None).count(),
            None,
        ),
        "rollup's late-row check (every minute)": (
            lambda: rollups.late_hours(
                timezone.now() - timedelta(minutes=6), floor_hour(timezone.now())
            ),
            UsageRecord.objects.filter(
                ingested_at__gte=timezone.now() - timedelta(minutes=6),
                created_at__lt=floor_hour(timezone.now()),
            ),
        ),
    }
    measured = {}
    for name, (run, query) in queries.items():
        measured[name] = timed(run)
        if query is not None:
            measured[name] |= plan_of(query)
    return {
        "rows": UsageRecord.objects.count(),
        "team_rows": UsageRecord.objects.filter(team=team).count(),
        "teams": teams,
        "days": days,
        "partitions": len(partitions.days()),
        "bytes": ledger_bytes(),
        "rollup_rows": HourlyUsage.objects.count(),
        "team_rollup_rows": HourlyUsage.objects.filter(team=team).count(),
        "generate_s": generated,
        "queries": measured,
    }


# What the plan column says of the queries measured without a plan.
NOTES = {
    "dashboard, 30 days": "rollups only",
    "dashboard, 365 days": "rollups only",
    "count of the team's rows (what the API's pages no longer run)": (
        "every partition in the window, whole"
    ),
}


def render(r: dict[str, Any]) -> str:
    m, c, h, big = r["machine"], r["consumer"], r["hour"], r["ledger"]
    lines = [
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}; "
        f"Python {m['python']}; PostgreSQL {m['postgresql']} (shared_buffers {m['shared_buffers']},"
        " otherwise defaults), on the same machine as the benchmark",
        f"- Load average before / after: {r['before']['load_1m']} / {r['after']['load_1m']} "
        "(other work on the machine shared its 2 cores)",
        f"- Finished {r['finished_at']}, run took {r['elapsed_s']:.0f} s",
        "",
        "| consumer into PostgreSQL (one process) | value |",
        "| --- | --- |",
        f"| usage events drained from the Redis stream, batches of {c['batch']} | "
        f"{c['events']:,} |",
        f"| events per second (wall time) | **{c['events_per_s']:,.0f}** |",
        f"| events per second of the consumer's own CPU | {c['events_per_cpu_s']:,.0f} |",
        f"| priced rows per second, COPY + INSERT ... ON CONFLICT (now) | "
        f"{c['copy_rows_per_s']:,.0f} |",
        f"| priced rows per second, multi-row bulk_create (before) | "
        f"{c['bulk_create_rows_per_s']:,.0f} |",
        "",
        "| one hour's rollup | value |",
        "| --- | --- |",
        f"| ledger rows in the hour | {h['rows']:,} |",
        f"| rollup rows it gives | {h['rollup_rows']:,} |",
        f"| `rebuild` of the hour, first / again | **{h['first_s']:.1f} s** / {h['second_s']:.1f} s |",
        f"| partitions in the rollup query's plan | {h['partitions_planned']} |",
        "",
        f"Large ledger: **{big['rows']:,} rows** over {big['days']} days in {big['partitions']} "
        f"daily partitions ({big['bytes'] / 2**30:.1f} GiB with indexes), {big['teams']} teams "
        f"(the measured team has {big['team_rows']:,} rows), and {big['rollup_rows']:,} hourly "
        f"rollup rows for a year ({big['team_rollup_rows']:,} of the team's). Generated in "
        f"{big['generate_s']:.0f} s. Each query: median of 5 after a warm-up.",
        "",
        "| query | median | partitions planned / run | buffers (top node) |",
        "| --- | --- | --- | --- |",
    ]
    for name, q in big["queries"].items():
        parts = (
            f"{q['partitions_planned']} / {q['partitions_run']}"
            if "partitions_planned" in q
            else NOTES.get(name, "")
        )
        buffers = (
            f"{q['top_buffers_hit']} hit, {q['top_buffers_read']} read"
            if "top_buffers_hit" in q
            else ""
        )
        lines.append(f"| {name} | {q['median_ms']:.1f} ms | {parts} | {buffers} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--render", action="store_true", help="Only write the .md again from the last .json."
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--hour-rows", type=int, default=3_600_000)
    parser.add_argument("--ledger-rows", type=int, default=10_000_000)
    parser.add_argument("--teams", type=int, default=20)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    if args.render:
        last = json.loads((RESULTS / "ledger-latest.json").read_text())
        (RESULTS / "ledger-latest.md").write_text(render(last))
        return 0
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    report: dict[str, Any] = {"machine": machine(), "before": neighbours()}
    call_command(
        "generate_ledger",
        rows=0,
        teams=args.teams,
        rollup_days=0,
        verbosity=0,
        stdout=io.StringIO(),
    )
    teams = list(Team.objects.filter(name__startswith="ledger-bench-"))
    print("consumer throughput...", flush=True)
    report["consumer"] = consumer_throughput(teams, args.events)
    print(f"  {report['consumer']['events_per_s']:,.0f} events/s", flush=True)
    print(f"an hour of {args.hour_rows:,} rows...", flush=True)
    report["hour"] = hour_rollup(args.hour_rows, args.teams)
    print(f"  rollup {report['hour']['first_s']:.1f} s", flush=True)
    print(f"a ledger of {args.ledger_rows:,} rows...", flush=True)
    report["ledger"] = large_ledger(args.ledger_rows, args.teams, args.days)
    report["after"] = neighbours()
    report["elapsed_s"] = time.perf_counter() - started
    report["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ledger-latest.json").write_text(json.dumps(report, indent=2, default=str))
    text = render(report)
    (RESULTS / "ledger-latest.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
