"""The sink that carries usage events off the hot path.

The relay builds one ``UsageEvent`` (billing/events.py, the contract with the
ledger) per request, successful or not, and hands it to the sink with ``emit``, which
never blocks: events are batched by a background task. With Redis the batch is appended
to the Redis streams (each event to its team's, billing/events.py; read by the metering
consumer into the ledger); in the embedded
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

Failover. With replicas (Sentinel, Cluster, ``BATON_USAGE_WAIT_REPLICAS``), each batch
ends with ``WAIT replicas timeout`` on the connection that wrote it, and counts as written
only once its reply is in: a primary that dies before that reply leaves the batch pending
here, and it is written again to the new primary (a replay: the ledger ignores request ids
it has). ``WAIT`` answering fewer replicas than asked (they lag past
``BATON_USAGE_WAIT_TIMEOUT_MS``, or are down) leaves the batch on the primary only; those
events are counted in ``baton_usage_unreplicated_events_total`` and logged.

What the relay wrote lately stays in memory (``Retained``) and is written again when the
primary turns out to have changed (the ``master_replid`` that each batch's reply carries is
another one): events a deposed primary took after the promotion of its replica, or that no
replica had when it died. A ``SENTINEL FAILOVER`` leaves the old primary taking writes, and
its other replicas acknowledging them, for the 8 to 20 s the sentinels take to reconfigure
it; the promoted replica has none of them. So a batch is let go only once *every* replica has
it (each replica's offset in the ``INFO replication`` that ends each batch is past the
batch's), counting as many replicas as the primary had at most over ``REPLICA_MEMORY``
seconds: a primary that lost a replica to a promotion keeps everything written since, until
the sink reaches the new primary and writes it again. A batch is kept at least
``RETAIN_SECONDS`` all the same (an offset is the replica's last report). So an acknowledged
event is lost only if the primary dies before a replica has it and this process stops before
it writes to the new primary. The replays are ledger no-ops.

On a cluster the batch is split by the primary each stream lives on, and each part goes,
with its ``WAIT``, over a connection to that primary (a cluster client sends ``WAIT`` to
every primary on other connections, where it proves nothing). A cluster's manual failover
(``CLUSTER FAILOVER``) waits for the replica to catch up, so only ``WAIT`` is needed there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter

from billing.events import UsageEvent, stream_for
from billing.ledger import ingest
from config.redis_clients import async_node_client, is_cluster_client
from gateway.db import in_thread

log = logging.getLogger("baton.metering")

BATCH_SIZE = 500
FLUSH_INTERVAL = 0.05
RETRY_MAX = 1.0  # seconds between attempts while the store stays away
WARN_EVERY = 10.0  # seconds between log lines about a store that stays away
UNREPLICATED = Counter(
    "baton_usage_unreplicated_events_total",
    "Usage events written while fewer replicas than BATON_USAGE_WAIT_REPLICAS acknowledged "
    "them in time: lost if the primary dies before they reach a replica.",
)
RESENT = Counter(
    "baton_usage_resent_events_total",
    "Usage events written again because the Redis primary changed after they were written.",
)
RETAIN_SECONDS = 10.0
REPLICA_MEMORY = 60.0  # seconds a replica that went away is still waited for (above)
MAX_RETAINED = 100_000  # events: past that, the oldest are forgotten (and logged)


@dataclass(slots=True)
class Retained:
    """A batch written to the primary ``replid``, kept to be written again if it changes."""

    at: float
    replid: str
    offset: int  # the primary's replication offset once the batch was in (an upper bound)
    batch: list[UsageEvent]
    replicated: bool  # every replica has it


class PartialWrite(Exception):
    """Part of a batch was written; ``remaining`` was not and is to be retried."""

    def __init__(self, remaining: list[UsageEvent], cause: BaseException) -> None:
        super().__init__(f"{len(remaining)} usage events not written: {cause!r}")
        self.remaining = remaining


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
        except PartialWrite as exc:
            log.warning("%s; will retry", exc)
            unwritten = {id(event) for event in exc.remaining}
            self.written += len(batch) - len(exc.remaining)
            self.pending[:0] = exc.remaining
            self._settle([event for event in batch if id(event) not in unwritten])
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
            self.written += len(batch)
            self._settle(batch)
            if self.failures:
                log.warning("usage events written again after %d failed attempts", self.failures)
                self.failures = 0

    def _settle(self, written: list[UsageEvent]) -> None:
        """Run the ``then`` of events now stored (their requests' settles)."""
        if self.then:
            for event in written:
                then = self.then.pop(event.request_id, None)
                if then is not None:
                    then()

    @abstractmethod
    async def write(self, batch: list[UsageEvent]) -> None:
        """Durably store a batch; raise to have it retried."""

    async def close(self) -> None:  # noqa: B027 (a hook: most sinks have nothing to close)
        """Let go of connections of its own (after ``stop``)."""


class RedisStreamSink(Sink):
    def __init__(
        self,
        redis: Any,
        *,
        url: str = "",
        streams: int = 1,
        replicas: int = 0,
        wait_ms: int = 500,
    ) -> None:
        """``redis`` is the relay's asyncio client for ``url``; ``streams`` the number of usage
        streams; ``replicas`` how many must acknowledge a batch (``WAIT``), within
        ``wait_ms``."""
        super().__init__()
        self.redis = redis
        self.url = url
        self.streams = streams
        self.replicas = replicas
        self.wait_ms = wait_ms
        self.cluster = is_cluster_client(redis)
        self.node_clients: dict[str, Any] = {}
        self.last_warning = 0.0
        self.unreplicated = 0
        self.replid = ""  # the primary the last batch went to
        self.replica_peak = 0  # the most replicas seen lately (REPLICA_MEMORY), and when
        self.replica_peak_at = 0.0
        self.retained: deque[Retained] = deque()
        self.retained_events = 0
        self.resent = 0

    async def write(self, batch: list[UsageEvent]) -> None:
        if self.cluster:
            await self._write_cluster(batch)
            return
        pipe = self.redis.pipeline(transaction=False)  # one connection: WAIT covers the XADDs
        for event in batch:
            pipe.xadd(stream_for(event.team_id, self.streams), {"event": event.to_json()})
        if self.replicas:
            pipe.wait(self.replicas, self.wait_ms)
            pipe.info("replication")
        replies = await pipe.execute()
        if self.replicas:
            acknowledged = int(replies[-2])
            self._replicated(acknowledged, len(batch))
            self._retain(batch, replies[-1])

    def _retain(self, batch: list[UsageEvent], info: dict[str, Any]) -> None:
        now = time.monotonic()
        replid = str(info.get("master_replid", ""))
        if self.replid and replid != self.replid and self.retained:
            # Another primary: what the old one took lately may not be here. Written again at
            # the next flush; the ledger ignores request ids it already has.
            again = [event for kept in self.retained for event in kept.batch]
            self.retained.clear()
            self.retained_events = 0
            RESENT.inc(len(again))
            self.resent += len(again)
            self.pending[:0] = again
            log.warning(
                "the Redis primary changed; writing the last %d usage events again", len(again)
            )
        if replid != self.replid:
            self.replica_peak = 0  # another primary, with replicas of its own
        self.replid = replid
        offset = int(info.get("master_repl_offset", 0))
        self.retained.append(Retained(now, replid, offset, batch, False))
        everywhere = self._replicated_up_to(info, now)
        for kept in self.retained:
            if kept.replid == replid and kept.offset <= everywhere:
                kept.replicated = True
        self.retained_events += len(batch)
        while self.retained and (
            (self.retained[0].replicated and now - self.retained[0].at > RETAIN_SECONDS)
            or self.retained_events > MAX_RETAINED
        ):
            dropped = self.retained.popleft()
            self.retained_events -= len(dropped.batch)
            if not dropped.replicated:
                log.error(
                    "forgetting %d usage events not every replica has (over %d kept)",
                    len(dropped.batch),
                    MAX_RETAINED,
                )

    def _replicated_up_to(self, info: dict[str, Any], now: float) -> int:
        """The replication offset every replica has reached (-1: some replica is missing,
        one the primary had lately, as after the promotion of one of them)."""
        offsets = [
            int(value.get("offset", -1))
            for name, value in info.items()
            if name.startswith("slave") and isinstance(value, dict)
        ]
        if len(offsets) >= self.replica_peak:
            self.replica_peak, self.replica_peak_at = len(offsets), now
        elif now - self.replica_peak_at > REPLICA_MEMORY:
            # Gone for good (not a failover: the sentinels demote a deposed primary sooner).
            self.replica_peak, self.replica_peak_at = len(offsets), now
            log.warning("a Redis replica is gone; %d left", len(offsets))
        if not offsets or len(offsets) < self.replica_peak:
            return -1
        return min(offsets)

    async def _write_cluster(self, batch: list[UsageEvent]) -> None:
        """Each primary's part of the batch over a connection of its own, with its WAIT."""
        await self.redis.initialize()  # the slot table, once
        parts: dict[str, tuple[Any, list[UsageEvent]]] = {}
        for event in batch:
            key = stream_for(event.team_id, self.streams)
            node = self.redis.get_node_from_key(key)
            parts.setdefault(node.name, (node, []))[1].append(event)
        names = list(parts)
        results = await asyncio.gather(
            *(self._write_node(*parts[name]) for name in names), return_exceptions=True
        )
        remaining: list[UsageEvent] = []
        error: BaseException | None = None
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                error = result
                remaining += parts[name][1]
                stale = self.node_clients.pop(name, None)
                if stale is not None:
                    await stale.aclose()
        if error is not None:
            # A primary moved (failover, resharding): read the slot table again.
            with contextlib.suppress(Exception):
                await self.redis.nodes_manager.initialize()
            if isinstance(error, asyncio.CancelledError):
                raise error
            if len(remaining) == len(batch):
                raise error
            raise PartialWrite(remaining, error)

    async def _write_node(self, node: Any, events: list[UsageEvent]) -> None:
        client = self.node_clients.get(node.name)
        if client is None:
            client = self.node_clients[node.name] = async_node_client(
                self.url,
                node.host,
                node.port,
                socket_timeout=2 + self.wait_ms / 1000,  # WAIT may take its whole timeout
                socket_connect_timeout=2,
            )
        pipe = client.pipeline(transaction=False)
        for event in events:
            pipe.xadd(stream_for(event.team_id, self.streams), {"event": event.to_json()})
        if self.replicas:
            pipe.wait(self.replicas, self.wait_ms)
        replies = await pipe.execute()
        if self.replicas:
            self._replicated(int(replies[-1]), len(events))

    def _replicated(self, acknowledged: int, events: int) -> None:
        if acknowledged >= self.replicas:
            return
        UNREPLICATED.inc(events)
        self.unreplicated += events
        now = time.monotonic()
        if now - self.last_warning > WARN_EVERY:
            self.last_warning = now
            log.warning(
                "usage events on the Redis primary only: %d of %d replicas acknowledged within "
                "%d ms (%d such events so far); a failover before they replicate loses them",
                acknowledged,
                self.replicas,
                self.wait_ms,
                self.unreplicated,
            )

    async def close(self) -> None:
        for client in self.node_clients.values():
            await client.aclose()
        self.node_clients.clear()


class DatabaseSink(Sink):
    """Embedded default: straight into the ledger, in a worker thread."""

    async def write(self, batch: list[UsageEvent]) -> None:
        # Priced on the way in; replays of a request id are ignored.
        await in_thread(ingest, batch)
