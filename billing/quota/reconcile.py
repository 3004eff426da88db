"""Spend counters that converge on the ledger.

The limits store counts spend as requests settle; the ledger is the truth. They part
when a settle never reaches the store (it was unreachable, the process died, a Redis
restart lost data) or reaches it late. ``reconcile`` raises a scope's day, month and
lifetime counters to the ledger's totals for the same periods, in one call of the
quota script (``reconcile`` mode): counter := max(counter, ledger), so a counter
never goes backwards past spend admission already allowed.

The totals stop ``lag`` seconds before now (``lag_seconds``: twice the lease): an
event younger than that may still be on its way to the store through its settle, and
a settle that arrives later than that counts nothing (admission.lua, "late"), so each
event is counted once, by its settle or by a reconciliation. Totals come from the
hourly rollups for whole hours already rolled up, then the ledger
(``billing.usage.spend_between``), so ledger retention loses nothing.

The relay runs it (in a worker thread): before admitting anything in a scope the store
has never seen, or that lost its counters ("seed"), a few times after a failed or late
settle, and every ``BATON_RECONCILE_SECONDS`` for each scope it serves. The prepaid
balance is the credit ledger's grants minus the team's lifetime counter, so
reconciling the team's scope reconciles the balance too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from billing import conf
from billing.money import to_nanos
from billing.quota import script
from billing.quota.store import Store, store
from billing.usage import period_start, spend_between


def lag_seconds() -> float:
    """How far behind now reconciled totals stop; settles later than this are late."""
    return 2 * conf.lease_seconds()


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
    team_id: str, key_id: str | None, *, where: Store | None = None, now: float | None = None
) -> Reconciled:
    """Raise the scope's counters (the team's, or one key's) to the ledger."""
    now = time.time() if now is None else now
    cutoff = datetime.fromtimestamp(now - lag_seconds(), tz=UTC)
    day, month = script.periods(now)
    totals = ledger_totals(team_id, key_id, datetime.fromtimestamp(now, tz=UTC), cutoff)
    keys, args = script.reconcile_call(
        team_id, key_id, day, month, totals, script.past_counters(now)
    )
    reply = [int(v) for v in (where or store()).run(keys, args)]
    return Reconciled(before=(reply[0], reply[1], reply[2]), after=(reply[3], reply[4], reply[5]))
