"""Anthropic Messages API adapter: OpenAI chat in, OpenAI chat out.

Request and response bodies are converted in :mod:`.anthropic_convert`. This
module holds the adapter and the stream translator, which turns Anthropic's
typed events (https://docs.anthropic.com/en/api/messages-streaming) into
``chat.completion.chunk`` events:

- ``message_start``: the first chunk, ``delta: {"role": "assistant", "content": ""}``;
- ``content_block_start`` of a ``tool_use``: a new ``tool_calls[i]`` with its id,
  name and empty arguments;
- ``content_block_delta``: ``content``, ``tool_calls[i].function.arguments``
  fragments or ``reasoning_content``; a thinking block's signature as a
  ``thinking_blocks`` delta (LiteLLM's convention); citations are dropped;
- ``message_delta``: the ``finish_reason`` chunk;
- ``message_stop``: the usage chunk (if the client asked for usage), then ``[DONE]``;
- ``ping`` and ``content_block_stop``: nothing;
- ``error``: an OpenAI error event, and the stream is closed.

Usage is the maximum of what ``message_start`` and ``message_delta`` report:
``output_tokens`` is cumulative, and some Anthropic-compatible gateways send
``input_tokens: 0`` first and the real count at the end.

Legacy completions and embeddings have no Anthropic equivalent and are
refused at build time with a 400 ``unsupported_endpoint``.
"""

from __future__ import annotations

import time
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
from wire.sse import DONE_EVENT, event_fields
from wire.tokens import text_token_units
from wire.translate.messages import (
    finish_reason,
    from_anthropic_response,
    models_to_openai,
    to_anthropic_request,
)
from wire.translator import FinalUsageTranslator
from wire.usage import MessagesUsage

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"


def _now() -> float:
    return time.time()


def unsupported_endpoint(endpoint: str) -> UpstreamError:
    return UpstreamError(
        400,
        f"The {endpoint} endpoint is not available for Anthropic models; use /v1/chat/completions.",
        kind="bad_request",
        code="unsupported_endpoint",
    )


class AnthropicAdapter:
    family = "anthropic"

    def build_request(
        self,
        endpoint: Endpoint,
        body: dict[str, Any],
        upstream: Upstream,
        *,
        stream: bool,
        forward: Mapping[str, str] | None = None,
    ) -> UpstreamRequest:
        if endpoint not in ("chat", "models"):
            raise unsupported_endpoint(endpoint)
        base = upstream.base_url.rstrip("/")
        headers = self.headers(upstream)
        if endpoint == "models":
            return UpstreamRequest("GET", base + "/models", headers, None)
        payload = to_anthropic_request(body, upstream.model, upstream.extras, stream=stream)
        headers["Content-Type"] = "application/json"
        return UpstreamRequest("POST", base + "/messages", headers, orjson.dumps(payload))

    def headers(self, upstream: Upstream) -> dict[str, str]:
        extras = upstream.extras
        headers = {
            "x-api-key": upstream.api_key,
            "anthropic-version": str(extras.get("anthropic_version") or DEFAULT_ANTHROPIC_VERSION),
        }
        beta = extras.get("anthropic_beta")
        if beta:
            headers["anthropic-beta"] = beta if isinstance(beta, str) else ",".join(beta)
        add_extra_headers(headers, extras)
        return headers

    def parse_response(
        self, endpoint: Endpoint, body: bytes, upstream: Upstream
    ) -> tuple[bytes, Usage]:
        payload = load_json_object(body)
        if endpoint == "models":
            return orjson.dumps(models_to_openai(payload)), Usage()
        completion, usage = from_anthropic_response(payload, int(_now()))
        return orjson.dumps(completion), usage

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        return error_from_response(status, body, headers)

    def stream_translator(
        self, endpoint: Endpoint, upstream: Upstream, *, client_wants_usage: bool
    ) -> AnthropicStreamTranslator:
        if endpoint != "chat":
            raise unsupported_endpoint(endpoint)
        return AnthropicStreamTranslator(
            client_wants_usage=client_wants_usage, created=int(_now()), secret=upstream.api_key
        )


class AnthropicStreamTranslator(FinalUsageTranslator):
    __slots__ = (
        "_created",
        "_head",
        "_tool_index",
        "_tracker",
    )

    def __init__(self, *, client_wants_usage: bool, created: int, secret: str = "") -> None:
        super().__init__(client_wants_usage=client_wants_usage, secret=secret)
        self._created = created
        self._head = self._chunk_head("", "")
        self._tool_index: dict[Any, int] = {}  # content block index -> tool_calls index
        self._tracker = MessagesUsage()

    def _handle(self, raw: bytes) -> bytes:
        if self._closed:
            return b""
        name, data, _ = event_fields(raw)
        if data is None or not data.strip():
            return b""
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._fail(malformed_chunk_error())
        if not isinstance(event, dict):
            return self._fail(malformed_chunk_error())
        kind = event.get("type") or name
        if kind == "content_block_delta":
            return self._block_delta(event)
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "message_start":
            message = event.get("message")
            if not isinstance(message, dict):
                return self._fail(malformed_chunk_error())
            self._head = self._chunk_head(
                str(message.get("id") or ""), str(message.get("model") or "")
            )
            self._take_usage(message.get("usage"))
            return self._chunk({"role": "assistant", "content": ""})
        if kind == "message_delta":
            self._take_usage(event.get("usage"))
            self._final_seen = True
            delta = event.get("delta")
            stop_reason = delta.get("stop_reason") if isinstance(delta, dict) else None
            return self._chunk({}, finish_reason(stop_reason))
        if kind == "message_stop":
            self.saw_done = True
            return self._end()
        if kind == "error":
            return self._fail(error_from_payload(event) or _unknown_stream_error())
        return b""  # ping, content_block_stop, and event types added later

    def _block_start(self, event: Mapping[str, Any]) -> bytes:
        block = event.get("content_block")
        if not isinstance(block, dict):
            return b""
        block_type = block.get("type")
        if block_type == "tool_use":
            self._note_tool(block.get("id"))
            tool_index = len(self._tool_index)
            self._tool_index[event.get("index")] = tool_index
            name = block.get("name")
            self._add_text(name)
            call = {
                "index": tool_index,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            return self._chunk({"tool_calls": [call]})
        if block_type == "text":
            return self._text(block.get("text"), "content")
        if block_type == "thinking":
            return self._text(block.get("thinking"), "reasoning_content")
        return b""

    def _block_delta(self, event: Mapping[str, Any]) -> bytes:
        delta = event.get("delta")
        if not isinstance(delta, dict):
            return b""
        delta_type = delta.get("type")
        if delta_type == "text_delta":
            return self._text(delta.get("text"), "content")
        if delta_type == "input_json_delta":
            tool_index = self._tool_index.get(event.get("index"))
            fragment = delta.get("partial_json")
            if tool_index is None or not isinstance(fragment, str) or not fragment:
                return b""
            self._add_text(fragment)
            call = {"index": tool_index, "function": {"arguments": fragment}}
            return self._chunk({"tool_calls": [call]})
        if delta_type == "thinking_delta":
            self._note_reasoning(delta.get("thinking"))
            return self._text(delta.get("thinking"), "reasoning_content")
        if delta_type == "signature_delta" and isinstance(delta.get("signature"), str):
            # LiteLLM's thinking_blocks convention: the signature reaches chat clients that
            # keep it (and Baton's own translators), so the block can be sent back whole.
            block = {"type": "thinking", "thinking": "", "signature": delta["signature"]}
            return self._chunk({"thinking_blocks": [block]})
        return b""  # citations_delta

    def _text(self, text: Any, field: str) -> bytes:
        if not isinstance(text, str) or not text:
            return b""
        self._add_text(text)
        return self._chunk({field: text})

    def _add_text(self, text: Any) -> None:
        if isinstance(text, str) and text:
            self.completion_chars += len(text)
            self._units += text_token_units(text)

    def _take_usage(self, raw: Any) -> None:
        if isinstance(raw, dict):
            self.usage = self._tracker.take(raw)

    def _chunk_head(self, message_id: str, model: str) -> bytes:
        # Every chunk of a stream shares id, created and model: serialise that
        # prefix once and only the delta per event.
        return (
            b'data: {"id":'
            + orjson.dumps(message_id)
            + b',"object":"chat.completion.chunk","created":'
            + str(self._created).encode()
            + b',"model":'
            + orjson.dumps(model)
        )

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return (
            self._head
            + b',"choices":[{"index":0,"delta":'
            + orjson.dumps(delta)
            + b',"logprobs":null,"finish_reason":'
            + orjson.dumps(finish)
            + b"}]}\n\n"
        )

    def _end(self) -> bytes:
        self._closed = True
        if self._wants_usage and self.usage is not None:
            usage = orjson.dumps(self.settle_usage(0).to_openai())
            return self._head + b',"choices":[],"usage":' + usage + b"}\n\n" + DONE_EVENT
        return DONE_EVENT


def _unknown_stream_error() -> UpstreamError:
    return UpstreamError(502, "upstream reported an error in the stream", kind="other")


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
