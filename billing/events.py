"""The usage event: what the relay tells the ledger about one request.

The data plane (gateway/metering.py) builds one per request, successful or not,
and appends it to the Redis stream ``STREAM_KEY`` (or, in the embedded default,
hands it straight to ``billing.ledger.ingest``); the consumer (billing/consumer.py)
reads the stream into the ledger. This module is the contract between them: the
fields, their meaning, and the wire form on the stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

STREAM_KEY = "baton:usage"


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
