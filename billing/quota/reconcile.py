"""Spend counters that converge on the ledger.

The limits store counts spend as requests settle; the ledger is the truth. They part
when a settle never reaches the store (it was unreachable, the process died, a Redis
restart lost data) or reaches it late. ``reconcile`` raises a scope's day, month and
lifetime counters to the ledger's totals for the same periods, in one call of the
quota script (``reconcile`` mode): counter := max(counter, ledger), so a counter
never goes backwards past spend admission already allowed.

The totals are of the events written before a watermark, the moment the ledger is
read (to the millisecond), which the scope keeps; a settle counts only an event
written after the scope's watermark (admission.lua compares the event's own
``created_at``), so each event is counted once, by its settle or by a reconciliation,
whatever the clocks of the processes involved. An event counted by neither (its settle
came after a reconciliation that read the ledger before the event reached it: the
usage stream is a few seconds behind) is picked up by the next one, which the relay
schedules when a settle tells it so. Totals come from the hourly rollups for whole
hours already rolled up, then the ledger (``billing.usage.spend_between``), so ledger
retention loses nothing.

The relay runs it (in a worker thread): before admitting anything in a scope the store
has never seen, or that lost its counters ("seed"), and a few times after a late or lost
settle. ``reconcile_recent`` runs every ``BATON_RECONCILE_SECONDS`` (Celery beat,
``billing.reconcile_counters``; in the embedded default the relay process itself, whose
store is in process) for every scope with spend that reached the ledger since the last run
(however old the spend), so a
counter left low by anything else (a process that died between its usage event and its
settle, a settle lost while the store was away) catches up too. The prepaid
balance is the credit ledger's grants minus the team's lifetime counter, so
reconciling the team's scope reconciles the balance too.

The bound: after a reconciliation a counter is at least the ledger's total when it was
read, and once the usage stream has caught up with a scope that has stopped spending,
a reconciliation makes the counter equal the ledger. Under way, a counter can be below
the truth by what the store missed and the last reconciliation had not seen yet, and
above the ledger by spend it counted whose events are still in the usage stream.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.cache import cache

from billing import conf
from billing.money import to_nanos
from billing.quota import script
from billing.quota.store import Store, store
from billing.usage import period_start, spend_between


def ledger_totals(
    team_id: str, key_id: str | None, now: datetime, cutoff: datetime
) -> tuple[int, int, int]:
    """Nanos of recorded spend of the team (or one key) in the day and the month of
    ``now``, and ever, up to ``cutoff``."""
    out = []
    for period in ("day", "month"):
        start = period_start(period, now)
        assert start is not None
        out.append(to_nanos(spend_between(team_id, key_id, start, cutoff)) if cutoff > start else 0)
    out.append(to_nanos(spend_between(team_id, key_id, None, cutoff)))
    return out[0], out[1], out[2]


@dataclass(frozen=True)
class Reconciled:
    before: tuple[int, int, int]
    after: tuple[int, int, int]

    @property
    def raised(self) -> int:
        return sum(a - b for a, b in zip(self.after, self.before, strict=True))


def reconcile(
    team_id: str,
    key_id: str | None,
    *,
    where: Store | None = None,
    now: float | None = None,
    only_seeded: bool = False,
) -> Reconciled:
    """Raise the scope's counters (the team's, or one key's) to the ledger."""
    now = time.time() if now is None else now
    # The watermark, to the millisecond, is exactly the cutoff of the totals.
    watermark_ms = int(now * 1000)
    cutoff = datetime.fromtimestamp(watermark_ms / 1000, tz=UTC)
    day, month = script.periods(now)
    totals = ledger_totals(team_id, key_id, cutoff, cutoff)
    keys, args = script.reconcile_call(
        team_id,
        key_id,
        day,
        month,
        totals,
        script.past_counters(now),
        watermark_ms=watermark_ms,
        only_seeded=only_seeded,
    )
    reply = [int(v) for v in (where or store()).run(keys, args)]
    return Reconciled(before=(reply[0], reply[1], reply[2]), after=(reply[3], reply[4], reply[5]))


def recent_scopes(since: datetime) -> list[tuple[str, str | None]]:
    """Every team, and every API key, with priced usage that reached the ledger since
    ``since``. By when it reached the ledger, not when it was written: a row that arrives
    late (the consumer was away, PostgreSQL was down) is the one whose counters most likely
    missed it, and its own time is long past by then."""
    from billing.models import UsageRecord

    pairs = (
        UsageRecord.objects.filter(ingested_at__gte=since, cost__gt=0)
        .values_list("team_id", "api_key_id")
        .distinct()
    )
    scopes: set[tuple[str, str | None]] = set()
    for team_id, key_id in pairs:
        scopes.add((str(team_id), None))
        if key_id is not None:
            scopes.add((str(team_id), str(key_id)))
    return sorted(scopes, key=lambda scope: (scope[0], scope[1] or ""))


@dataclass
class Pass:
    scopes: int = 0
    raised: int = 0  # scopes whose counters went up
    nanos: int = 0  # by how much, in all


LAST_RUN = "billing:reconcile:last-pass"  # in Django's cache: when the last pass began
LOOKBACK_MAX = 86_400.0  # seconds: after a longer gap, the scopes of the last day


def reconcile_recent(where: Store | None = None, now: float | None = None) -> Pass:
    """Reconcile every scope the store counts whose spend reached the ledger since the last
    complete pass began (with a margin of twice the interval): a pass that did not run
    (Celery was down) or failed half-way leaves its rows to the next one."""
    now = time.time() if now is None else now
    margin = 2 * conf.reconcile_seconds()
    since = now - margin
    last = cache.get(LAST_RUN)
    if isinstance(last, int | float):
        since = min(since, max(last - margin, now - LOOKBACK_MAX))
    result = Pass()
    for team_id, key_id in recent_scopes(datetime.fromtimestamp(since, tz=UTC)):
        done = reconcile(team_id, key_id, where=where, now=now, only_seeded=True)
        result.scopes += 1
        if done.raised:
            result.raised += 1
            result.nanos += done.raised
    cache.set(LAST_RUN, now, timeout=None)
    return result
