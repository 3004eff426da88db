"""What every stream translator shares.

Splitting the upstream bytes into events, closing for good after the first
error (whose event never carries the credential's key), and settling usage when a stream ended early are the same for every
wire format; subclasses only say how to handle one event and what they know
about the completion count.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any

from wire.base import UpstreamError, Usage
from wire.errors import oversized_event_error
from wire.sse import EventSplitter
from wire.tokens import units_to_tokens

MAX_NOTED_TOOLS = 64
MAX_NOTED_REASONING = 256 * 1024  # characters of reasoning remembered for one turn


class TranslatorBase(ABC):
    __slots__ = (
        "_closed",
        "_secret",
        "_splitter",
        "_units",
        "_wants_usage",
        "completion_chars",
        "error",
        "reasoning_parts",
        "saw_done",
        "stored_response",
        "tool_ids",
        "usage",
    )

    def __init__(self, *, client_wants_usage: bool, secret: str = "") -> None:
        self.usage: Usage | None = None
        self.completion_chars = 0
        self.error: UpstreamError | None = None
        self.saw_done = False
        self._splitter = EventSplitter()
        self._wants_usage = client_wants_usage
        self._closed = False
        self._secret = secret  # the credential's key: scrubbed from in-stream errors
        self._units = 0  # estimated completion tokens x 4
        # What Baton remembers of a tool-calling turn (gateway/turns.py): its tool-call ids
        # and its reasoning text, both bounded so a stream's memory stays constant.
        self.tool_ids: list[str] = []
        self.reasoning_parts: list[str] | None = []  # None: too long to keep
        self.stored_response: str | None = None  # a response id the upstream stored

    def _note_tool(self, tool_id: Any) -> None:
        if isinstance(tool_id, str) and tool_id and len(self.tool_ids) < MAX_NOTED_TOOLS:
            self.tool_ids.append(tool_id)

    def _note_reasoning(self, text: Any) -> None:
        parts = self.reasoning_parts
        if parts is None or not isinstance(text, str) or not text:
            return
        parts.append(text)
        if len(parts) % 64 == 0 and sum(map(len, parts)) > MAX_NOTED_REASONING:
            self.reasoning_parts = None

    @property
    def estimated_completion_tokens(self) -> int:
        return units_to_tokens(self._units)

    def feed(self, data: bytes) -> bytes:
        if self._closed:
            return b""
        out = [self._handle(raw) for raw in self._splitter.feed(data)]
        if self._splitter.overflow and not self._closed:
            out.append(self._fail(oversized_event_error()))
        return b"".join(out)

    def finish(self) -> bytes:
        if self._closed:
            return b""
        tail = self._splitter.take_tail()
        # Tolerate a last event without its blank line ("data: [DONE]" at EOF).
        out = self._handle(tail) if tail.strip() else b""
        if self._closed:
            return out
        return out + self._end()

    def settle_usage(self, prompt_tokens_estimate: int) -> Usage:
        """The usage to bill: as reported, completed by Baton's estimate (and
        flagged ``estimated``) when the stream ended before the provider said."""
        estimate = self.estimated_completion_tokens
        if self.usage is None:
            return Usage(
                prompt_tokens=prompt_tokens_estimate, completion_tokens=estimate, estimated=True
            )
        if not self._completion_reported():
            return dataclasses.replace(
                self.usage, completion_tokens=self._partial_completion(estimate), estimated=True
            )
        return dataclasses.replace(self.usage)

    @abstractmethod
    def _handle(self, raw: bytes) -> bytes:
        """One complete upstream event in, bytes for the client out."""

    @abstractmethod
    def _end(self) -> bytes:
        """The bytes that close a stream that ended normally."""

    def _fail(self, error: UpstreamError) -> bytes:
        """Record the error, close the translator, return its error event: an OpenAI
        error event, without anything of the credential's key the provider echoed."""
        self.error = error.scrub_secret(self._secret)
        self._closed = True
        return self._error_event(self.error)

    def _error_event(self, error: UpstreamError) -> bytes:
        """How this stream says it failed: an OpenAI error event; native dialects override."""
        return error.sse_event()

    @abstractmethod
    def _completion_reported(self) -> bool:
        """Whether the provider's completion count is final."""

    @abstractmethod
    def _partial_completion(self, estimate: int) -> int:
        """Completion tokens to bill when the count is not final."""


class FinalUsageTranslator(TranslatorBase):
    """A stream whose provider reports the final completion count in one closing event
    (Anthropic's ``message_delta``, a Response's terminal event). Until that event arrives,
    a cut stream bills the larger of what was reported so far (``message_start``'s
    ``output_tokens`` is usually 1) and Baton's own estimate of what was generated."""

    __slots__ = ("_final_seen",)

    def __init__(self, *, client_wants_usage: bool, secret: str = "") -> None:
        super().__init__(client_wants_usage=client_wants_usage, secret=secret)
        self._final_seen = False  # set by the subclass when the closing event is read

    def _completion_reported(self) -> bool:
        return self._final_seen

    def _partial_completion(self, estimate: int) -> int:
        assert self.usage is not None
        return max(self.usage.completion_tokens, estimate)
