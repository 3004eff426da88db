"""The relay's in-process cache of key and team contexts.

Warm requests resolve their key and team from two dictionaries: no database,
no Redis.

Freshness. An entry leaves the cache as soon as its team's version moves (see
accounts/invalidation.py), for good: an evicted key or team is loaded again or refused,
never served from memory. Without a change, an entry is reloaded after
``BATON_CACHE_RELOAD_SECONDS``, so a missed invalidation heals and decrypted secrets
are renewed.

Stale if error. When that reload fails because the database does not answer, the known
entry is served on, for at most ``BATON_STALE_IF_ERROR_SECONDS`` past its reload time,
while it is reloaded in the background. A lookup with nothing to fall back on (an
unknown key, an evicted team) fails at once with a 503: ``ColdPath`` (gateway/db.py)
bounds every wait on the database and stops trying for a moment after a failure.

Redis unreachable. The version cannot be read, so nothing is evicted: what is known
keeps being served (and reloaded on time from the database). When Redis answers again,
the watcher reads every change since the last version it saw and evicts those teams, so
a change made during the outage takes effect at the first poll after Redis is back.

Unknown keys are remembered briefly too, so a client hammering with a bad key cannot
hammer the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils import timezone
from prometheus_client import Counter

from accounts import invalidation, tokens
from accounts.models import ApiKey
from gateway.contexts import KeyContext, TeamContext, load_key, load_team
from gateway.db import ColdPath, DatabaseUnavailable
from gateway.errors import database_unavailable

log = logging.getLogger("baton.relay")

NEGATIVE_TTL = 5.0
NEGATIVE_MAX = 10_000
LAST_USED_RESOLUTION = 60.0

LOADS = Counter(
    "baton_cache_loads",
    "Keys and teams loaded from the database (cache misses and reloads), by outcome: "
    "loaded, unknown (no such key) or unavailable (the database did not answer).",
    ["kind", "outcome"],
)
STALE = Counter(
    "baton_cache_stale_served",
    "Requests served from a key or team past its reload time: the database did not answer.",
    ["kind"],
)
VERSION_CHECKS = Counter(
    "baton_cache_version_checks",
    "Polls of the invalidation version, by outcome: ok, or failed (Redis unreachable: the "
    "cache is kept as it is).",
    ["outcome"],
)

Store = Callable[[Any], None]


class RelayCache:
    def __init__(self, database: ColdPath | None = None) -> None:
        self.keys: dict[str, KeyContext] = {}  # HMAC digest -> context
        self.teams: dict[str, TeamContext] = {}
        self.unknown: dict[str, float] = {}  # digest -> until
        self.last_used_written: dict[str, float] = {}
        self.version: int | None = None
        self.legacy_version: int | None = None
        self.db = database or ColdPath()
        self.epoch = 0  # moves on every eviction: a load that started before it is not kept
        self.redis_down = False
        self._loads: dict[str, asyncio.Future[Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        invalidation.on_local_bump(self.evict_team)

    # --- lookups -------------------------------------------------------------
    async def key(self, presented: str) -> KeyContext | None:
        digest = tokens.digest(presented)
        context = self.keys.get(digest)
        now = time.monotonic()
        if context is not None and now - context.loaded_at < settings.BATON_CACHE_RELOAD_SECONDS:
            return context
        if context is None:
            until = self.unknown.get(digest)
            if until is not None and until > now:
                return None
            if tokens.split(presented, ApiKey.PREFIX) is None:
                return None  # cannot be a key of ours: no need to ask the database

        def store(loaded: KeyContext | None) -> None:
            if loaded is not None:
                self.keys[digest] = loaded
                return
            self.keys.pop(digest, None)
            if len(self.unknown) >= NEGATIVE_MAX:
                self.unknown.clear()
            self.unknown[digest] = time.monotonic() + NEGATIVE_TTL

        result: KeyContext | None = await self._resolve(
            "key", "k:" + digest, context, load_key, presented, store
        )
        return result

    async def team(self, team_id: str) -> TeamContext:
        context = self.teams.get(team_id)
        if (
            context is not None
            and time.monotonic() - context.loaded_at < settings.BATON_CACHE_RELOAD_SECONDS
        ):
            return context

        def store(loaded: TeamContext) -> None:
            self.teams[team_id] = loaded

        result: TeamContext = await self._resolve(
            "team", "t:" + team_id, context, load_team, team_id, store
        )
        return result

    async def _resolve(
        self, kind: str, name: str, known: Any, loader: Any, arg: str, store: Store
    ) -> Any:
        """``known`` is past its reload time, or None: load it now. When the database does
        not answer, a known entry is served a while longer and reloaded in the background."""
        servable = known is not None and (
            time.monotonic() - known.loaded_at
            < settings.BATON_CACHE_RELOAD_SECONDS + settings.BATON_STALE_IF_ERROR_SECONDS
        )
        if servable and not self.db.healthy:
            return self._stale(kind, name, known, loader, arg, store)
        try:
            return await self._load_once(kind, name, loader, arg, store)
        except DatabaseUnavailable:
            if servable:
                return self._stale(kind, name, known, loader, arg, store)
            what = "check this API key" if kind == "key" else "load this team's settings"
            raise database_unavailable(what) from None

    def _stale(self, kind: str, name: str, known: Any, loader: Any, arg: str, store: Store) -> Any:
        STALE.labels(kind).inc()
        if name not in self._loads and self.db.may_try():
            self.background(self._refresh(kind, name, loader, arg, store))
        return known

    async def _refresh(self, kind: str, name: str, loader: Any, arg: str, store: Store) -> None:
        with contextlib.suppress(DatabaseUnavailable):
            await self._load_once(kind, name, loader, arg, store)

    async def _load_once(self, kind: str, name: str, loader: Any, arg: str, store: Store) -> Any:
        """Run a cold load in a worker thread and keep its result, unless an eviction came
        while it ran (it may have read the database before the change); concurrent callers
        share it."""
        pending = self._loads.get(name)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._loads[name] = future
        epoch = self.epoch
        try:
            result = await self.db.run(loader, arg)
            LOADS.labels(kind, "unknown" if result is None else "loaded").inc()
            if self.epoch == epoch:
                store(result)
            future.set_result(result)
            return result
        except BaseException as exc:
            if isinstance(exc, DatabaseUnavailable):
                LOADS.labels(kind, "unavailable").inc()
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            del self._loads[name]

    # --- invalidation ----------------------------------------------------------
    def evict_team(self, team_id: str) -> None:
        self.epoch += 1
        self.teams.pop(team_id, None)
        for digest, context in list(self.keys.items()):
            if context.team_id == team_id:
                self.keys.pop(digest, None)
        self.unknown.clear()  # a new key may have been created

    def evict_all(self) -> None:
        self.epoch += 1
        self.keys.clear()
        self.teams.clear()
        self.unknown.clear()

    async def watch(self, redis: Any, also: Any = None) -> None:
        """Poll the version and evict the teams that changed. Runs forever.

        ``also`` is another async callable taking ``redis`` to run on the same
        tick (the relay syncs its shared cooldowns this way).
        """
        interval = settings.BATON_CACHE_CHECK_SECONDS
        while True:
            try:
                await self.check_version(redis)
                if also is not None:
                    await also(redis)
                VERSION_CHECKS.labels("ok").inc()
                if self.redis_down:
                    self.redis_down = False
                    log.warning("cache version readable again: caught up on changes")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Nothing is evicted: what changes meanwhile is read when Redis is back.
                VERSION_CHECKS.labels("failed").inc()
                if not self.redis_down:
                    self.redis_down = True
                    log.warning(
                        "cache version check failed (%s); serving the cached keys and teams "
                        "until Redis answers again",
                        type(exc).__name__,
                    )
            await asyncio.sleep(interval)

    async def check_version(self, redis: Any) -> None:
        self.version = await self._follow(
            redis, invalidation.VERSION_KEY, invalidation.CHANGES_KEY, self.version
        )
        if invalidation.legacy_keys_in_use():
            # Changes a process of the previous release published (accounts/invalidation.py).
            self.legacy_version = await self._follow(
                redis, *invalidation.LEGACY_KEYS, self.legacy_version, first_evicts=False
            )

    async def _follow(
        self,
        redis: Any,
        version_key: str,
        changes_key: str,
        seen: int | None,
        first_evicts: bool = True,
    ) -> int:
        """Evict the teams that changed since version ``seen``; the version now."""
        raw = await redis.get(version_key)
        current = int(raw or 0)
        if (seen is None and first_evicts) or (seen is not None and current < seen):
            self.evict_all()
        elif seen is not None and current > seen:
            changes = await redis.zrangebyscore(changes_key, seen + 1, current, withscores=True)
            if not changes or int(changes[0][1]) > seen + 1:
                self.evict_all()  # the change log was trimmed past what we saw
            else:
                for team_id, _score in changes:
                    self.evict_team(team_id.decode() if isinstance(team_id, bytes) else team_id)
        return current

    # --- bookkeeping off the request path -------------------------------------
    def touch(self, context: KeyContext) -> None:
        """Record key use, writing ``last_used_at`` at most once a minute (and not while
        the database does not answer)."""
        now = time.monotonic()
        last = self.last_used_written.get(context.key_id)
        if last is not None and now - last < LAST_USED_RESOLUTION:
            return
        if not self.db.may_try():
            return
        self.last_used_written[context.key_id] = now
        self.background(self._write_last_used(context.key_id))

    async def _write_last_used(self, key_id: str) -> None:
        with contextlib.suppress(DatabaseUnavailable):
            await self.db.run(_write_last_used, key_id)

    def background(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("relay cache background work failed", exc_info=task.exception())


def _write_last_used(key_id: str) -> None:
    ApiKey.objects.filter(pk=key_id).update(last_used_at=timezone.now())
