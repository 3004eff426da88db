"""Fault directives carried in the URL: ``/_f/{directives}/{normal path}``.

Faults live in the base URL rather than in headers or the body so that a test can point one
credential of a provider at a "broken" base URL and leave the others healthy, without Baton
having to forward anything special. Directives are ``key=value`` pairs joined by ``;`` or
``,``; ``hang``, ``echo_key``, ``strict_reasoning`` and ``redacted`` may be written without
a value. Stream chunk numbers are 1-based and count every SSE event the fake emits (role
chunk, content chunks, finish/usage chunks, ``[DONE]``, Anthropic's ``ping``...), but not SSE
comments. Directives apply to every endpoint, Messages bases included
(``/_f/strict_reasoning/deepseek/anthropic/v1/messages``).

================ ===========================================================================
status           reply with this HTTP status (400-599) in the flavor's error shape
retry_after      seconds for the ``retry-after`` header sent with status 429 (default 1)
code             override the provider error code (e.g. ``insufficient_quota`` with 429)
latency_ms       delay before the response headers (overrides the server default + jitter)
first_byte_ms    stream: delay after the headers before the first event
tps              tokens per second (streams pace content chunks; non-streams wait n/tps)
chunk_ms         stream: delay before every event after the first
chunks           number of content tokens in the reply
drop_after       stream: break the connection after N events (no terminator)
error_after      stream: after N events send an in-stream error in the flavor's shape, then end
malformed_at     stream: event N is sent as invalid JSON (``data: {not json``)
hang             never answer; wait for the client to disconnect
echo_key         put the presented key in the message of the ``status`` reply and the
                 ``error_after`` event, as a careless provider does:
                 ``full`` (also the bare word), ``prefix`` (its first 12 characters and
                 ``...``) or ``url`` (URL-encoded, every reserved character escaped)
strict_reasoning when the request thinks, refuse a history that lost or altered the reasoning
                 of a tool-call turn, with the provider's own status and text (reasoning.py):
                 Messages endpoints check thinking blocks and their signatures; chat
                 endpoints check ``reasoning_content`` (DeepSeek, Moonshot, Zhipu) or
                 MiniMax's ``<think>`` / ``reasoning_details``; ``/responses`` refuses a
                 ``function_call`` item whose reasoning item is missing, and a reasoning item
                 with no output item after it, with OpenAI's texts (responses.py)
redacted         Messages: a thinking reply also carries a ``redacted_thinking`` block
================ ===========================================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from functools import lru_cache

PREFIX = "/_f/"
_SPLIT_RE = re.compile(r"[;,]")


class FaultSyntaxError(ValueError):
    """A directive the fake does not understand; reported as a 400 so typos fail loudly."""


@dataclass(frozen=True, slots=True)
class Faults:
    status: int | None = None
    retry_after: float = 1.0
    code: str | None = None
    latency_ms: float | None = None
    first_byte_ms: float = 0.0
    tps: float | None = None
    chunk_ms: float = 0.0
    chunks: int | None = None
    drop_after: int | None = None
    error_after: int | None = None
    malformed_at: int | None = None
    hang: bool = False
    echo_key: str | None = None
    strict_reasoning: bool = False
    redacted: bool = False


NONE = Faults()
_INT = frozenset({"status", "chunks", "drop_after", "error_after", "malformed_at"})
_FLOAT = frozenset({"retry_after", "latency_ms", "first_byte_ms", "tps", "chunk_ms"})
_BOOL = frozenset({"hang", "strict_reasoning", "redacted"})
_KEYS = frozenset(f.name for f in fields(Faults))
ECHO_FORMS = frozenset({"full", "prefix", "url"})


def _convert(key: str, raw: str) -> object:
    if key in _BOOL:
        if raw in ("", "1", "true", "yes"):
            return True
        if raw in ("0", "false", "no"):
            return False
        raise FaultSyntaxError(f"fault directive {key!r} expects a boolean, got {raw!r}")
    if key == "echo_key":
        form = raw or "full"
        if form not in ECHO_FORMS:
            raise FaultSyntaxError(
                f"fault directive 'echo_key' expects one of {sorted(ECHO_FORMS)}"
            )
        return form
    if key not in _INT and key not in _FLOAT:
        return raw
    try:
        value: float = int(raw) if key in _INT else float(raw)
    except ValueError:
        raise FaultSyntaxError(f"fault directive {key!r} expects a number, got {raw!r}") from None
    if value < 0:
        raise FaultSyntaxError(f"fault directive {key!r} must not be negative")
    return value


@lru_cache(maxsize=512)
def parse(spec: str) -> Faults:
    """Parse a directive string; cached because a test or benchmark reuses one prefix a lot."""
    values: dict[str, object] = {}
    for item in _SPLIT_RE.split(spec):
        item = item.strip()
        if not item:
            continue
        key, _, raw = item.partition("=")
        key = key.strip()
        if key not in _KEYS:
            raise FaultSyntaxError(f"unknown fault directive {key!r}")
        values[key] = _convert(key, raw.strip())
    faults = replace(NONE, **values)  # type: ignore[arg-type]
    if faults.status is not None and not 400 <= faults.status <= 599:
        raise FaultSyntaxError("fault directive 'status' must be between 400 and 599")
    if faults.tps == 0:
        faults = replace(faults, tps=None)
    return faults


def split_path(path: str) -> tuple[Faults, str]:
    """Strip a ``/_f/{directives}`` prefix, returning the faults and the normal path."""
    if not path.startswith(PREFIX):
        return NONE, path
    spec, slash, rest = path[len(PREFIX) :].partition("/")
    return parse(spec), slash + rest
