"""What the spend counters hold, and what they never saw.

- ``seed_amounts`` is what the relay's admission step adds to a spend counter
  the limits store has never seen: the recorded spend of that period before
  the counter's first write (hourly rollups, then the ledger for the hours
  not rolled up yet, so ledger retention does not lose old spend).
- ``current_use`` reads the live counters (Redis, or the embedded default's
  in-process store) for the pages and the API.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from billing import conf
from billing.money import from_nanos, to_nanos
from billing.quota import script
from billing.quota.local import LOCAL
from billing.quota.script import LUA, periods, scope_keys
from billing.quota.snapshots import Limits
from billing.usage import period_start, spend_between
from config.redis_clients import is_cluster

log = logging.getLogger("baton.billing")


def seed_amounts(team_id: str, specs: Sequence[tuple[str | None, str, int | None]]) -> list[int]:
    """Nanos of ledger spend for each (key id or None for the team, period,
    first write ms of the counter or None): what the counter never counted."""
    now = datetime.now(UTC)
    amounts = []
    for key_id, period, first_ms in specs:
        end = datetime.fromtimestamp(first_ms / 1000, tz=UTC) if first_ms else now
        amounts.append(to_nanos(spend_between(team_id, key_id, period_start(period, now), end)))
    return amounts


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


_sync_scripts: dict[str, Any] = {}  # limits Redis URL -> registered script


def _peek(pairs: Sequence[tuple[list[str], list[Any]]]) -> list[list[Any]]:
    url = conf.limits_redis_url()
    if not url:
        return [LOCAL.run(keys, args) for keys, args in pairs]
    script = _sync_scripts.get(url)
    if script is None:
        from config.redis_clients import sync_client

        timeout = max(0.5, conf.limits_redis_timeout())
        client = sync_client(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        script = _sync_scripts[url] = client.register_script(LUA)
    if is_cluster(url):
        # A cluster pipeline does not load a script the node it reaches has not seen; one
        # call at a time, each loads it (on every primary) when it must.
        return [list(script(keys=keys, args=args)) for keys, args in pairs]
    pipe = script.registered_client.pipeline(transaction=False)
    for keys, args in pairs:
        script(keys=keys, args=args, client=pipe)
    return [list(reply) for reply in pipe.execute()]


def _scope_use(values: Sequence[Any]) -> ScopeUse:
    def money(value: Any) -> Decimal:
        return from_nanos(int(value.decode() if isinstance(value, bytes) else value))

    return ScopeUse(
        in_flight=int(values[0]),
        held=money(values[1]),
        rpm_remaining=int(values[2]) if int(values[2]) >= 0 else None,
        tpm_remaining=int(values[3]) if int(values[3]) >= 0 else None,
        day=money(values[4]),
        month=money(values[5]),
        lifetime=money(values[6]),
    )


def current_use(
    team_id: Any, team_limits: Limits, keys: Sequence[tuple[Any, Limits]]
) -> tuple[ScopeUse, dict[str, ScopeUse]] | None:
    """Live use of the team and of each (key id, limits); None when the store is unreachable.
    With no keys the team is read together with a key that does not exist."""
    day, month = periods(time.time())
    window = int(conf.rate_window_seconds() * 1000)
    team_keys = scope_keys(str(team_id), "t", day, month)
    requests = []
    for key_id, limits in keys or [("none", Limits())]:
        args = script.peek_args(window, team_limits, limits)
        requests.append((team_keys + scope_keys(str(team_id), f"k:{key_id}", day, month), args))
    try:
        replies = _peek(requests)
    except Exception:
        log.warning("limits store unreachable; pages show no live use", exc_info=True)
        return None
    team_use = _scope_use(replies[0][:7])
    by_key = {
        str(key_id): _scope_use(reply[7:14])
        for (key_id, _), reply in zip(keys, replies, strict=False)
    }
    return team_use, by_key
