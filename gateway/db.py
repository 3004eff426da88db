"""Running ORM work from the async relay.

The relay calls the database only on cold paths (cache misses, the embedded
ledger writer, ``last_used_at``), in worker threads. Outside a request cycle
Django never closes those threads' connections, so each would keep one
pooled connection checked out forever; ``in_thread`` gives it back.

``ColdPath`` is how a request reaches the database when its cache misses: it waits at most
``BATON_CACHE_LOAD_TIMEOUT`` (never the connection pool's own timeout, 30 s by default), and
after a failure it stops trying for a moment. While the database is unreachable a cold call
fails at once with ``DatabaseUnavailable``, except one probe at a time, so a stopped
PostgreSQL neither holds requests for the pool's timeout nor fills the worker threads (a
handful per process) with calls waiting on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections

T = TypeVar("T")

log = logging.getLogger("baton.relay")

RETRY_SECONDS = 1.0  # after a failure, the next probe no sooner than this
# What "the database cannot be reached" looks like through Django (a pool that timed out
# waiting for a connection is an OperationalError too).
UNREACHABLE = (OperationalError, InterfaceError, TimeoutError)


def _closing(function: Callable[..., T]) -> Callable[..., T]:
    def run(*args: Any) -> T:
        try:
            return function(*args)
        finally:
            connections.close_all()

    return run


async def in_thread(function: Callable[..., T], *args: Any) -> T:
    return await sync_to_async(_closing(function), thread_sensitive=False)(*args)


class DatabaseUnavailable(Exception):
    """The database did not answer a cold-path call (or recently failed to)."""


class ColdPath:
    """Bounded waits and a breaker around the relay's database calls (see the module doc)."""

    def __init__(self) -> None:
        self.failing = False
        self.retry_at = 0.0
        # A probe still running in its thread (it timed out for its caller): no other
        # call starts until it ends, so at most one thread waits on a dead database.
        self.probe: asyncio.Future[Any] | None = None

    @property
    def healthy(self) -> bool:
        return not self.failing

    def may_try(self) -> bool:
        if not self.failing:
            return True
        if self.probe is not None and not self.probe.done():
            return False
        return time.monotonic() >= self.retry_at

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        if not self.may_try():
            raise DatabaseUnavailable("the database recently failed; not waiting on it")
        call = asyncio.ensure_future(in_thread(function, *args))
        if self.failing:
            self.probe = call  # one probe at a time
        try:
            async with asyncio.timeout(settings.BATON_CACHE_LOAD_TIMEOUT):
                result = await asyncio.shield(call)
        except UNREACHABLE as exc:
            if not call.done():  # our timeout: the call goes on waiting in its thread
                self.probe = call
                call.add_done_callback(_retrieve)
            self.trip(exc)
            raise DatabaseUnavailable(str(exc) or type(exc).__name__) from exc
        if self.failing:
            log.warning("the database answers again")
        self.failing = False
        return result

    def trip(self, exc: BaseException) -> None:
        if not self.failing:
            log.warning(
                "the database did not answer (%s): serving what is cached, failing cold "
                "lookups fast",
                type(exc).__name__,
            )
        self.failing = True
        self.retry_at = time.monotonic() + RETRY_SECONDS


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # no "exception was never retrieved" for an abandoned probe
