"""Shared types of the provider protocol layer.

Everything in ``wire.providers`` is pure: bytes and dicts in, bytes and dicts
out, no network and no Django. The hot path (gateway/asgi.py) resolves an
:class:`Upstream`, asks :func:`wire.providers.get_adapter` for the adapter of
its family, sends the :class:`UpstreamRequest` it builds and hands the reply
back to the same adapter. Every upstream failure comes back as one
:class:`UpstreamError` already expressed in OpenAI terms, so routing decisions
(retry, fall back, cool down) never look at provider-specific shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson

from wire.scrub import scrub

Endpoint = Literal[
    "chat", "completions", "embeddings", "models", "messages", "count_tokens", "responses"
]

ErrorKind = Literal[
    "auth",
    "rate_limit",
    "quota",
    "overloaded",
    "server",
    "bad_request",
    "not_found",
    "content_filter",
    "other",
]


@dataclass(frozen=True, slots=True)
class Upstream:
    """One routing target, resolved by the hot path."""

    provider: str  # catalog id: "openai", "azure", "anthropic", "moonshot", ...
    family: str  # adapter family: "openai" (generic), "azure", "anthropic"
    base_url: str  # no trailing slash, e.g. "https://api.moonshot.cn/v1"
    api_key: str  # decrypted secret
    model: str  # upstream model name to send
    # azure: {"api_version": "2024-10-21" | "v1", "deployments": {"gpt-4o": "my-dep"}}
    # openai: {"organization": ..., "project": ...}; any family: {"headers": {...}}
    # anthropic: {"anthropic_version": "2023-06-01", "default_max_tokens": 4096}
    extras: Mapping[str, Any] = field(default_factory=dict)
    # Dialects the target serves natively besides chat, and where: {"messages": base URL}
    # (requests go to base + "/messages"). A client of such a dialect is passed through.
    natives: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


@dataclass(slots=True)
class Usage:
    """Token counts of one request, normalised to OpenAI semantics.

    ``cached_tokens`` and ``cache_write_tokens`` are subsets of ``prompt_tokens``
    and ``reasoning_tokens`` is a subset of ``completion_tokens``: each subset
    is billed at its own rate and never added again. ``estimated`` marks counts
    Baton made itself because the provider reported none (or only part).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    # Of the cache writes, those kept for an hour (Anthropic prices them at 2x input,
    # five-minute writes at 1.25x); a subset of cache_write_tokens.
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_anthropic(self) -> dict[str, Any]:
        """The ``usage`` object of a Messages response: input excludes cache reads and writes."""
        written_1h = min(self.cache_write_1h_tokens, self.cache_write_tokens)
        return {
            "input_tokens": max(
                0, self.prompt_tokens - self.cached_tokens - self.cache_write_tokens
            ),
            "cache_creation_input_tokens": self.cache_write_tokens,
            "cache_read_input_tokens": self.cached_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.cache_write_tokens - written_1h,
                "ephemeral_1h_input_tokens": written_1h,
            },
            "output_tokens": self.completion_tokens,
        }

    def to_responses(self) -> dict[str, Any]:
        """The ``usage`` object of a Responses API response (input includes cache reads and
        writes, output includes reasoning, as in chat)."""
        return {
            "input_tokens": self.prompt_tokens,
            # cache_write_tokens: OpenAI's own name (GPT-5.6 and later report cache writes).
            "input_tokens_details": {
                "cached_tokens": self.cached_tokens,
                "cache_write_tokens": self.cache_write_tokens,
            },
            "output_tokens": self.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.total_tokens,
        }

    def to_openai(self) -> dict[str, Any]:
        """The ``usage`` object of an OpenAI response."""
        prompt_details: dict[str, int] = {"cached_tokens": self.cached_tokens}
        if self.cache_write_tokens:
            # Not an OpenAI field; OpenRouter uses this name and clients ignore
            # unknown keys, so Anthropic cache writes stay visible.
            prompt_details["cache_write_tokens"] = self.cache_write_tokens
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "prompt_tokens_details": prompt_details,
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }


@dataclass(frozen=True, slots=True)
class Refusal:
    """An error in neutral terms; each dialect renders it in its own shape (wire/dialects/)."""

    status: int
    message: str
    type: str = "invalid_request_error"  # the OpenAI error type
    code: str | None = None
    param: str | None = None
    # False when retrying cannot help (a used-up budget, not one held by requests in flight).
    retryable: bool = True


# The OpenAI ``error.type`` Baton reports for each kind of failure.
_TYPE_BY_KIND: dict[str, str] = {
    "auth": "authentication_error",
    "rate_limit": "rate_limit_error",
    "quota": "insufficient_quota",
    "overloaded": "server_error",
    "server": "server_error",
    "bad_request": "invalid_request_error",
    "not_found": "invalid_request_error",
    "content_filter": "invalid_request_error",
    "other": "upstream_error",
}

# Kinds that allow the hot path to try the next target. Auth and quota are in
# the list on purpose: a team's credential that is revoked, region-blocked or
# out of money at one provider is exactly the outage Baton exists to route
# around; the failing target is cooled down rather than retried.
_FALLBACK_KINDS = frozenset({"auth", "rate_limit", "quota", "overloaded", "server"})

# What Baton passes on of a provider's error message; real ones are a sentence or two.
MAX_MESSAGE_CHARS = 2000


class UpstreamError(Exception):
    """A provider failure, normalised to an OpenAI error.

    ``retryable`` means "another target may succeed": the hot path falls over
    to the next target (never the same one again) only when it is true and no
    byte has reached the client yet.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: ErrorKind,
        code: str | None = None,
        param: str | None = None,
        type: str | None = None,  # named after the OpenAI field
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind: ErrorKind = kind
        self.code = code
        self.param = param
        self.type = type or _TYPE_BY_KIND[kind]
        if retryable is None:
            retryable = kind in _FALLBACK_KINDS or (kind == "other" and status >= 500)
        self.retryable = retryable
        self.retry_after = retry_after

    def scrub_secret(self, secret: str) -> UpstreamError:
        """Remove every echo of ``secret`` from what this error carries (message, code,
        param; wire/scrub.py) and cut the message to MAX_MESSAGE_CHARS. In place, so
        that no other reference keeps the original; returns the error."""
        message = scrub(self.message[:MAX_MESSAGE_CHARS], secret)
        if message != self.message:
            self.message = message
            self.args = (message,)
        if self.code:
            self.code = scrub(self.code, secret)
        if self.param:
            self.param = scrub(self.param, secret)
        return self

    @staticmethod
    def type_for(kind: str) -> str:
        return _TYPE_BY_KIND[kind]

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions pickle and copy through their args; ours has keyword state.
        return (_restore_error, (self.status, self.message, self.__dict__.copy()))

    def __repr__(self) -> str:
        return (
            f"UpstreamError(status={self.status}, kind={self.kind!r}, code={self.code!r}, "
            f"retryable={self.retryable}, message={self.message!r})"
        )

    def openai_dict(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def openai_body(self) -> bytes:
        return orjson.dumps(self.openai_dict())

    def sse_event(self) -> bytes:
        """The error as an SSE event, for failures after the stream started."""
        return b"data: " + self.openai_body() + b"\n\n"


def _restore_error(status: int, message: str, state: dict[str, Any]) -> UpstreamError:
    error = UpstreamError(status, message, kind=state["kind"])
    error.__dict__.update(state)
    return error


def add_extra_headers(headers: dict[str, str], extras: Mapping[str, Any]) -> None:
    """Operator-configured headers (e.g. Qianfan's ``appid``); auth headers win."""
    extra = extras.get("headers")
    if isinstance(extra, Mapping):
        for name, value in extra.items():
            headers.setdefault(str(name), str(value))


class StreamTranslator(Protocol):
    """Incremental upstream-SSE to client-SSE conversion for one stream.

    Memory is bounded by the largest single event, never by the stream.
    After ``error`` is set the translator is closed: later input is ignored
    and ``finish`` returns nothing (the error event was the last output).
    """

    error: UpstreamError | None  # set once an in-stream error (or a broken stream) was seen

    @property
    def usage(self) -> Usage | None:
        """The best usage reported so far (None if the provider sent none)."""
        ...

    @property
    def completion_chars(self) -> int:
        """Generated characters seen (content, reasoning, tool arguments)."""
        ...

    @property
    def saw_done(self) -> bool:
        """The upstream itself signalled a normal end ([DONE] / message_stop)."""
        ...

    @property
    def tool_ids(self) -> list[str]:
        """The ids of the tool calls the turn made (bounded)."""
        ...

    @property
    def reasoning_parts(self) -> list[str] | None:
        """The turn's reasoning text as it came, None when too long to keep."""
        ...

    @property
    def stored_response(self) -> str | None:
        """The id of a response the upstream said it stored (native Responses on a stateful
        provider), which a later ``previous_response_id`` may name; None otherwise."""
        ...

    def feed(self, data: bytes) -> bytes:
        """Raw upstream bytes (any chunking) in, bytes for the client out."""
        ...

    def finish(self) -> bytes:
        """The upstream ended normally: flush (usage chunk, ``data: [DONE]``)."""
        ...

    @property
    def estimated_completion_tokens(self) -> int:
        """Offline estimate of the generated tokens, from the text seen so far."""
        ...

    def settle_usage(self, prompt_tokens_estimate: int) -> Usage:
        """The usage to bill: the reported one, completed or replaced by estimates."""
        ...


class Adapter(Protocol):
    """Speaks one provider family's wire format."""

    def build_request(
        self,
        endpoint: Endpoint,
        body: dict[str, Any],
        upstream: Upstream,
        *,
        stream: bool,
        forward: Mapping[str, str] | None = None,
    ) -> UpstreamRequest:
        """The upstream call for a client body. Never mutates ``body``. ``forward`` holds
        the client's headers that a native dialect passes on (``anthropic-version``...).

        Raises UpstreamError (``bad_request``) when the request cannot be
        expressed for this provider at all.
        """
        ...

    def parse_response(
        self, endpoint: Endpoint, body: bytes, upstream: Upstream
    ) -> tuple[bytes, Usage]:
        """A 2xx body to OpenAI-shaped bytes plus usage.

        Raises UpstreamError for errors hidden in 2xx bodies and for bodies
        that cannot be parsed. When the provider reported no usage the result
        has ``estimated=True``, an estimated ``completion_tokens`` and
        ``prompt_tokens == 0``: the caller fills the prompt side from
        :func:`wire.tokens.estimate_prompt_tokens`.
        """
        ...

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        """A non-2xx reply as an UpstreamError."""
        ...

    def stream_translator(
        self, endpoint: Endpoint, upstream: Upstream, *, client_wants_usage: bool
    ) -> StreamTranslator: ...
