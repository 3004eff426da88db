"""Running ORM work from the async relay.

The relay calls the database only on cold paths (cache misses, the embedded
ledger writer, ``last_used_at``), in worker threads. Outside a request cycle
Django never closes those threads' connections, so each would keep one
pooled connection checked out forever; ``in_thread`` gives it back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections

T = TypeVar("T")


def _closing(function: Callable[..., T]) -> Callable[..., T]:
    def run(*args: Any) -> T:
        try:
            return function(*args)
        finally:
            connections.close_all()

    return run


async def in_thread(function: Callable[..., T], *args: Any) -> T:
    return await sync_to_async(_closing(function), thread_sensitive=False)(*args)
