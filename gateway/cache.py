"""The relay's in-process cache of key and team contexts.

Warm requests resolve their key and team from two dictionaries: no database,
no Redis. Entries leave the cache when their team's version moves (see
accounts/invalidation.py), and after ``TEAM_TTL`` at the latest, so decrypted
secrets are not kept in memory for long. Unknown keys are remembered briefly
too, so a client hammering with a bad key cannot hammer the database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from django.conf import settings
from django.utils import timezone

from accounts import invalidation, tokens
from accounts.models import ApiKey
from gateway.contexts import KeyContext, TeamContext, load_key, load_team
from gateway.db import in_thread

log = logging.getLogger("baton.relay")

TEAM_TTL = 300.0
NEGATIVE_TTL = 5.0
NEGATIVE_MAX = 10_000
LAST_USED_RESOLUTION = 60.0


class RelayCache:
    def __init__(self) -> None:
        self.keys: dict[str, KeyContext] = {}  # HMAC digest -> context
        self.teams: dict[str, TeamContext] = {}
        self.unknown: dict[str, float] = {}  # digest -> until
        self.last_used_written: dict[str, float] = {}
        self.version: int | None = None
        self._loads: dict[str, asyncio.Future[Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        invalidation.on_local_bump(self.evict_team)

    # --- lookups -------------------------------------------------------------
    async def key(self, presented: str) -> KeyContext | None:
        digest = tokens.digest(presented)
        context = self.keys.get(digest)
        if context is not None:
            return context
        until = self.unknown.get(digest)
        if until is not None and until > time.monotonic():
            return None
        context = await self._load_once("k:" + digest, load_key, presented)
        if context is None:
            if len(self.unknown) >= NEGATIVE_MAX:
                self.unknown.clear()
            self.unknown[digest] = time.monotonic() + NEGATIVE_TTL
        else:
            self.keys[digest] = context
        return context

    async def team(self, team_id: str) -> TeamContext:
        context = self.teams.get(team_id)
        if context is not None and time.monotonic() - context.loaded_at < TEAM_TTL:
            return context
        context = await self._load_once("t:" + team_id, load_team, team_id)
        self.teams[team_id] = context
        return context

    async def _load_once(self, name: str, loader: Any, arg: str) -> Any:
        """Run a cold load in a worker thread; concurrent callers share it."""
        pending = self._loads.get(name)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._loads[name] = future
        try:
            result = await in_thread(loader, arg)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            del self._loads[name]

    # --- invalidation ----------------------------------------------------------
    def evict_team(self, team_id: str) -> None:
        self.teams.pop(team_id, None)
        for digest, context in list(self.keys.items()):
            if context.team_id == team_id:
                self.keys.pop(digest, None)
        self.unknown.clear()  # a new key may have been created

    def evict_all(self) -> None:
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
            except asyncio.CancelledError:
                raise
            except Exception:
                # Without Redis we cannot know what changed: drop everything.
                log.warning("cache version check failed; flushing the relay cache", exc_info=True)
                self.evict_all()
                self.version = None
            await asyncio.sleep(interval)

    async def check_version(self, redis: Any) -> None:
        raw = await redis.get(invalidation.VERSION_KEY)
        current = int(raw or 0)
        seen = self.version
        if seen is None or current < seen:
            self.evict_all()
        elif current > seen:
            changes = await redis.zrangebyscore(
                invalidation.CHANGES_KEY, seen + 1, current, withscores=True
            )
            if not changes or int(changes[0][1]) > seen + 1:
                self.evict_all()  # the change log was trimmed past what we saw
            else:
                for team_id, _score in changes:
                    self.evict_team(team_id.decode() if isinstance(team_id, bytes) else team_id)
        self.version = current

    # --- bookkeeping off the request path -------------------------------------
    def touch(self, context: KeyContext) -> None:
        """Record key use, writing ``last_used_at`` at most once a minute."""
        now = time.monotonic()
        last = self.last_used_written.get(context.key_id)
        if last is not None and now - last < LAST_USED_RESOLUTION:
            return
        self.last_used_written[context.key_id] = now
        self.background(in_thread(_write_last_used, context.key_id))

    def background(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _write_last_used(key_id: str) -> None:
    ApiKey.objects.filter(pk=key_id).update(last_used_at=timezone.now())
