"""The sink that carries usage events off the hot path.

The relay builds one ``UsageEvent`` (billing/events.py, the contract with the
ledger) per request, successful or not, and hands it to the sink with ``emit``, which
never blocks: events are batched by a background task. With Redis the batch is appended
to a Redis stream (read by the metering consumer into the ledger); in the embedded
default the batch is written straight into the ledger table. Stopping the process
flushes what is pending (graceful shutdown).

``emit``'s ``then`` runs once the event is written: the relay settles the request's
limits there, so its durable in-flight record (gateway/admission.py) is removed only
after the event that replaces it is stored, and a process killed in between leaves the
record to a reaper instead of losing the request.

A write that fails (Redis away) keeps its batch for the next attempt; while writes fail the
flusher backs off (the interval doubles up to ``RETRY_MAX``) and new events no longer wake it,
and the outage is logged once with its cause, then at most every ``WARN_EVERY`` seconds, and
once more when events are written again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from billing.events import STREAM_KEY, UsageEvent
from billing.ledger import ingest
from gateway.db import in_thread

log = logging.getLogger("baton.metering")

BATCH_SIZE = 500
FLUSH_INTERVAL = 0.05
RETRY_MAX = 1.0  # seconds between attempts while the store stays away
WARN_EVERY = 10.0  # seconds between log lines about a store that stays away


class Sink(ABC):
    def __init__(self) -> None:
        self.pending: list[UsageEvent] = []
        self.then: dict[str, Callable[[], None]] = {}  # request id -> run once written
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.written = 0
        self.failures = 0  # writes failed in a row
        self.last_warning = 0.0

    def emit(self, event: UsageEvent, then: Callable[[], None] | None = None) -> None:
        self.pending.append(event)
        if then is not None:
            self.then[event.request_id] = then
        if len(self.pending) >= BATCH_SIZE and not self.failures:
            self._wake.set()

    def delay(self) -> float:
        """How long the flusher waits before its next write: the flush interval, doubled for
        every write failed in a row, up to ``RETRY_MAX``."""
        if not self.failures:
            return FLUSH_INTERVAL
        return min(RETRY_MAX, FLUSH_INTERVAL * 2**self.failures)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Let the flusher finish (a write in progress completes) and write the rest.

        The flusher is told to stop rather than cancelled: a cancellation arriving as a
        full batch woke it was lost inside ``asyncio.wait_for`` and it ran on for ever;
        and a cancelled write would drop its batch."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await asyncio.wait({self._task})  # a cancellation of stop() itself still propagates
        await self.flush()

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.delay()):
                    await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        try:
            await self.write(batch)
            self.written += len(batch)
            if self.then:
                for event in batch:
                    then = self.then.pop(event.request_id, None)
                    if then is not None:
                        then()
        except Exception as exc:
            # Keep the events and retry on the next tick: losing them is losing money.
            self.pending[:0] = batch
            self.failures += 1
            now = time.monotonic()
            if self.failures == 1:
                self.last_warning = now
                log.exception("could not write %d usage events; will retry", len(batch))
            elif now - self.last_warning >= WARN_EVERY:
                self.last_warning = now
                log.error(
                    "still cannot write usage events (%s): %d pending, %d attempts failed",
                    type(exc).__name__,
                    len(self.pending),
                    self.failures,
                )
        except asyncio.CancelledError:
            self.pending[:0] = batch  # replays are harmless: the ledger ignores known ids
            raise
        else:
            if self.failures:
                log.warning("usage events written again after %d failed attempts", self.failures)
                self.failures = 0

    @abstractmethod
    async def write(self, batch: list[UsageEvent]) -> None:
        """Durably store a batch; raise to have it retried."""


class RedisStreamSink(Sink):
    def __init__(self, redis: Any) -> None:
        super().__init__()
        self.redis = redis

    async def write(self, batch: list[UsageEvent]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for event in batch:
            pipe.xadd(STREAM_KEY, {"event": event.to_json()})
        await pipe.execute()


class DatabaseSink(Sink):
    """Embedded default: straight into the ledger, in a worker thread."""

    async def write(self, batch: list[UsageEvent]) -> None:
        # Priced on the way in; replays of a request id are ignored.
        await in_thread(ingest, batch)
