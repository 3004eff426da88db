"""Anthropic Messages, passed through: a Messages client and a target that speaks Messages.

Anthropic itself and the providers' Anthropic-compatible endpoints (DeepSeek ``/anthropic``,
DashScope ``/apps/anthropic``, Zhipu ``/api/anthropic``, Moonshot and MiniMax ``/anthropic``)
get the client's body with only ``model`` replaced, and the client's ``anthropic-version`` and
``anthropic-beta`` headers (betas filtered where the provider's quirks say so). Replies and
stream events go back as the bytes received: thinking blocks, ``redacted_thinking`` and
signatures arrive byte for byte. Events are read only to take usage (``message_start``,
``message_delta``), to count generated text for estimates, and to catch an ``error`` event,
which is re-rendered without any echo of the credential's key.

A reply names the model the client asked for (its alias), not the upstream's: Claude Code
drops the thinking blocks of every earlier reply whose ``model`` is not the one it is asking
for now, and a provider that requires them back (Anthropic with thinking on, DeepSeek V4)
then refuses the next tool-use turn. So the reply's ``model`` (and ``message_start``'s) is
the one field rewritten on the way back; ``x-baton-model`` says which model answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from wire.base import Endpoint, Upstream, UpstreamError, UpstreamRequest, Usage, add_extra_headers
from wire.errors import (
    error_from_payload,
    error_from_response,
    load_json_object,
    malformed_chunk_error,
)
from wire.providers.quirks import messages_quirks_for
from wire.sse import event_fields
from wire.tokens import text_token_units
from wire.translate.messages_stream import error_event
from wire.translator import FinalUsageTranslator
from wire.usage import MessagesUsage

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
PATHS = {"messages": "/messages", "count_tokens": "/messages/count_tokens"}


class MessagesNativeAdapter:
    __slots__ = ("model",)

    def __init__(self, model: str | None = None) -> None:
        self.model = model  # the name replies carry; None keeps the upstream's

    def build_request(
        self,
        endpoint: Endpoint,
        body: dict[str, Any],
        upstream: Upstream,
        *,
        stream: bool,
        forward: Mapping[str, str] | None = None,
    ) -> UpstreamRequest:
        base = upstream.natives["messages"].rstrip("/")
        quirks = messages_quirks_for(upstream.provider)
        forward = forward or {}
        headers = {"Content-Type": "application/json"}
        if quirks.bearer:
            headers["Authorization"] = "Bearer " + upstream.api_key
        else:
            headers["x-api-key"] = upstream.api_key
        headers["anthropic-version"] = forward.get("anthropic-version") or str(
            upstream.extras.get("anthropic_version") or DEFAULT_ANTHROPIC_VERSION
        )
        betas = forward.get("anthropic-beta")
        if betas and quirks.betas is not None:
            betas = ",".join(b for b in betas.split(",") if b.strip() in quirks.betas)
        if betas:
            headers["anthropic-beta"] = betas
        add_extra_headers(headers, upstream.extras)
        payload = dict(body)
        payload["model"] = upstream.model
        return UpstreamRequest("POST", base + PATHS[endpoint], headers, orjson.dumps(payload))

    def parse_response(
        self, endpoint: Endpoint, body: bytes, upstream: Upstream
    ) -> tuple[bytes, Usage]:
        payload = load_json_object(body)
        if payload.get("type") == "error":
            raise error_from_payload(payload) or UpstreamError(
                502, "The upstream answered with an error.", kind="other"
            )
        if endpoint == "count_tokens":
            return body, Usage()
        raw = payload.get("usage")
        tracker = MessagesUsage()
        tracker.take(raw if isinstance(raw, dict) else {})
        if self.model is not None and payload.get("model") != self.model:
            payload["model"] = self.model
            body = orjson.dumps(payload)
        return body, tracker.usage

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        return error_from_response(status, body, headers)

    def stream_translator(
        self, endpoint: Endpoint, upstream: Upstream, *, client_wants_usage: bool
    ) -> MessagesPassThrough:
        return MessagesPassThrough(secret=upstream.api_key, model=self.model)


class MessagesPassThrough(FinalUsageTranslator):
    """Forwards Messages events as received, reading usage and watching for errors;
    ``message_start`` names ``model`` when given (the one the client asked for)."""

    __slots__ = ("_model", "_tracker")

    def __init__(self, *, secret: str = "", model: str | None = None) -> None:
        super().__init__(client_wants_usage=True, secret=secret)
        self._tracker = MessagesUsage()
        self._model = model

    def _handle(self, raw: bytes) -> bytes:
        if self._closed:
            return b""
        name, data, _ = event_fields(raw)
        if data is None or not data.strip():
            return raw  # comments, keep-alives: as received
        # Only the events Baton reads are parsed; deltas are scanned for their text.
        kind = name.strip() if isinstance(name, str) else ""
        if kind == "content_block_delta" or (not kind and b'"content_block_delta"' in data):
            self._count(data)
            return raw
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._fail(malformed_chunk_error())
        if not isinstance(event, dict):
            return self._fail(malformed_chunk_error())
        kind = str(event.get("type") or kind)
        if kind == "content_block_start":
            block = event.get("content_block")
            if isinstance(block, dict) and block.get("type") == "tool_use":
                self._note_tool(block.get("id"))
        elif kind == "message_start":
            message = event.get("message")
            if isinstance(message, dict):
                self._take(message.get("usage"))
                if self._model is not None and message.get("model") != self._model:
                    message["model"] = self._model
                    return b"event: message_start\ndata: " + orjson.dumps(event) + b"\n\n"
        elif kind == "message_delta":
            self._take(event.get("usage"))
            self._final_seen = True
        elif kind == "message_stop":
            self.saw_done = True
        elif kind == "error":
            return self._fail(error_from_payload(event) or _stream_failed())
        return raw

    def _count(self, data: bytes) -> None:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        delta = event.get("delta") if isinstance(event, dict) else None
        if isinstance(delta, dict):
            for key in ("text", "thinking", "partial_json"):
                text = delta.get(key)
                if isinstance(text, str):
                    self.completion_chars += len(text)
                    self._units += text_token_units(text)

    def _take(self, raw: Any) -> None:
        if isinstance(raw, dict):
            self._tracker.take(raw)
            self.usage = self._tracker.usage

    def _end(self) -> bytes:
        self._closed = True
        return b""

    def _error_event(self, error: UpstreamError) -> bytes:
        return error_event(error.status, error.message)


def _stream_failed() -> UpstreamError:
    return UpstreamError(502, "The upstream reported an error in the stream.", kind="other")
