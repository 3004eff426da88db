"""From the Redis stream ``baton:usage`` into the ledger, losing nothing.

The relay appends one entry per request to the stream (``gateway.metering``)
and forgets it. Consumers read the stream through the consumer group
``baton-ledger``:

1. ``XAUTOCLAIM`` first takes over entries another consumer read but never
   acknowledged for ``BATON_USAGE_CLAIM_IDLE_SECONDS`` (it died, or its
   database write failed);
2. ``XREADGROUP`` then reads new entries, a batch at a time;
3. the batch is priced and inserted into the ledger in one transaction, with
   ON CONFLICT DO NOTHING on the request id (``billing.ledger.ingest``);
4. only after the commit are the entries acknowledged (``XACK``) and removed
   from the stream (``XDEL``), in one MULTI.

So delivery into the ledger is at least once, and the unique request id
makes it exactly once: a consumer killed before step 4 leaves its entries
pending, another one claims them, and the replayed inserts do nothing. An
entry that is not a usage event at all is moved to ``baton:usage:dead`` (and
logged) rather than blocking the stream forever.

Redis must persist the stream: run it with AOF (``appendonly yes``; with
``appendfsync everysec`` a power cut can lose the last second, ``always``
loses nothing), as ``deploy/compose.yaml`` does. A Redis restart then keeps
every entry, acknowledged or not, and the consumer group's pending lists.

Two ways to run it: the ``billing.consume_usage`` Celery task that beat runs
every few seconds (a Redis lock lets one run at a time; each run drains the
stream for a bounded time), or ``manage.py consume_usage`` as a dedicated
process. They can run together: the consumer group shares the work.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.db import transaction

from billing import conf
from billing.events import STREAM_KEY, UsageEvent
from billing.ledger import ingest

log = logging.getLogger("baton.metering")

GROUP = "baton-ledger"
DEAD_LETTERS = "baton:usage:dead"
LOCK_KEY = "baton:usage:consumer-lock"
BATCH = 500
# Consumers that have acknowledged everything and were idle this long are
# removed from the group (each worker process adds its own name).
FORGET_IDLE_MS = 3_600_000

Entry = tuple[str, dict[bytes, bytes]]

RELEASE_LOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class Result:
    read: int = 0
    claimed: int = 0
    written: int = 0
    dead: int = 0
    batches: int = 0

    def add(self, other: Result) -> None:
        self.read += other.read
        self.claimed += other.claimed
        self.written += other.written
        self.dead += other.dead
        self.batches += other.batches


@dataclass
class Consumer:
    redis: Any  # a synchronous redis.Redis
    name: str = field(default_factory=default_name)
    batch: int = BATCH
    claim_idle_ms: int | None = None
    # Called after the ledger commit and before the acknowledgement (tests
    # kill the process there to prove a replay is not double counted).
    before_ack: Callable[[list[str]], None] | None = None
    _group_ready: bool = False

    def __post_init__(self) -> None:
        if self.claim_idle_ms is None:
            self.claim_idle_ms = int(conf.usage_claim_idle_seconds() * 1000)

    # --- the group ------------------------------------------------------------------
    def ensure_group(self) -> None:
        if self._group_ready:
            return
        import redis

        try:
            self.redis.xgroup_create(STREAM_KEY, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def forget_idle_consumers(self) -> None:
        for consumer in self.redis.xinfo_consumers(STREAM_KEY, GROUP):
            name = _text(consumer["name"])
            if (
                name != self.name
                and int(consumer.get("pending", 0)) == 0
                and int(consumer.get("idle", 0)) > FORGET_IDLE_MS
            ):
                self.redis.xgroup_delconsumer(STREAM_KEY, GROUP, name)

    # --- reading --------------------------------------------------------------------
    def claim(self) -> list[Entry]:
        """Entries other consumers read and never acknowledged."""
        reply = self.redis.xautoclaim(
            STREAM_KEY, GROUP, self.name, self.claim_idle_ms, "0-0", count=self.batch
        )
        entries = [(_text(i), fields) for i, fields in reply[1] if i is not None and fields]
        # Entries deleted from the stream while still pending: nothing to write.
        gone = [_text(i) for i, fields in reply[1] if i is not None and not fields]
        if len(reply) > 2:
            gone += [_text(i) for i in reply[2]]
        if gone:
            self.redis.xack(STREAM_KEY, GROUP, *gone)
        return entries

    def read(self, block_ms: int | None = None) -> list[Entry]:
        reply = self.redis.xreadgroup(
            GROUP, self.name, {STREAM_KEY: ">"}, count=self.batch, block=block_ms
        )
        if not reply:
            return []
        return [(_text(entry_id), fields) for entry_id, fields in reply[0][1]]

    # --- writing --------------------------------------------------------------------
    def parse(self, entries: Sequence[Entry]) -> tuple[list[UsageEvent], list[Entry]]:
        events: list[UsageEvent] = []
        dead: list[Entry] = []
        for entry in entries:
            try:
                event = UsageEvent.from_json(entry[1][b"event"])
                uuid.UUID(str(event.team_id))
                event.request_id = str(event.request_id)[:64]
                if not event.request_id:
                    raise ValueError("no request id")
            except (KeyError, TypeError, ValueError, orjson.JSONDecodeError):
                dead.append(entry)
                continue
            events.append(event)
        return events, dead

    def process(self, entries: Sequence[Entry]) -> Result:
        """Write a batch into the ledger, then acknowledge it. Raises (and
        acknowledges nothing) when the database write fails."""
        result = Result(batches=1)
        if not entries:
            return result
        events, dead = self.parse(entries)
        with transaction.atomic():
            result.written = ingest(events)
        ids = [entry_id for entry_id, _ in entries]
        if self.before_ack is not None:
            self.before_ack(ids)
        pipe = self.redis.pipeline(transaction=True)
        for entry_id, fields in dead:
            log.error(
                "usage stream entry %s is not a usage event; moved to %s", entry_id, DEAD_LETTERS
            )
            pipe.xadd(DEAD_LETTERS, {**fields, b"id": entry_id.encode()})
        pipe.xack(STREAM_KEY, GROUP, *ids)
        pipe.xdel(STREAM_KEY, *ids)
        pipe.execute()
        result.dead = len(dead)
        return result

    # --- loops ----------------------------------------------------------------------
    def run_once(self, block_ms: int | None = None) -> Result:
        """Claim abandoned entries, then read and write one batch of new ones."""
        import redis

        self.ensure_group()
        try:
            return self._run_once(block_ms)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The stream was deleted under us (a flushed Redis): start it again.
            self._group_ready = False
            self.ensure_group()
            return self._run_once(block_ms)

    def _run_once(self, block_ms: int | None) -> Result:
        result = Result()
        claimed = self.claim()
        if claimed:
            step = self.process(claimed)
            step.claimed = len(claimed)
            result.add(step)
        entries = self.read(block_ms if not claimed else None)
        if entries:
            step = self.process(entries)
            step.read = len(entries)
            result.add(step)
        return result

    def drain(self, seconds: float) -> Result:
        """Consume until the stream has nothing for us or ``seconds`` have passed."""
        deadline = time.monotonic() + seconds
        total = Result()
        while True:
            step = self.run_once()
            total.add(step)
            if not (step.read or step.claimed) or time.monotonic() >= deadline:
                break
        try:
            self.forget_idle_consumers()
        except Exception:
            log.warning("could not tidy the usage consumer group", exc_info=True)
        return total


# --- one run at a time (the Celery task) --------------------------------------------------
def acquire(redis: Any, ttl_seconds: float) -> str | None:
    token = uuid.uuid4().hex
    if redis.set(LOCK_KEY, token, nx=True, px=int(ttl_seconds * 1000)):
        return token
    return None


def release(redis: Any, token: str) -> None:
    redis.eval(RELEASE_LOCK, 1, LOCK_KEY, token)


_clients: dict[str, Any] = {}


def client(url: str) -> Any:
    """One Redis client per process and URL."""
    if url not in _clients:
        import redis

        _clients[url] = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
    return _clients[url]


def consume(redis: Any, seconds: float, lock_ttl: float, name: str | None = None) -> Result | None:
    """Drain the stream for up to ``seconds`` unless another run holds the
    lock (None). The lock expires by itself if this process dies."""
    token = acquire(redis, lock_ttl)
    if token is None:
        return None
    try:
        return Consumer(redis, name=name or default_name()).drain(seconds)
    finally:
        release(redis, token)
