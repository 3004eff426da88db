"""What the relay knows about one request while it runs.

``RelayApp`` fills a ``Call`` step by step; at the end it becomes the request's
usage event (settle) and its metrics and log line (gateway/observability.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.admission import Hold
from gateway.contexts import KeyContext, Target
from gateway.turns import TurnNotes
from wire.dialects import CHAT, Dialect
from wire.providers import Usage


@dataclass(slots=True)
class Call:
    """Bookkeeping for one relay request, turned into its usage event at the end."""

    request_id: str
    started: float  # time.perf_counter(), for durations
    # time.time() at the same moment: the usage event's created_at, which the ledger is
    # partitioned and deduplicated by, so every writer of this request's usage sends this.
    client_request_id: str = ""  # the client's own id for it (x-client-request-id, x-request-id)
    endpoint: str = ""
    dialect: Dialect = CHAT  # what the client speaks: its errors come back in it
    egress: str = ""  # what went upstream: "chat", "messages"...
    reasoning: str = ""  # "restored" / "dropped": what Baton did to the loop's reasoning
    stored_response: str | None = None  # a Responses id the upstream stored
    # Writes the reply's tool-call ids (and a stored response's id) to the turn memory
    # before the client sees them.
    notes: TurnNotes | None = None
    key: KeyContext | None = None
    alias: str = ""
    target: Target | None = None
    streamed: bool = False
    attempts: int = 0
    status: int = 0
    error_class: str = ""
    usage: Usage = field(default_factory=Usage)
    upstream_seconds: float = 0.0
    ttfb: float | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    hold: Hold | None = None
