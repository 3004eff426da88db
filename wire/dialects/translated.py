"""A dialect reached through the chat pivot: how a client of one dialect talks to a target
that does not speak it.

``TranslatedAdapter`` wraps the target's own chat adapter (the one a chat client would get):
the request goes dialect -> chat -> the provider's wire, the reply comes back provider -> chat
-> dialect. Streams chain two translators: the provider's (upstream bytes to chat SSE, with
usage) and the dialect's (chat SSE to the dialect's SSE). Usage, estimates and errors are the
inner translator's: it is the one that saw the provider's own counts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from wire.base import (
    Adapter,
    Endpoint,
    StreamTranslator,
    Upstream,
    UpstreamError,
    UpstreamRequest,
    Usage,
)
from wire.dialects.base import Ask, ChatStreamTranslator, ClientRequest, Pivot, Refusal


class TranslatedAdapter:
    """One target, one request: it remembers the client's body it translated, which the
    pivot reads again to answer in the client's terms (Responses echoes the request and
    maps tool names back)."""

    __slots__ = ("ask", "body", "inner", "pivot", "seal")

    def __init__(
        self,
        pivot: Pivot,
        inner: Adapter,
        ask: Ask,
        seal: Callable[[str], str] | None = None,
    ) -> None:
        self.pivot = pivot
        self.inner = inner
        self.ask = ask
        self.seal = seal
        self.body: Mapping[str, Any] = {}

    @property
    def client(self) -> ClientRequest:
        return ClientRequest(self.body, self.ask, self.seal)

    def build_request(
        self,
        endpoint: Endpoint,
        body: dict[str, Any],
        upstream: Upstream,
        *,
        stream: bool,
        forward: Mapping[str, str] | None = None,
    ) -> UpstreamRequest:
        self.body = body
        chat = self.pivot.to_chat(endpoint, body)
        return self.inner.build_request("chat", chat, upstream, stream=stream)

    def parse_response(
        self, endpoint: Endpoint, body: bytes, upstream: Upstream
    ) -> tuple[bytes, Usage]:
        chat, usage = self.inner.parse_response("chat", body, upstream)
        return self.pivot.from_chat(endpoint, chat, self.client), usage

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        return self.inner.parse_error(status, body, headers)

    def stream_translator(
        self, endpoint: Endpoint, upstream: Upstream, *, client_wants_usage: bool
    ) -> ChainedTranslator:
        # The dialect needs the usage chunk to report usage in its own events.
        inner = self.inner.stream_translator("chat", upstream, client_wants_usage=True)
        return ChainedTranslator(inner, self.pivot.from_chat_stream(endpoint, self.client))


class ChainedTranslator:
    """The provider's stream translator, then the dialect's: one StreamTranslator."""

    __slots__ = ("inner", "outer")

    def __init__(self, inner: StreamTranslator, outer: ChatStreamTranslator) -> None:
        self.inner = inner
        self.outer = outer

    def feed(self, data: bytes) -> bytes:
        chat = self.inner.feed(data)
        return self.outer.feed(chat) if chat else b""

    def finish(self) -> bytes:
        return self.outer.feed(self.inner.finish()) + self.outer.finish()

    def failure_tail(self, refusal: Refusal) -> bytes | None:
        """The dialect's own ending, where its stream numbers its events (NumberedStream)."""
        tail = getattr(self.outer, "failure_tail", None)
        return tail(refusal) if tail is not None else None

    @property
    def usage(self) -> Usage | None:
        return self.inner.usage

    @property
    def completion_chars(self) -> int:
        return self.inner.completion_chars

    @property
    def error(self) -> UpstreamError | None:
        return self.inner.error

    @error.setter
    def error(self, value: UpstreamError | None) -> None:
        self.inner.error = value

    @property
    def saw_done(self) -> bool:
        return self.inner.saw_done

    @property
    def tool_ids(self) -> list[str]:
        return self.inner.tool_ids

    @property
    def reasoning_parts(self) -> list[str] | None:
        return self.inner.reasoning_parts

    @property
    def stored_response(self) -> str | None:
        return None  # Baton stores no responses, and a chat upstream has none to store

    @property
    def estimated_completion_tokens(self) -> int:
        return self.inner.estimated_completion_tokens

    def settle_usage(self, prompt_tokens_estimate: int) -> Usage:
        return self.inner.settle_usage(prompt_tokens_estimate)
