"""The limits store for synchronous callers: the pages, the reaper, reconciliation.

The relay's hot path talks to the limits Redis through its own pipelined asyncio
connection (gateway/redis_pipe.py). Everything else that runs the quota script (the
pages' live use, the reaper in a Celery worker or a web process's worker thread,
reconciling counters with the ledger) calls ``store().run(keys, args)`` here: the
limits Redis through redis-py (one client per process and URL, the script loaded once
and called by its SHA), or, without one, the embedded default's in-process store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from billing import conf
from billing.quota.local import LOCAL
from billing.quota.script import LUA
from config.redis_clients import is_cluster, sync_client


class Store(Protocol):
    def run(self, keys: Sequence[str], args: Sequence[Any]) -> Any: ...


class RedisStore:
    """The limits Redis, synchronously."""

    def __init__(self, url: str, timeout: float) -> None:
        # One server, Sentinel or Cluster alike (config/redis_clients.py).
        self.client = sync_client(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self.script = self.client.register_script(LUA)
        self.cluster = is_cluster(url)

    def run(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        reply = self.script(keys=list(keys), args=list(args))
        return list(reply) if isinstance(reply, list | tuple) else reply

    def pipeline(self, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]) -> list[list[Any]]:
        if self.cluster:
            # A cluster pipeline does not load a script the node it reaches has not seen; one
            # call at a time, each loads it (on every primary) when it must.
            return [self.run(keys, args) for keys, args in calls]
        pipe = self.client.pipeline(transaction=False)
        for keys, args in calls:
            self.script(keys=list(keys), args=list(args), client=pipe)
        return [list(r) if isinstance(r, list | tuple) else r for r in pipe.execute()]


_stores: dict[str, RedisStore] = {}


def store() -> Store:
    """The limits store of this installation (the same one the relay uses)."""
    url = conf.limits_redis_url()
    if not url:
        return LOCAL
    found = _stores.get(url)
    if found is None:
        found = _stores[url] = RedisStore(url, max(0.5, conf.limits_redis_timeout()))
    return found


def run_all(calls: Sequence[tuple[Sequence[str], Sequence[Any]]]) -> list[list[Any]]:
    """Several calls, in one round trip on Redis."""
    where = store()
    if isinstance(where, RedisStore):
        return where.pipeline(calls)
    return [where.run(keys, args) for keys, args in calls]
