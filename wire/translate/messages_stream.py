"""Chat-completions SSE in, Anthropic Messages SSE out: the stream of a Messages client whose
target speaks only chat.

The chat stream comes from Baton's own chat adapters (with the usage chunk asked for), so
it is well-formed: a role chunk, deltas of ``reasoning_content``, ``content`` and
``tool_calls``, a finish chunk, a usage chunk, ``[DONE]``. Each becomes the Messages events
a client expects, in the order the Messages streaming reference gives
(https://docs.anthropic.com/en/docs/build-with-claude/streaming): ``message_start``, per
content block ``content_block_start`` / ``content_block_delta``... / ``content_block_stop``
(a thinking block's ``signature_delta`` just before its stop), then ``message_delta`` with
the stop reason and the whole usage, then ``message_stop``. An OpenAI error event becomes an
``error`` event, and nothing follows it.

Memory is the splitter's (one event) plus the open blocks' indexes: nothing grows with the
stream.
"""

from __future__ import annotations

from typing import Any

import orjson

from wire.base import Usage
from wire.errors import error_from_payload
from wire.sse import EventSplitter, event_fields
from wire.translate.messages import STOP_REASONS, baton_signature, messages_id
from wire.usage import usage_from_openai

ANTHROPIC_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def anthropic_error_type(status: int) -> str:
    return ANTHROPIC_ERROR_TYPES.get(
        status, "api_error" if status >= 500 else "invalid_request_error"
    )


def event(kind: str, payload: dict[str, Any]) -> bytes:
    """One Messages SSE event: the ``event:`` name is the payload's type."""
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def error_event(status: int, message: str) -> bytes:
    return event(
        "error",
        {"type": "error", "error": {"type": anthropic_error_type(status), "message": message}},
    )


class ChatToMessagesStream:
    """Feeds on chat SSE bytes, returns Messages SSE bytes (see the module docstring)."""

    __slots__ = (
        "_blocks",
        "_closed",
        "_current",
        "_model",
        "_next_index",
        "_signature",
        "_splitter",
        "_started",
        "_stop_reason",
        "_thinking_text",
        "_tools",
        "_usage",
        "finished",
    )

    def __init__(self, model: str | None = None) -> None:
        self._model = model  # the model message_start names; None: the chat chunk's
        self._splitter = EventSplitter()
        self._started = False
        self._closed = False
        self.finished = False  # message_stop was sent
        self._next_index = 0
        self._current: tuple[str, int] | None = None  # open text/thinking block (kind, index)
        self._tools: dict[int, int] = {}  # chat tool_calls index -> open tool_use block index
        self._blocks: list[int] = []  # open blocks, in the order they were started
        self._signature: str | None = None  # the upstream's own, when it sent one
        self._thinking_text: list[str] = []  # only while a thinking block is open
        self._stop_reason: str | None = None
        self._usage = Usage()

    def feed(self, data: bytes) -> bytes:
        if self._closed or not data:
            return b""
        return b"".join(self._handle(raw) for raw in self._splitter.feed(data))

    def finish(self) -> bytes:
        if self._closed:
            return b""
        tail = self._splitter.take_tail()
        out = self._handle(tail) if tail.strip() else b""
        return out + self._end()

    # --- events -----------------------------------------------------------------------------
    def _handle(self, raw: bytes) -> bytes:
        if self._closed:
            return b""
        _, data, _ = event_fields(raw)
        if data is None or not data.strip():
            return b""
        if data.strip() == b"[DONE]":
            return self._end()
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return b""  # the chat adapters already turned malformed events into errors
        if not isinstance(chunk, dict):
            return b""
        if "error" in chunk:
            failure = error_from_payload(chunk)
            status = failure.status if failure is not None else 502
            message = failure.message if failure is not None else "The upstream stream failed."
            self._closed = True
            return self._start(chunk) + error_event(status, message)
        out = [self._start(chunk)]
        raw_usage = chunk.get("usage")
        if isinstance(raw_usage, dict):
            self._usage, _ = usage_from_openai(raw_usage)
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                out.append(self._delta(delta))
            finish = choice.get("finish_reason")
            if isinstance(finish, str):
                self._stop_reason = STOP_REASONS.get(finish, "end_turn")
        return b"".join(out)

    def _start(self, chunk: dict[str, Any]) -> bytes:
        if self._started:
            return b""
        self._started = True
        message: dict[str, Any] = {
            "id": messages_id(chunk.get("id")),
            "type": "message",
            "role": "assistant",
            "model": self._model if self._model is not None else (chunk.get("model") or ""),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return event("message_start", {"type": "message_start", "message": message})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        out: list[bytes] = []
        for block in delta.get("thinking_blocks") or ():
            # An Anthropic upstream behind the chat pivot: its signature is the real one.
            if isinstance(block, dict) and isinstance(block.get("signature"), str):
                self._signature = block["signature"]
        reasoning = delta.get("reasoning_content")
        if not isinstance(reasoning, str):
            reasoning = delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            index = self._open("thinking", out)
            self._thinking_text.append(reasoning)
            out.append(self._block_delta(index, {"type": "thinking_delta", "thinking": reasoning}))
        text = delta.get("content")
        if isinstance(text, str) and text:
            index = self._open("text", out)
            out.append(self._block_delta(index, {"type": "text_delta", "text": text}))
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                out.append(self._tool_delta(call))
        return b"".join(out)

    def _tool_delta(self, call: dict[str, Any]) -> bytes:
        out: list[bytes] = []
        position = call.get("index", 0)
        raw_function = call.get("function")
        function: dict[str, Any] = raw_function if isinstance(raw_function, dict) else {}
        index = self._tools.get(position)
        if index is None:
            self._close_current(out)
            index = self._new_block()
            self._tools[position] = index
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_baton_{position}",
                "name": function.get("name") or "",
                "input": {},
            }
            out.append(
                event(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": block},
                )
            )
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            out.append(
                self._block_delta(index, {"type": "input_json_delta", "partial_json": arguments})
            )
        return b"".join(out)

    # --- blocks -----------------------------------------------------------------------------
    def _new_block(self) -> int:
        index = self._next_index
        self._next_index += 1
        self._blocks.append(index)
        return index

    def _open(self, kind: str, out: list[bytes]) -> int:
        if self._current is not None and self._current[0] == kind:
            return self._current[1]
        self._close_current(out)
        index = self._new_block()
        self._current = (kind, index)
        block: dict[str, Any] = (
            {"type": "thinking", "thinking": "", "signature": ""}
            if kind == "thinking"
            else {"type": "text", "text": ""}
        )
        out.append(
            event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
        )
        return index

    def _close_current(self, out: list[bytes]) -> None:
        if self._current is None:
            return
        kind, index = self._current
        if kind == "thinking":
            signature = self._signature or baton_signature("".join(self._thinking_text))
            out.append(
                self._block_delta(index, {"type": "signature_delta", "signature": signature})
            )
            self._thinking_text = []
            self._signature = None
        out.append(event("content_block_stop", {"type": "content_block_stop", "index": index}))
        self._blocks.remove(index)
        self._current = None

    @staticmethod
    def _block_delta(index: int, delta: dict[str, Any]) -> bytes:
        return event(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )

    def _end(self) -> bytes:
        if self._closed:
            return b""
        self._closed = True
        out: list[bytes] = [self._start({})] if not self._started else []
        self._close_current(out)
        for index in list(self._blocks):
            out.append(event("content_block_stop", {"type": "content_block_stop", "index": index}))
        self._blocks.clear()
        stop = self._stop_reason or "end_turn"
        out.append(
            event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": self._usage.to_anthropic(),
                },
            )
        )
        out.append(event("message_stop", {"type": "message_stop"}))
        self.finished = True
        return b"".join(out)
