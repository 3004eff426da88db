"""The usage ledger: usage events in, priced; old rows out.

``ingest`` turns usage events into ``UsageRecord`` rows priced at ingestion and
writes each request once. A replayed event (a consumer that died before
acknowledging, a retried flush) has the same request id and time and is skipped by
ON CONFLICT DO NOTHING on the ledger's unique key, (request id, ``created_at``). A
request can also arrive twice with different times: the reaper bills a request whose
relay stopped renewing its lease (billing/quota/reaper.py) at the reaper's time, and
a relay that was only frozen settles it later at its own. So a request id already in
the ledger within ``SAME_REQUEST_WINDOW`` of an incoming row's time is skipped too,
checked under the team's transaction-level advisory lock, so that two writers of the
same team never both miss the other (teams are sharded across consumers, so the lock
is not contended across them). The embedded default's ``DatabaseSink`` and the Redis
stream consumer (``billing.consumer``) both write through it. On PostgreSQL a batch is
written with ``COPY`` into a temporary table and moved into the partitioned ledger by
one ``INSERT ... SELECT`` (COPY itself cannot skip duplicates); elsewhere with
multi-row inserts.

Pricing (``Pricer``) takes the price version in force when the request ran,
the operator's exchange rate in force then from the price's currency to the
team's, and the team's markup (or discount), and keeps all three on the row
with the cost, so a later price change never rewrites history. A model with
no price (or no exchange rate) is served at zero cost when
``BATON_UNPRICED_MODELS=zero``: such rows are flagged ``unpriced``, logged,
and listed for operators in the admin.

``prune`` removes rows older than ``BATON_LEDGER_RETENTION_DAYS`` once they
are rolled up and charged; rollups and billing records keep the totals. On
PostgreSQL it drops whole daily partitions (``billing.partitions``); on SQLite
it deletes rows, the only delete the database lets through (``pruning``): the
ledger is append-only there too.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Team
from billing import conf, fillstate, partitions
from billing.events import UsageEvent
from billing.models import Currency, ExchangeRate, Price, UsageRecord
from billing.money import from_nanos
from billing.periods import floor_hour
from billing.pricing import RATE_PLACES, to_rate, with_markup

log = logging.getLogger("baton.billing")

PRUNE_BATCH = 5000


@dataclass(frozen=True, slots=True)
class TeamPricing:
    currency: str
    markup: Decimal


class Pricer:
    """Prices ledger rows in their team's currency. One per batch: the
    catalog, the exchange rates and the teams are read once."""

    def __init__(self) -> None:
        self.teams: dict[str, TeamPricing] = {}
        self.versions: dict[tuple[str, str], list[Price]] = defaultdict(list)
        self.providers: set[str] = set()
        self.rates: dict[tuple[str, str], list[ExchangeRate]] | None = None
        self.unpriced: set[tuple[str, str]] = set()

    def load_teams(self, team_ids: Iterable[Any]) -> set[str]:
        """Read the teams' currency and markup; returns the ids that exist."""
        wanted = {str(team_id) for team_id in team_ids} - set(self.teams)
        if wanted:
            rows = Team.objects.filter(pk__in=wanted).values_list(
                "pk", "limits__currency", "limits__markup"
            )
            for pk, currency, markup in rows:
                self.teams[str(pk)] = TeamPricing(currency or Currency.USD, markup or Decimal(0))
        return set(self.teams)

    def load_prices(self, providers: Iterable[str]) -> None:
        wanted = set(providers) - self.providers
        if not wanted:
            return
        self.providers |= wanted
        for version in Price.objects.filter(provider_id__in=wanted).order_by(
            "provider_id", "model", "-effective_from"
        ):
            self.versions[(version.provider_id, version.model)].append(version)

    def exchange(self, base: str, quote: str, at: datetime) -> Decimal | None:
        """``billing.pricing.exchange_rate`` over rates read once, to 12 places."""
        if base == quote:
            return Decimal(1)
        if self.rates is None:
            self.rates = defaultdict(list)
            for row in ExchangeRate.objects.order_by("-effective_from"):
                self.rates[(row.base, row.quote)].append(row)
        direct = next((r for r in self.rates[(base, quote)] if r.effective_from <= at), None)
        inverse = next((r for r in self.rates[(quote, base)] if r.effective_from <= at), None)
        if direct is not None and (
            inverse is None or direct.effective_from >= inverse.effective_from
        ):
            return direct.rate.quantize(RATE_PLACES)
        if inverse is not None:
            return (Decimal(1) / inverse.rate).quantize(RATE_PLACES)
        return None

    def price(self, record: UsageRecord) -> None:
        """Fill in the cost of one row, and how it was reached."""
        team = self.teams.get(str(record.team_id)) or TeamPricing(Currency.USD, Decimal(0))
        record.currency = team.currency
        record.markup = team.markup
        record.cost = Decimal(0)
        record.unpriced = False
        if not (record.prompt_tokens or record.completion_tokens):
            return
        version = next(
            (
                p
                for p in self.versions.get((record.provider, record.upstream_model), ())
                if p.effective_from <= record.created_at
            ),
            None,
        )
        factor = (
            self.exchange(version.currency, team.currency, record.created_at)
            if version is not None
            else None
        )
        rate = (
            to_rate(version, team.currency, factor=with_markup(factor, team.markup))
            if version is not None and factor is not None
            else None
        )
        if rate is None:
            record.unpriced = True
            self.unpriced.add((record.provider, record.upstream_model))
            return
        record.price = version
        record.exchange_rate = factor
        record.cost = from_nanos(rate.cost_of(record))

    def price_all(self, records: Sequence[UsageRecord]) -> None:
        self.load_teams({r.team_id for r in records})
        self.load_prices({r.provider for r in records})
        for record in records:
            self.price(record)
        for provider, model in sorted(self.unpriced):
            log.warning(
                "usage of %s/%s recorded at zero cost: it has no price in the catalog "
                "(or no exchange rate to the team's currency)",
                provider or "?",
                model or "?",
            )
        self.unpriced.clear()


def _valid_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def record_from_event(event: UsageEvent, not_before: datetime | None = None) -> UsageRecord:
    created = datetime.fromtimestamp(event.created_at, tz=UTC)
    if not_before is not None and created < not_before:
        # Older than the pruned ledger: booked in the oldest hour that can still be rolled up.
        created = not_before
    return UsageRecord(
        request_id=event.request_id,
        client_request_id=event.client_request_id[:128],
        team_id=event.team_id,
        api_key_id=event.api_key_id or None,
        endpoint=event.endpoint[:16],
        alias=event.alias[:128],
        credential_id=event.credential_id or None,
        provider=event.provider[:32],
        upstream_model=event.upstream_model[:128],
        prompt_tokens=max(0, event.prompt_tokens),
        cached_tokens=max(0, event.cached_tokens),
        cache_write_tokens=max(0, event.cache_write_tokens),
        cache_write_1h_tokens=min(
            max(0, event.cache_write_1h_tokens), max(0, event.cache_write_tokens)
        ),
        completion_tokens=max(0, event.completion_tokens),
        reasoning_tokens=max(0, event.reasoning_tokens),
        estimated=event.estimated,
        dialect=event.dialect[:16],
        egress=event.egress[:16],
        reasoning=event.reasoning[:16],
        status=event.status,
        error_class=event.error_class[:64],
        streamed=event.streamed,
        attempts=event.attempts,
        latency_ms=event.latency_ms,
        ttfb_ms=event.ttfb_ms,
        overhead_ms=event.overhead_ms,
        created_at=created,
    )


# How far apart two rows of one request can be and still be recognised as one: a reaper's
# row and the late settle of a relay that was frozen, not killed. Bounded so the check
# probes a few daily partitions, not all of them.
SAME_REQUEST_WINDOW = timedelta(days=1)


def ingest(events: Sequence[UsageEvent]) -> int:
    """Price and insert usage events; request ids already in the ledger are
    skipped. Events of teams that no longer exist are dropped (their ledger
    went with them). Returns the number of events written or skipped as replays."""
    if not events:
        return 0
    pricer = Pricer()
    known = pricer.load_teams({e.team_id for e in events if _valid_uuid(e.team_id)})
    kept = [e for e in events if str(e.team_id) in known]
    if len(kept) < len(events):
        log.warning("dropped %d usage events of deleted teams", len(events) - len(kept))
    pruned = fillstate.end_time(fillstate.PRUNED)
    rows = [record_from_event(event, pruned) for event in kept]
    pricer.price_all(rows)
    now = timezone.now()
    for row in rows:
        row.ingested_at = now
    if connection.vendor == "postgresql":
        _copy(rows)
    else:
        # One writer at a time on SQLite: no lock needed for the same-request check.
        with transaction.atomic():
            seen = set(
                UsageRecord.objects.filter(
                    request_id__in=[row.request_id for row in rows]
                ).values_list("request_id", flat=True)
            )
            fresh = [row for row in rows if row.request_id not in seen]
            UsageRecord.objects.bulk_create(fresh, ignore_conflicts=True, batch_size=500)
    return len(rows)


def _incoming() -> tuple[str, list[Any]]:
    """The temporary table a batch is copied into, and the ledger's fields it carries (all but
    the id). Its name holds a digest of the columns, so a connection that outlived a
    migration never copies into a table of the old shape."""
    fields = [f for f in UsageRecord._meta.concrete_fields if not f.primary_key]
    digest = hashlib.blake2s(" ".join(f.column for f in fields).encode(), digest_size=4)
    return f"baton_usage_incoming_{digest.hexdigest()}", fields


def _copy(rows: Sequence[UsageRecord]) -> None:
    table, fields = _incoming()
    # Every name below comes from the model, none from input.
    columns = ", ".join(f'"{f.column}"' for f in fields)
    with transaction.atomic(), connection.cursor() as cursor:
        # Per connection, kept across batches; emptied at each commit, and at the end of the
        # batch for the case of an enclosing transaction that has not committed yet.
        cursor.execute(
            f'CREATE TEMPORARY TABLE IF NOT EXISTS "{table}" ON COMMIT DELETE ROWS AS '  # noqa: S608
            f'SELECT {columns} FROM "{UsageRecord._meta.db_table}" WITH NO DATA'
        )
        # Attribute values as they are: COPY's text form reads a UUID, a Decimal or a datetime
        # from the string psycopg makes of it (Django's per-value preparation cost more
        # than the rest of the batch together).
        names = [f.attname for f in fields]
        with cursor.cursor.copy(f'COPY "{table}" ({columns}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row([getattr(row, name) for name in names])
        # In a fixed order, so two writers of overlapping teams cannot deadlock.
        for team_id in sorted({str(row.team_id) for row in rows}):
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [team_id])
        ledger = UsageRecord._meta.db_table
        cursor.execute(
            f'INSERT INTO "{ledger}" ({columns}) '  # noqa: S608
            f'SELECT {columns} FROM "{table}" AS incoming WHERE NOT EXISTS ('
            f'SELECT 1 FROM "{ledger}" AS known WHERE known.request_id = incoming.request_id'
            " AND known.created_at > incoming.created_at - make_interval(secs => %s)"
            " AND known.created_at < incoming.created_at + make_interval(secs => %s)"
            ") ON CONFLICT DO NOTHING",
            [SAME_REQUEST_WINDOW.total_seconds()] * 2,
        )
        cursor.execute(f'DELETE FROM "{table}"')  # noqa: S608 (names from the model)


def prune(now: datetime | None = None) -> int:
    """Remove ledger rows past retention that are rolled up and charged; returns how many.
    On PostgreSQL whole days go at once (``billing.partitions.drop_expired``), so the
    horizon is the start of a day; elsewhere rows are deleted up to the hour."""
    now = now or timezone.now()
    cutoff = floor_hour(now - timedelta(days=conf.ledger_retention_days()))
    rolled = fillstate.end_time(fillstate.HOURLY)
    if rolled is None:
        return 0
    cutoff = min(cutoff, rolled)
    by_partition = partitions.partitioned()
    if by_partition:
        cutoff = partitions.start_of(partitions.day_of(cutoff))
    with transaction.atomic():
        state = fillstate.get_or_start(fillstate.PRUNED, lambda: cutoff)
        if state.end_time < cutoff:
            fillstate.mark(state, cutoff, done=True)
    if by_partition:
        return partitions.drop_expired(cutoff)[0]
    removable = UsageRecord.objects.filter(created_at__lt=cutoff).filter(
        # Never a row whose money is not yet in the credit ledger.
        Q(cost=0) | Q(credit_entry__isnull=False)
    )
    deleted = 0
    while True:
        ids = list(removable.values_list("pk", flat=True)[:PRUNE_BATCH])
        if not ids:
            return deleted
        with pruning():
            deleted += UsageRecord.objects.filter(pk__in=ids).delete()[0]


@contextlib.contextmanager
def pruning() -> Iterator[None]:
    """A transaction in which retention may delete ledger rows. The database refuses any other
    delete (billing/migrations/0006_append_only_ledgers), and even here keeps rows whose money
    is not in the credit ledger yet."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL baton.prune_usage = 'on'")  # ends with the transaction
            yield
        else:  # SQLite has no session variables: a row only this transaction sees
            cursor.execute("INSERT INTO billing_usage_prune_permit (granted) VALUES (1)")
            yield
            cursor.execute("DELETE FROM billing_usage_prune_permit")
