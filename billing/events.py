"""The usage event: what the relay tells the ledger about one request.

The data plane (gateway/metering.py) builds one per request, successful or not,
and appends it to its team's Redis stream (or, in the embedded default, hands it
straight to ``billing.ledger.ingest``); the consumer (billing/consumer.py) reads the
streams into the ledger. This module is the contract between them: the fields, their
meaning, the wire form on the stream, and which stream a team's events go to.

Streams. ``BATON_USAGE_STREAMS`` (N, default 1) streams share the usage, so that no single
key, and on a Redis Cluster no single shard, carries all of it: a team's events all go to
stream ``crc32(team id) mod N`` (``stream_for``), a hash every process computes alike.
Stream 0 keeps the name the single stream always had (``STREAM_KEY``), so N = 1 is the
layout of earlier releases; the others are ``baton:usage:1`` to ``baton:usage:{N-1}``.
Raising N is safe at any time (consumers read every stream, and an event is ingested under
its request id wherever it sits). Lowering it strands the events left in the streams
dropped: do it once their ``baton_usage_stream_shard_length`` is 0.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import orjson

STREAM_KEY = "baton:usage"


def stream_keys(count: int) -> list[str]:
    """The names of the ``count`` usage streams, stream 0 first."""
    return [STREAM_KEY] + [f"{STREAM_KEY}:{index}" for index in range(1, count)]


def shard_of(team_id: str, count: int) -> int:
    """Which of ``count`` streams a team's events go to (the same in every process)."""
    if count <= 1:
        return 0
    return zlib.crc32(str(team_id).encode()) % count


def stream_for(team_id: str, count: int) -> str:
    index = shard_of(team_id, count)
    return f"{STREAM_KEY}:{index}" if index else STREAM_KEY


@dataclass(slots=True)
class UsageEvent:
    request_id: str
    team_id: str
    api_key_id: str | None
    endpoint: str
    alias: str
    credential_id: str | None
    provider: str
    upstream_model: str
    prompt_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    estimated: bool
    status: int
    error_class: str
    streamed: bool
    attempts: int
    latency_ms: float
    ttfb_ms: float | None
    overhead_ms: float
    # When the request started, epoch seconds. The ledger's partition key and, with
    # request_id, its unique key: every writer of one request's usage (the relay at settle,
    # a replay, an estimate for a request whose process died) must send this same float, or
    # the request would be recorded twice.
    created_at: float
    # Added later, so they have defaults: events already on the stream still read.
    dialect: str = "chat"  # what the client spoke: chat, messages, responses
    egress: str = ""  # what went upstream: chat, messages... (empty: nothing was sent)
    cache_write_1h_tokens: int = 0  # of cache_write_tokens, those kept for an hour
    reasoning: str = ""  # "restored" or "dropped" when Baton changed a conversation's reasoning
    client_request_id: str = ""  # the client's own id for the request, when it sent one

    def to_json(self) -> bytes:
        # orjson serialises dataclasses natively, ten times faster than asdict().
        return orjson.dumps(self)

    @classmethod
    def from_json(cls, raw: bytes | str) -> UsageEvent:
        return cls(**orjson.loads(raw))
