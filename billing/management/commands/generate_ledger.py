"""``manage.py generate_ledger``: a large usage ledger and a year of hourly rollups, for
measuring the partitioned ledger (``bench/ledger.py``) on PostgreSQL.

    manage.py generate_ledger --rows 10000000 --teams 20 --days 30 --rollup-days 365

Makes ``--teams`` teams named ``ledger-bench-N`` (reused by a later run) with three API key
ids each, then ``--rows`` ledger rows spread evenly over the ``--days`` days up to now (today
being the last, cut at the present), or over the last ``--hours`` complete hours, one ``INSERT ... SELECT FROM generate_series`` per day
(or hour): PostgreSQL makes the rows itself and
each statement fills one daily partition, which is faster than any client-side path (COPY
included) because no row crosses the wire. Then one rollup row per hour, team, key and
model for ``--rollup-days`` days (what ``billing.rollups`` would have written for steady
traffic). Costs are in USD and every row points at one "generated usage" credit entry per
team, so the rows count as charged and retention may drop them; balances are not touched
(the entries are of zero amount). Rows are not priced from the catalog: this is data for
measuring queries, not for billing.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from accounts.models import Team
from billing import partitions
from billing.models import CreditEntry
from billing.periods import floor_hour

PREFIX = "ledger-bench-"
KEYS_PER_TEAM = 3
MODELS = (
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4o"),
    ("anthropic", "claude-sonnet-4-5"),
    ("qwen", "qwen-plus"),
)
LEDGER_COLUMNS = (
    "request_id, client_request_id, team_id, api_key_id, endpoint, alias, credential_id, "
    "provider, upstream_model, prompt_tokens, cached_tokens, cache_write_tokens, "
    "cache_write_1h_tokens, completion_tokens, reasoning_tokens, estimated, dialect, egress, "
    "reasoning, status, error_class, streamed, attempts, latency_ms, ttfb_ms, overhead_ms, "
    "created_at, cost, currency, price_id, credit_entry_id, exchange_rate, markup, unpriced, "
    "ingested_at"
)
# One day (or hour) of rows: %(n)s of them at random times in [%(start)s, %(start)s + %(chunk)s),
# each of a random team (and its credit entry), key and model, request ids in time order.
LEDGER_DAY = f"""
INSERT INTO billing_usagerecord ({LEDGER_COLUMNS})
SELECT 'gen_' || %(tag)s || '_' || lpad(n::text, 10, '0'), '', (%(teams)s::uuid[])[t],
       (%(keys)s::uuid[])[k], 'chat', (%(models)s::text[])[m], NULL, (%(providers)s::text[])[m],
       (%(models)s::text[])[m], prompt, 0, 0, 0, completion, 0, false, 'chat', 'chat', '',
       status, CASE WHEN status >= 400 THEN 'upstream_error' ELSE '' END, true, 1,
       latency, latency / 4, 0.5, at, (prompt * 2 + completion * 8) / 1e6, 'USD', NULL,
       (%(entries)s::bigint[])[t], NULL, 0, false, at
FROM (
    SELECT *, row_number() OVER (ORDER BY at) AS n
    FROM (
        SELECT t, (t - 1) * {KEYS_PER_TEAM} + 1 + floor(random() * {KEYS_PER_TEAM})::int AS k,
               1 + floor(random() * {len(MODELS)})::int AS m,
               %(start)s::timestamptz + random() * %(chunk)s::interval AS at,
               floor(random() * 4000)::int AS prompt, floor(random() * 1000)::int AS completion,
               CASE WHEN random() < 0.05 THEN 502 ELSE 200 END AS status,
               exp(6 + random() * 2.5) AS latency
        FROM (SELECT 1 + floor(random() * %(team_count)s)::int AS t
              FROM generate_series(1, %(n)s)) picked
    ) drawn
) x
-- In time order, as the consumer writes: each index grows at a few places, not everywhere.
ORDER BY at
"""  # noqa: S608 (constants only; values are parameters)
# Rollups for [%(start)s, %(end)s): one row per hour, team, key and model.
ROLLUPS = f"""
INSERT INTO billing_hourlyusage (
    team_id, hour, api_key_id, provider, model, currency, requests, errors, estimated,
    unpriced, prompt_tokens, cached_tokens, cache_write_tokens, cache_write_1h_tokens,
    completion_tokens, reasoning_tokens, cost, latency_ms_sum, lat_00, lat_01, lat_02, lat_03,
    lat_04, lat_05, lat_06, lat_07, lat_08, lat_09, lat_10, lat_11, lat_12, lat_13, lat_14,
    lat_15, lat_16, computed_at)
SELECT (%(teams)s::uuid[])[1 + (k - 1) / {KEYS_PER_TEAM}], hour, (%(keys)s::uuid[])[k],
       (%(providers)s::text[])[m], (%(models)s::text[])[m], 'USD', requests, requests / 20, 0,
       0, requests * 2000, 0, 0, 0, requests * 500, 0, requests * 0.008, requests * 900.0,
       0, 0, 0, 0, 0, requests / 4, requests / 2, requests / 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, now()
FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 hour',
                     interval '1 hour') hour
CROSS JOIN generate_series(1, %(key_count)s) k
CROSS JOIN generate_series(1, {len(MODELS)}) m
CROSS JOIN LATERAL (SELECT 1 + floor(random() * 200)::int AS requests) r
ON CONFLICT DO NOTHING
"""  # noqa: S608 (constants only; values are parameters)


class Command(BaseCommand):
    help = "Generate a large usage ledger and a year of rollups (PostgreSQL), for benchmarks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rows", type=int, default=1_000_000, help="Ledger rows to add.")
        parser.add_argument("--teams", type=int, default=10, help="Teams the rows belong to.")
        parser.add_argument("--days", type=int, default=30, help="Days before now they span.")
        parser.add_argument(
            "--hours",
            type=int,
            default=0,
            help="Instead of --days: the last N complete hours (an hour's rollup, measured).",
        )
        parser.add_argument(
            "--rollup-days", type=int, default=365, help="Days of hourly rollups (0: none)."
        )
        parser.add_argument("--seed", type=float, default=0.42, help="PostgreSQL's setseed.")

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("generate_ledger writes PostgreSQL's partitioned ledger only.")
        rows, days, hours = options["rows"], options["days"], options["hours"]
        if rows < 0 or days < 1 or hours < 0 or options["teams"] < 1 or options["rollup_days"] < 0:
            raise CommandError(
                "--rows, --hours and --rollup-days must be >= 0, --days and --teams >= 1."
            )
        teams = self.teams(options["teams"])
        entries = [self.entry(team) for team in teams]
        keys = [uuid.uuid5(team.pk, f"key-{n}") for team in teams for n in range(KEYS_PER_TEAM)]
        params: dict[str, Any] = {
            "teams": [team.pk for team in teams],
            "team_count": len(teams),
            "keys": keys,
            "entries": entries,
            "providers": [provider for provider, _ in MODELS],
            "models": [model for _, model in MODELS],
        }
        now = datetime.now(UTC)
        today = partitions.day_of(now)
        if hours:
            chunk, chunks = timedelta(hours=1), hours
            first = floor_hour(now) - hours * chunk
        else:
            chunk, chunks = timedelta(days=1), days
            first = partitions.start_of(today) - (days - 1) * chunk
        partitions.ensure()  # first: it empties the DEFAULT partition
        partitions.create_days(
            sorted({partitions.day_of(first + n * chunk) for n in range(chunks)})
        )
        tag = uuid.uuid4().hex[:8]  # request ids unique across runs
        started = time.perf_counter()
        written = 0
        with connection.cursor() as cursor:
            cursor.execute("SELECT setseed(%s)", [options["seed"]])
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            fast = bool(cursor.fetchone()[0])
            for n in range(chunks):
                count = rows // chunks + (1 if n < rows % chunks else 0)
                if not count:
                    continue
                start = first + n * chunk
                # Today's rows end now: nothing is dated (or ingested) in the future.
                length = min(chunk, now - start)
                with transaction.atomic():
                    if fast:
                        # The rows' teams and credit entries exist: skip the per-row foreign
                        # key checks (a superuser's setting, for this transaction only).
                        cursor.execute("SET LOCAL session_replication_role = replica")
                    cursor.execute(
                        LEDGER_DAY,
                        {
                            **params,
                            "n": count,
                            "tag": f"{tag}_{n}",
                            "start": start,
                            "chunk": f"{length.total_seconds()} seconds",
                        },
                    )
                written += count
                self.stdout.write(f"  {start:%Y-%m-%d %H:%M}: {count} rows")
            ledger_seconds = time.perf_counter() - started
            rollup_rows = 0
            if options["rollup_days"]:
                end = partitions.start_of(today)
                cursor.execute(
                    ROLLUPS,
                    {
                        **params,
                        "key_count": len(keys),
                        "start": end - timedelta(days=options["rollup_days"]),
                        "end": end,
                    },
                )
                rollup_rows = cursor.rowcount
            cursor.execute("ANALYZE billing_usagerecord")
            cursor.execute("ANALYZE billing_hourlyusage")
        seconds = time.perf_counter() - started
        self.stdout.write(
            f"{written} ledger rows in {ledger_seconds:.1f} s "
            f"({written / max(ledger_seconds, 1e-9):,.0f} rows/s), "
            f"{rollup_rows} rollup rows, {seconds:.1f} s in all"
        )

    def teams(self, count: int) -> list[Team]:
        have = {team.name: team for team in Team.objects.filter(name__startswith=PREFIX)}
        out = []
        for n in range(count):
            name = f"{PREFIX}{n}"
            out.append(have.get(name) or Team.objects.create(name=name))
        return out

    def entry(self, team: Team) -> int:
        found = CreditEntry.objects.filter(team=team, note="generated usage").first()
        if found is None:
            found = CreditEntry.objects.create(
                team=team,
                kind=CreditEntry.Kind.USAGE,
                amount=0,
                currency="USD",
                note="generated usage",
            )
        return int(found.pk)
