"""From the Redis usage streams into the ledger, losing nothing.

The relay appends one entry per request to its team's stream (``gateway.metering``,
``billing.events.stream_for``: ``BATON_USAGE_STREAMS`` streams) and forgets it. Consumers
read the streams through the consumer group ``baton-ledger`` of each:

1. ``XAUTOCLAIM`` first takes over entries another consumer read but never
   acknowledged for ``BATON_USAGE_CLAIM_IDLE_SECONDS`` (it died, or its
   database write failed);
2. ``XREADGROUP`` then reads new entries, a batch at a time;
3. the batch is priced and inserted into the ledger in one transaction, with
   ON CONFLICT DO NOTHING on the request id (``billing.ledger.ingest``);
4. only after the commit are the entries acknowledged (``XACK``) and removed
   from the stream (``XDEL``), in one MULTI per stream.

So delivery into the ledger is at least once, and the unique request id
makes it exactly once: a consumer killed before step 4 leaves its entries
pending, another one claims them, and the replayed inserts do nothing. An
entry that is not a usage event at all is moved to ``baton:usage:dead`` (and
logged) rather than blocking the stream forever.

Consumers claim streams. Each consumer process holds a lease on some of the streams
(``baton:usage:lease:<n>``: its name, for ``LEASE_MS``, renewed every third of it) and reads
only those: about ``ceil(streams / live consumers)`` each, live consumers being those that
announced themselves (``baton:usage:consumers``, scored by the Redis clock) within a lease.
A consumer holding more than its share lets the extra go, so one that starts takes over
some within a few seconds; one that dies leaves its leases to expire, and whoever takes a
stream next claims its pending entries (step 1). Why leases rather than every consumer
reading every stream: a stream read by one consumer gets whole batches and blocking reads
(on one Redis, one ``XREADGROUP`` over all the consumer's streams), where N consumers
polling N streams would make N x N mostly empty reads. Leases are for efficiency only:
``XREADGROUP`` never gives an entry to two consumers, and the rare overlap (a consumer
that paused past its lease while another claimed its pending entries) writes request ids
the ledger already has, which it ignores.

Redis must persist the streams: run it with AOF (``appendonly yes``; with
``appendfsync everysec`` a power cut can lose the last second, ``always``
loses nothing), as ``deploy/compose.yaml`` does. A Redis restart then keeps
every entry, acknowledged or not, and the consumer group's pending lists.
With replicas, the relay waits for one to have each batch (gateway/metering.py).

Two ways to run it: the ``billing.consume_usage`` Celery task that beat runs
every few seconds (each run takes the streams it can, drains them for a bounded
time and lets them go), or ``manage.py consume_usage`` as a dedicated process
(it holds its streams until it stops). They can run together.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
from django.conf import settings
from django.db import transaction

from billing import conf
from billing.events import UsageEvent, stream_keys
from billing.ledger import ingest

log = logging.getLogger("baton.metering")

GROUP = "baton-ledger"
DEAD_LETTERS = "baton:usage:dead"
LEASE_PREFIX = "baton:usage:lease:"  # + the stream's index
CONSUMERS_KEY = "baton:usage:consumers"
LEASE_MS = 15_000
BATCH = 500
# Consumers that have acknowledged everything and were idle this long are
# removed from the group (each worker process adds its own name).
FORGET_IDLE_MS = 3_600_000

# KEYS[1] the consumers zset; ARGV: name, lease ms. Announces the consumer, forgets those
# silent for a lease, and returns how many are live. The Redis clock, so hosts' do not matter.
ANNOUNCE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 4)
return redis.call('ZCARD', KEYS[1])
"""
RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class Entry(NamedTuple):
    stream: str
    id: str
    fields: dict[bytes, bytes]


def default_name() -> str:
    # The random part: a new process that reuses a dead one's pid is not taken for it.
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _is_cluster(redis: Any) -> bool:
    from config.redis_clients import is_cluster_client

    return is_cluster_client(redis)


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
    redis: Any  # a synchronous redis.Redis (or redis.cluster.RedisCluster)
    name: str = field(default_factory=default_name)
    batch: int = BATCH
    claim_idle_ms: int | None = None
    # Called after the ledger commit and before the acknowledgement (tests
    # kill the process there to prove a replay is not double counted).
    before_ack: Callable[[list[str]], None] | None = None
    streams: list[str] = field(default_factory=list)  # default: all BATON_USAGE_STREAMS
    lease_ms: int = LEASE_MS
    held: list[str] = field(default_factory=list)  # the streams leased, in lease order
    _groups_ready: bool = False
    _next_balance: float = 0.0
    _turn: int = 0

    def __post_init__(self) -> None:
        if self.claim_idle_ms is None:
            self.claim_idle_ms = int(conf.usage_claim_idle_seconds() * 1000)
        if not self.streams:
            self.streams = stream_keys(settings.BATON_USAGE_STREAMS)
        self.cluster = _is_cluster(self.redis)

    # --- the groups -----------------------------------------------------------------
    def ensure_group(self) -> None:
        if self._groups_ready:
            return
        import redis

        for stream in self.streams:
            try:
                self.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._groups_ready = True

    def forget_idle_consumers(self) -> None:
        for stream in self.held:
            for consumer in self.redis.xinfo_consumers(stream, GROUP):
                name = _text(consumer["name"])
                if (
                    name != self.name
                    and int(consumer.get("pending", 0)) == 0
                    and int(consumer.get("idle", 0)) > FORGET_IDLE_MS
                ):
                    self.redis.xgroup_delconsumer(stream, GROUP, name)

    # --- leases -----------------------------------------------------------------------
    def lease_key(self, stream: str) -> str:
        return LEASE_PREFIX + str(self.streams.index(stream))

    def balance(self, force: bool = False) -> None:
        """Renew the leases held, then take or give up streams to hold a fair share."""
        now = time.monotonic()
        if not force and now < self._next_balance:
            return
        self._next_balance = now + self.lease_ms / 3000
        live = int(self.redis.eval(ANNOUNCE, 1, CONSUMERS_KEY, self.name, self.lease_ms))
        share = math.ceil(len(self.streams) / max(live, 1))
        if self.held:
            pipe = self.redis.pipeline(transaction=False)
            for stream in self.held:
                pipe.eval(RENEW, 1, self.lease_key(stream), self.name, self.lease_ms)
            renewed = pipe.execute()
            self.held = [s for s, ok in zip(self.held, renewed, strict=True) if int(ok)]
        while len(self.held) > share:
            self.let_go(self.held[-1])
        if len(self.held) < share:
            # Start where this consumer's name points, so that consumers starting together
            # do not all ask for the same streams first.
            start = zlib.crc32(self.name.encode()) % len(self.streams)
            order = self.streams[start:] + self.streams[:start]
            free = [s for s in order if s not in self.held]
            pipe = self.redis.pipeline(transaction=False)
            for stream in free:
                pipe.set(self.lease_key(stream), self.name, nx=True, px=self.lease_ms)
            taken = pipe.execute()
            for stream, ok in zip(free, taken, strict=True):
                if not ok:
                    continue
                if len(self.held) < share:
                    self.held.append(stream)
                else:  # more free than the share: give back what the pipeline took
                    self.redis.eval(RELEASE, 1, self.lease_key(stream), self.name)

    def let_go(self, stream: str) -> None:
        self.held.remove(stream)
        self.redis.eval(RELEASE, 1, self.lease_key(stream), self.name)

    def leave(self) -> None:
        """Give every lease back and stop counting as live (a clean stop)."""
        for stream in list(self.held):
            try:
                self.let_go(stream)
            except Exception:  # it expires by itself
                log.warning("could not give back the lease of %s", stream, exc_info=True)
        try:
            self.redis.zrem(CONSUMERS_KEY, self.name)
        except Exception:
            log.warning("could not leave the usage consumers", exc_info=True)
        self._next_balance = 0.0  # used again, it takes its share at once

    # --- reading --------------------------------------------------------------------
    def reading(self) -> list[str]:
        """The streams read: those leased, or (no lease taken: a test, a one-off) all."""
        return self.held or self.streams

    def claim(self) -> list[Entry]:
        """Entries other consumers read and never acknowledged."""
        entries: list[Entry] = []
        for stream in self.reading():
            reply = self.redis.xautoclaim(
                stream, GROUP, self.name, self.claim_idle_ms, "0-0", count=self.batch
            )
            entries += [
                Entry(stream, _text(i), fields)
                for i, fields in reply[1]
                if i is not None and fields
            ]
            # Entries deleted from the stream while still pending: nothing to write.
            gone = [_text(i) for i, fields in reply[1] if i is not None and not fields]
            if len(reply) > 2:
                gone += [_text(i) for i in reply[2]]
            if gone:
                self.redis.xack(stream, GROUP, *gone)
        return entries

    def read(self, block_ms: int | None = None) -> list[Entry]:
        streams = self.reading()
        if not self.cluster:
            # One call over every stream read (one Redis: any keys may share a command).
            reply = self.redis.xreadgroup(
                GROUP, self.name, dict.fromkeys(streams, ">"), count=self.batch, block=block_ms
            )
            return [
                Entry(_text(stream), _text(i), fields)
                for stream, items in (reply or [])
                for i, fields in items
            ]
        # A cluster: each stream in its own call (their keys are in different slots); wait
        # only when none had anything, on one stream at a time in turn.
        for stream in streams:
            entries = self._read_one(stream, None)
            if entries:
                return entries
        if not block_ms:
            return []
        self._turn = (self._turn + 1) % len(streams)
        return self._read_one(streams[self._turn], max(100, block_ms // len(streams)))

    def _read_one(self, stream: str, block_ms: int | None) -> list[Entry]:
        reply = self.redis.xreadgroup(
            GROUP, self.name, {stream: ">"}, count=self.batch, block=block_ms
        )
        return [
            Entry(stream, _text(i), fields) for _, items in (reply or []) for i, fields in items
        ]

    # --- writing --------------------------------------------------------------------
    def parse(self, entries: Sequence[Entry]) -> tuple[list[UsageEvent], list[Entry]]:
        events: list[UsageEvent] = []
        dead: list[Entry] = []
        for entry in entries:
            try:
                event = UsageEvent.from_json(entry.fields[b"event"])
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
        ids = [entry.id for entry in entries]
        if self.before_ack is not None:
            self.before_ack(ids)
        for entry in dead:
            # Before the acknowledgement: a crash between the two sets it aside twice at worst.
            log.error(
                "usage stream entry %s of %s is not a usage event; moved to %s",
                entry.id,
                entry.stream,
                DEAD_LETTERS,
            )
            self.redis.xadd(
                DEAD_LETTERS, {**entry.fields, b"id": entry.id.encode(), b"stream": entry.stream}
            )
        by_stream: dict[str, list[str]] = {}
        for entry in entries:
            by_stream.setdefault(entry.stream, []).append(entry.id)
        for stream, stream_ids in by_stream.items():
            pipe = self.redis.pipeline(transaction=True)  # one key: one slot on a cluster too
            pipe.xack(stream, GROUP, *stream_ids)
            pipe.xdel(stream, *stream_ids)
            pipe.execute()
        result.dead = len(dead)
        return result

    # --- loops ----------------------------------------------------------------------
    def run_once(self, block_ms: int | None = None) -> Result:
        """Take a fair share of the streams, claim abandoned entries on them, then read
        and write one batch of new ones."""
        import redis

        self.ensure_group()
        self.balance()
        if not self.held:
            # Every stream is another consumer's: wait as long as a read would have.
            if block_ms:
                time.sleep(block_ms / 1000)
            return Result()
        try:
            return self._run_once(block_ms)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The stream was deleted under us (a flushed Redis): start it again.
            self._groups_ready = False
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
        """Consume until the streams this consumer gets have nothing for it or ``seconds``
        have passed, then give them back."""
        deadline = time.monotonic() + seconds
        total = Result()
        try:
            while True:
                step = self.run_once()
                total.add(step)
                if not (step.read or step.claimed) or time.monotonic() >= deadline:
                    break
            try:
                self.forget_idle_consumers()
            except Exception:
                log.warning("could not tidy the usage consumer group", exc_info=True)
        finally:
            self.leave()
        return total


_clients: dict[str, Any] = {}


def client(url: str) -> Any:
    """One Redis client per process and URL (one server, Sentinel or Cluster)."""
    if url not in _clients:
        from config.redis_clients import sync_client

        _clients[url] = sync_client(url, socket_timeout=10, socket_connect_timeout=5)
    return _clients[url]


def consume(redis: Any, seconds: float, name: str | None = None) -> Result | None:
    """Drain the streams this run can lease for up to ``seconds``; None when every stream
    is leased by other consumers."""
    consumer = Consumer(redis, name=name or default_name())
    consumer.ensure_group()
    consumer.balance(force=True)
    if not consumer.held:
        consumer.leave()
        return None
    return consumer.drain(seconds)
