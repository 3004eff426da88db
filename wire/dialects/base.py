"""What every ingress dialect provides, and what the relay reads from a client's request.

A dialect is the wire language a client speaks to Baton: Chat Completions (``chat``),
Anthropic Messages (``messages``) or the Responses API (``responses``). The relay runs the
same seven steps for each; the dialect only says how to read a request (``ask``), how to
say no (``error_body``, ``error_event``), how to end a stream that Baton cuts off, and how
to get to and from the chat pivot when a target does not speak the dialect natively.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from wire.base import Endpoint, Refusal

__all__ = ["Ask", "ClientRequest", "Dialect", "DialectError", "DialectName", "Pivot", "Refusal"]

DialectName = Literal["chat", "messages", "responses"]


@dataclass(frozen=True, slots=True)
class Ask:
    """What a client asks for, read once from its body by its dialect."""

    model: str
    stream: bool = False
    # Chat clients opt in to the usage chunk; the other dialects always carry usage.
    wants_usage: bool = True
    output_cap: int | None = None  # the request's own limit on generated tokens
    choices: int = 1  # completions asked for (chat's n)


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """The client's side of one translated request: what a pivot needs to answer in the
    client's dialect (the request it answers, and for Responses, how Baton seals the
    reasoning it hands the client to carry to the next turn)."""

    body: Mapping[str, Any]
    ask: Ask
    # Encrypts reasoning text under the team's data key (gateway/turns.py ``sealer``); None
    # when the team keeps no reasoning: then only its summary is shown.
    seal: Callable[[str], str] | None = None


class DialectError(Exception):
    """A request the dialect cannot accept (bad field, missing model...): a 4xx for the client."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class Dialect(Protocol):
    name: DialectName

    def ask(self, endpoint: Endpoint, body: dict[str, Any]) -> Ask:
        """Validate a parsed body and read what the client asks for; raise DialectError."""
        ...

    def error_body(self, refusal: Refusal) -> bytes:
        """A JSON error response body in the dialect's shape."""
        ...

    def error_event(self, refusal: Refusal) -> bytes:
        """An error after the stream started, as the dialect's SSE error event(s)."""
        ...

    def shutdown_tail(self, refusal: Refusal) -> bytes:
        """What ends a stream Baton itself must cut (shutdown): the error and the stream's end."""
        ...

    def error_status(self, refusal: Refusal) -> int:
        """The HTTP status the dialect's clients expect for this refusal."""
        ...

    def estimate_prompt_tokens(self, body: Mapping[str, Any]) -> int:
        """A realistic offline estimate of the prompt's tokens (tokens-per-minute
        reservations, usage a provider does not report). Money holds use
        ``wire.tokens.prompt_token_bound`` instead, the same upper bound for every dialect."""
        ...

    def models_body(self, models: list[tuple[str, str]]) -> bytes:
        """The model list (id, owner) in the dialect's shape."""
        ...

    # Translation through the chat pivot, for targets that do not speak this dialect
    # natively; None for chat itself (the pivot).
    pivot: Pivot | None


class Pivot(Protocol):
    """How a dialect gets to and from Chat Completions, the one language every target can
    be reached in (through its provider's chat adapter)."""

    def to_chat(self, endpoint: Endpoint, body: dict[str, Any]) -> dict[str, Any]:
        """The chat-completions body that asks the same thing."""
        ...

    def from_chat(self, endpoint: Endpoint, chat: bytes, client: ClientRequest) -> bytes:
        """A chat-completions response body as this dialect's response body."""
        ...

    def from_chat_stream(self, endpoint: Endpoint, client: ClientRequest) -> ChatStreamTranslator:
        """Chat-completions SSE (with usage) in, this dialect's SSE out."""
        ...


class ChatStreamTranslator(Protocol):
    """The outer half of a translated stream: chat SSE bytes in, dialect SSE bytes out."""

    def feed(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class NumberedStream(Protocol):
    """A stream whose events carry state of their own (the Responses API numbers every event
    and names its response in each lifecycle event), so that only the translator can end it
    properly when Baton cuts it: an upstream that broke off, a shutdown."""

    def failure_tail(self, refusal: Refusal) -> bytes:
        """The dialect's error event(s) and end of stream, continuing this stream."""
        ...
