"""Versioned invalidation of the relay's in-process caches.

Editing a team's keys, credentials or routes calls ``bump_team`` after the
transaction commits. With Redis, that increments a global version and records
the team in a sorted set scored by that version (one Lua call, atomic); every
relay process polls the version a few times a second (``BATON_CACHE_CHECK_SECONDS``)
and evicts exactly the teams that changed since it last looked, so an edit
or a revoke takes effect everywhere within a second with no Redis call on the
request path. Without Redis (the embedded default, one process) the local
cache is evicted directly.

A change that cannot be published (Redis unreachable) is kept and published again every
``BATON_CACHE_CHECK_SECONDS`` by a thread of the process that made it, until Redis takes
it: relays, which keep their caches while Redis is away, evict the team at their first poll
after that. A process that exits with changes unpublished logs each one; relays then reload
the team after ``BATON_CACHE_RELOAD_SECONDS`` at the latest.

Both keys share the hash tag ``{cfg}`` so the script touches one slot of a Redis Cluster.
They had no tag before; for one release, on a Redis that is not a cluster, a change is also
published under the old names (``LEGACY_KEYS``) and relays read those too, so that processes
of the previous release and of this one see each other's changes during a rolling upgrade.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction

from config.redis_clients import is_cluster, sync_client

log = logging.getLogger("baton.invalidation")

VERSION_KEY = "baton:{cfg}:version"
CHANGES_KEY = "baton:{cfg}:changes"
# The names before the hash tag. TODO(next release): drop them, with their reader in
# gateway/cache.py (``RelayCache.check_version``).
LEGACY_KEYS = ("baton:cfg:version", "baton:cfg:changes")
KEEP_CHANGES = 10_000

# KEYS: (version counter, changes zset) pairs; ARGV[1] team id. Returns the first version.
BUMP_SCRIPT = f"""
local first
for i = 1, #KEYS, 2 do
  local v = redis.call('INCR', KEYS[i])
  redis.call('ZADD', KEYS[i + 1], v, ARGV[1])
  redis.call('ZREMRANGEBYRANK', KEYS[i + 1], 0, -{KEEP_CHANGES + 1})
  first = first or v
end
return first
"""


def legacy_keys_in_use() -> bool:
    """Whether changes also go by the old key names (one release; not on a cluster)."""
    return not is_cluster(settings.REDIS_URL or "")


# Listeners in this process (the relay cache registers one).
_local_listeners: list[Callable[[str], None]] = []


def on_local_bump(listener: Callable[[str], None]) -> None:
    _local_listeners.append(listener)


_sync_client: Any = None


def _redis() -> Any:
    global _sync_client
    if _sync_client is None:
        _sync_client = sync_client(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    return _sync_client


def _publish(team_id: str) -> None:
    keys = [VERSION_KEY, CHANGES_KEY, *(LEGACY_KEYS if legacy_keys_in_use() else ())]
    _redis().eval(BUMP_SCRIPT, len(keys), *keys, team_id)


def bump_team_now(team_id: str) -> None:
    for listener in _local_listeners:
        listener(team_id)
    if settings.REDIS_URL:
        try:
            _publish(team_id)
        except Exception:
            # The edit is committed; relays still serve what they cached. Loud, because a
            # revoke that does not propagate is a security problem; retried until it does.
            log.exception("could not publish cache invalidation for team %s; retrying", team_id)
            _unpublished.add(team_id)


class _Unpublished:
    """Changes Redis did not take, and the thread that publishes them again."""

    def __init__(self) -> None:
        self.teams: set[str] = set()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        atexit.register(self.report)

    def add(self, team_id: str) -> None:
        with self.lock:
            self.teams.add(team_id)
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self.retry, name="baton-invalidation-retry", daemon=True
                )
                self.thread.start()

    def retry(self) -> None:
        while True:
            time.sleep(max(settings.BATON_CACHE_CHECK_SECONDS, 0.05))
            with self.lock:
                teams = sorted(self.teams)
                if not teams:
                    self.thread = None
                    return
            try:
                for team_id in teams:
                    _publish(team_id)
                    with self.lock:
                        self.teams.discard(team_id)
            except Exception as exc:
                log.debug("cache invalidations still unpublished: %s", type(exc).__name__)
                continue
            log.warning("published %d delayed cache invalidations", len(teams))

    def report(self) -> None:
        for team_id in sorted(self.teams):
            log.error("exiting with the cache invalidation of team %s unpublished", team_id)


_unpublished = _Unpublished()


def unpublished() -> set[str]:
    """Teams whose change this process has not yet got into Redis."""
    with _unpublished.lock:
        return set(_unpublished.teams)


def bump_team(team_id: Any) -> None:
    """Invalidate a team's cached keys, credentials and routes once the
    current transaction commits (immediately outside a transaction)."""
    transaction.on_commit(lambda: bump_team_now(str(team_id)))
