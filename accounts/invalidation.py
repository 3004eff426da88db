"""Versioned invalidation of the relay's in-process caches.

Editing a team's keys, credentials or routes calls ``bump_team`` after the
transaction commits. With Redis, that increments a global version and records
the team in a sorted set scored by that version (one Lua call, atomic); every
relay process polls the version a few times a second (``BATON_CACHE_CHECK_SECONDS``)
and evicts exactly the teams that changed since it last looked, so an edit
or a revoke takes effect everywhere within a second with no Redis call on the
request path. Without Redis (the embedded default, one process) the local
cache is evicted directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction

log = logging.getLogger("baton.invalidation")

VERSION_KEY = "baton:cfg:version"
CHANGES_KEY = "baton:cfg:changes"
KEEP_CHANGES = 10_000

# KEYS[1] version counter, KEYS[2] changes zset; ARGV[1] team id.
BUMP_SCRIPT = f"""
local v = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], v, ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -{KEEP_CHANGES + 1})
return v
"""

# Listeners in this process (the relay cache registers one).
_local_listeners: list[Callable[[str], None]] = []


def on_local_bump(listener: Callable[[str], None]) -> None:
    _local_listeners.append(listener)


_sync_client: Any = None


def _redis() -> Any:
    global _sync_client
    if _sync_client is None:
        import redis

        _sync_client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
        )
    return _sync_client


def bump_team_now(team_id: str) -> None:
    for listener in _local_listeners:
        listener(team_id)
    if settings.REDIS_URL:
        try:
            _redis().eval(BUMP_SCRIPT, 2, VERSION_KEY, CHANGES_KEY, team_id)
        except Exception:
            # The edit is committed; relays fall back to their cache TTL. Loud,
            # because a revoke that does not propagate is a security problem.
            log.exception("could not publish cache invalidation for team %s", team_id)


def bump_team(team_id: Any) -> None:
    """Invalidate a team's cached keys, credentials and routes once the
    current transaction commits (immediately outside a transaction)."""
    transaction.on_commit(lambda: bump_team_now(str(team_id)))
