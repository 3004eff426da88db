"""Live use of the limits, for the pages and the API.

``current_use`` reads the live state of a team and its keys (Redis, or the embedded
default's in-process store) with the quota script's ``peek``: requests in flight,
money held, what is left of the per-minute limits, and the spend counters. A scope the
store does not count (it has no limits, so admission skips it) shows its spend from
the ledger instead (``billing.usage.spend_between``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from billing import conf
from billing.money import from_nanos
from billing.quota import script
from billing.quota.script import periods
from billing.quota.snapshots import Limits
from billing.quota.store import run_all
from billing.usage import period_start, spend_between

log = logging.getLogger("baton.billing")


# --- live use ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScopeUse:
    in_flight: int
    held: Decimal
    rpm_remaining: int | None
    tpm_remaining: int | None
    day: Decimal
    month: Decimal
    lifetime: Decimal


def _scope_use(values: Sequence[Any], team_id: Any, key_id: Any | None) -> ScopeUse:
    def money(value: Any) -> Decimal:
        return from_nanos(int(value.decode() if isinstance(value, bytes) else value))

    use = ScopeUse(
        in_flight=int(values[0]),
        held=money(values[1]),
        rpm_remaining=int(values[2]) if int(values[2]) >= 0 else None,
        tpm_remaining=int(values[3]) if int(values[3]) >= 0 else None,
        day=money(values[4]),
        month=money(values[5]),
        lifetime=money(values[6]),
    )
    if int(values[7]):
        return use
    now = datetime.now(UTC)
    return replace(
        use,
        day=spend_between(team_id, key_id, period_start("day", now), None),
        month=spend_between(team_id, key_id, period_start("month", now), None),
        lifetime=spend_between(team_id, key_id, None, None),
    )


def current_use(
    team_id: Any, team_limits: Limits, keys: Sequence[tuple[Any, Limits]]
) -> tuple[ScopeUse, dict[str, ScopeUse]] | None:
    """Live use of the team and of each (key id, limits); None when the store is unreachable.
    With no keys the team is read together with a key that does not exist."""
    day, month = periods(time.time())
    window = int(conf.rate_window_seconds() * 1000)
    calls = [
        script.peek_call(str(team_id), str(key_id), window, day, month, team_limits, limits)
        for key_id, limits in keys or [("none", Limits())]
    ]
    try:
        replies = run_all(calls)
    except Exception:
        log.warning("limits store unreachable; pages show no live use", exc_info=True)
        return None
    team_use = _scope_use(replies[0][:8], team_id, None)
    by_key = {
        str(key_id): _scope_use(reply[8:16], team_id, key_id)
        for (key_id, _), reply in zip(keys, replies, strict=False)
    }
    return team_use, by_key
