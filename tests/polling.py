"""Waiting for background work by its condition, never by a fixed sleep.

``until`` polls a condition and returns its first truthy value, or fails after a generous
timeout naming what it waited for; a fast machine waits milliseconds, a slow one is not flaky.
``relay_app`` and ``wait_idle`` reach the relay served by a test ``ServerThread`` and wait for
its off-the-response-path work (bookkeeping writes, settles, limit seeding) to finish.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

if TYPE_CHECKING:
    from gateway.asgi import RelayApp
    from tests.fake_upstream.conftest import ServerThread

T = TypeVar("T")


def until(
    condition: Callable[[], T | Literal[False] | None],
    what: str,
    timeout: float = 10.0,
    interval: float = 0.02,
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return cast(T, value)
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout}s for {what}")
        time.sleep(interval)


async def until_async(condition: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout}s for {what}")
        await asyncio.sleep(0.005)


def relay_app(server: ServerThread) -> RelayApp:
    """The RelayApp behind a ServerThread serving ``config.routing.build_application``."""
    app: Any = server.server.config.app
    relay: RelayApp = app.relay
    return relay


def background_work(relay: RelayApp) -> int:
    """Tasks the relay started after answering that have not finished yet."""
    return len(relay.cache._tasks) + len(relay.admission.tasks) + len(relay.admission.seeding)


def wait_idle(server: ServerThread, timeout: float = 10.0) -> None:
    relay = relay_app(server)
    until(lambda: background_work(relay) == 0, "the relay's background work", timeout)
