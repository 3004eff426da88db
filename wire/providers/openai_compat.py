"""The generic adapter for providers that speak the OpenAI wire format.

Covers OpenAI itself and every "compatible" provider (DeepSeek, Qwen, Zhipu,
Moonshot, MiniMax, Qianfan, Hunyuan, Ark, SiliconFlow, StepFun, Gemini's
compatibility layer, Ollama, vLLM, custom servers). Request fixes live in
:mod:`.quirks`, keyed by provider id; everything else is shared.

Responses are passed through as the upstream sent them. Bodies are parsed
once (orjson) to read usage and detect errors hidden in 200 replies; stream
events are forwarded as the exact bytes received, and parsed only to read
usage and count generated text. The few events that are changed or dropped:

- a usage-only chunk (``choices: []`` plus ``usage``) is dropped when the
  client did not ask for usage: Baton always asks the upstream for it, the
  client must not see a chunk it did not request;
- a chunk with empty ``choices`` and no usage (Azure's first chunk carrying
  only ``prompt_filter_results``) is dropped: it carries nothing a client
  uses, and clients that index ``choices[0]`` crash on it;
- when the client asked for usage but the provider delivered it some other
  way (Moonshot's ``choices[0].usage``, Zhipu and Gemini on the finish chunk,
  SiliconFlow's running totals on every chunk), one OpenAI usage-only chunk
  is added before ``data: [DONE]``;
- the upstream's ``[DONE]`` is re-emitted after that chunk, and emitted by
  :meth:`OpenAIStreamTranslator.finish` when the upstream never sent one;
- an in-stream error (``{"error": ...}``, MiniMax ``base_resp``) becomes an
  OpenAI error event and closes the stream;
- a data event that is not JSON is not forwarded: it becomes a 502
  ``upstream_malformed_chunk`` error event and closes the stream, because a
  client cannot resynchronise on a corrupt stream and the hot path needs to
  know it ended badly.

SSE comments (DeepSeek's ``: keep-alive`` while a request is queued) are
forwarded untouched: every SSE client ignores them, and passing them on keeps
idle timeouts in proxies and client SDKs from killing a long-queued request.
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
from wire.tokens import text_token_units, units_to_tokens
from wire.translator import TranslatorBase
from wire.usage import usage_from_openai

from .quirks import Quirks, apply_quirks, quirks_for, upstream_model

PATHS: dict[str, str] = {
    "chat": "/chat/completions",
    "completions": "/completions",
    "embeddings": "/embeddings",
    "models": "/models",
}


_DELTA_TEXT_KEYS = ("content", "reasoning_content", "reasoning")


class OpenAICompatAdapter:
    family = "openai"

    def build_request(
        self,
        endpoint: Endpoint,
        body: dict[str, Any],
        upstream: Upstream,
        *,
        stream: bool,
        forward: Mapping[str, str] | None = None,
    ) -> UpstreamRequest:
        headers = self.headers(upstream)
        url = self.url(endpoint, upstream)
        if endpoint == "models":
            return UpstreamRequest("GET", url, headers, None)
        quirks = quirks_for(upstream.provider)
        payload = dict(body)
        payload["model"] = self.body_model(upstream, quirks)
        _set_stream(payload, stream and endpoint != "embeddings", quirks)
        apply_quirks(payload, quirks, upstream.model)
        _drop_thinking_blocks(payload)
        headers["Content-Type"] = "application/json"
        return UpstreamRequest("POST", url, headers, orjson.dumps(payload))

    def url(self, endpoint: Endpoint, upstream: Upstream) -> str:
        return upstream.base_url.rstrip("/") + PATHS[endpoint]

    def body_model(self, upstream: Upstream, quirks: Quirks) -> str:
        return upstream_model(quirks, upstream.model)

    def headers(self, upstream: Upstream) -> dict[str, str]:
        headers: dict[str, str] = {}
        # Local servers (Ollama, vLLM without --api-key) run keyless; an empty
        # "Bearer " header is never useful and some servers reject it.
        if upstream.api_key:
            headers["Authorization"] = "Bearer " + upstream.api_key
        extras = upstream.extras
        if extras.get("organization"):
            headers["OpenAI-Organization"] = str(extras["organization"])
        if extras.get("project"):
            headers["OpenAI-Project"] = str(extras["project"])
        add_extra_headers(headers, extras)
        return headers

    def parse_response(
        self, endpoint: Endpoint, body: bytes, upstream: Upstream
    ) -> tuple[bytes, Usage]:
        payload = load_json_object(body)
        if endpoint == "models":
            return body, Usage()
        raw_usage = payload.get("usage")
        if not isinstance(raw_usage, dict):
            raw_usage = _choice_usage(payload.get("choices"))
            if raw_usage is not None:
                # Moonshot puts usage in the choice: give clients the standard
                # top-level object too (a non-stream body is cheap to rewrite).
                payload["usage"] = raw_usage
                body = orjson.dumps(payload)
        if raw_usage is None:
            return body, Usage(
                completion_tokens=units_to_tokens(_message_units(payload.get("choices"))),
                estimated=True,
            )
        usage, completion_known = usage_from_openai(raw_usage)
        if not completion_known:
            usage.completion_tokens = units_to_tokens(_message_units(payload.get("choices")))
            usage.estimated = True
        return body, usage

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        return error_from_response(status, body, headers)

    def stream_translator(
        self, endpoint: Endpoint, upstream: Upstream, *, client_wants_usage: bool
    ) -> OpenAIStreamTranslator:
        chunk_object = "text_completion" if endpoint == "completions" else "chat.completion.chunk"
        return OpenAIStreamTranslator(
            client_wants_usage=client_wants_usage,
            chunk_object=chunk_object,
            secret=upstream.api_key,
        )


class OpenAIStreamTranslator(TranslatorBase):
    """Pass-through translation of an OpenAI-style SSE stream (see the module docstring)."""

    __slots__ = (
        "_completion_known",
        "_created",
        "_id",
        "_model",
        "_object",
        "_usage_chunk_sent",
    )

    def __init__(
        self,
        *,
        client_wants_usage: bool,
        chunk_object: str = "chat.completion.chunk",
        secret: str = "",
    ) -> None:
        super().__init__(client_wants_usage=client_wants_usage, secret=secret)
        self._object = chunk_object
        self._usage_chunk_sent = False
        self._completion_known = True
        self._id = ""
        self._created = 0
        self._model = ""

    def _completion_reported(self) -> bool:
        return self._completion_known

    def _partial_completion(self, estimate: int) -> int:
        assert self.usage is not None
        return max(estimate, self.usage.reasoning_tokens)

    def _handle(self, raw: bytes) -> bytes:
        if self._closed:
            return b""
        _, data, comment = event_fields(raw)
        if data is None:
            return raw if comment else b""
        if data == b"[DONE]":
            self.saw_done = True
            return self._end()
        if not data.strip():
            return b""
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._fail(malformed_chunk_error())
        if not isinstance(chunk, dict):
            return self._fail(error_from_payload(chunk) or malformed_chunk_error())
        if "error" in chunk or "base_resp" in chunk:
            error = error_from_payload(chunk)
            if error is not None:
                return self._fail(error)

        choices = chunk.get("choices")
        raw_usage = chunk.get("usage")
        if isinstance(raw_usage, dict):
            self._take_usage(raw_usage)
        elif choices:
            choice_usage = _choice_usage(choices)
            if choice_usage is not None:
                self._take_usage(choice_usage)
        if self._wants_usage:
            self._remember_identity(chunk)

        if choices:
            if isinstance(choices, list):
                self._count(choices)
            return raw
        if isinstance(raw_usage, dict) and self._wants_usage:
            self._usage_chunk_sent = True
            return raw
        return b""

    def _take_usage(self, raw_usage: Mapping[str, Any]) -> None:
        # Last value wins: running totals (SiliconFlow) are never summed.
        self.usage, self._completion_known = usage_from_openai(raw_usage)

    def _remember_identity(self, chunk: Mapping[str, Any]) -> None:
        """Keep id, created and model for a usage chunk Baton may have to add."""
        chunk_id = chunk.get("id")
        if chunk_id and isinstance(chunk_id, str):
            self._id = chunk_id
        created = chunk.get("created")
        if created and isinstance(created, int):
            self._created = created
        model = chunk.get("model")
        if model and isinstance(model, str):
            self._model = model

    def _count(self, choices: list[Any]) -> None:
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                self._add_text(choice.get("text"))  # legacy completions
                continue
            # Reasoning is "reasoning_content" (DeepSeek, Zhipu, Qwen) or
            # "reasoning" (StepFun); it is billed as completion either way.
            for key in _DELTA_TEXT_KEYS:
                text = delta.get(key)
                if text:
                    self._add_text(text)
                    if key != "content":
                        self._note_reasoning(text)
            tool_calls = delta.get("tool_calls")
            if tool_calls and isinstance(tool_calls, list):
                for call in tool_calls:
                    if isinstance(call, dict):
                        self._add_function(call.get("function"))
                        self._note_tool(call.get("id"))
            function_call = delta.get("function_call")  # legacy function calling
            if function_call:
                self._add_function(function_call)

    def _add_function(self, function: Any) -> None:
        if isinstance(function, dict):
            self._add_text(function.get("name"))
            self._add_text(function.get("arguments"))

    def _add_text(self, text: Any) -> None:
        if isinstance(text, str) and text:
            self.completion_chars += len(text)
            self._units += text_token_units(text)

    def _end(self) -> bytes:
        self._closed = True
        if self._wants_usage and not self._usage_chunk_sent and self.usage is not None:
            return self._usage_event() + DONE_EVENT
        return DONE_EVENT

    def _usage_event(self) -> bytes:
        chunk = {
            "id": self._id,
            "object": self._object,
            "created": self._created or int(time.time()),
            "model": self._model,
            "choices": [],
            "usage": self.settle_usage(0).to_openai(),
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _set_stream(payload: dict[str, Any], stream: bool, quirks: Quirks) -> None:
    if not stream:
        # OpenAI rejects stream_options on non-stream requests.
        payload.pop("stream_options", None)
        if "stream" in payload:
            payload["stream"] = False
        return
    payload["stream"] = True
    if not quirks.stream_usage:
        payload.pop("stream_options", None)
        return
    # Always ask for usage, whatever the client asked: it is what Baton bills.
    options = payload.get("stream_options")
    if isinstance(options, dict):
        payload["stream_options"] = {**options, "include_usage": True}
    else:
        payload["stream_options"] = {"include_usage": True}


def _choice_usage(choices: Any) -> dict[str, Any] | None:
    """Moonshot's ``choices[0].usage``."""
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        usage = choices[0].get("usage")
        if isinstance(usage, dict):
            return usage
    return None


def _message_units(choices: Any) -> int:
    """Estimated tokens x 4 of the generated text of a non-stream response."""
    if not isinstance(choices, list):
        return 0
    units = 0
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        texts: list[Any] = [choice.get("text")]
        if isinstance(message, dict):
            texts += [message.get(k) for k in ("content", "reasoning_content", "reasoning")]
            for call in message.get("tool_calls") or ():
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    texts += [function.get("name"), function.get("arguments")]
        units += sum(text_token_units(t) for t in texts if isinstance(t, str))
    return units


def _drop_thinking_blocks(payload: dict[str, Any]) -> None:
    """``thinking_blocks`` is the chat pivot's carrier for signed Anthropic thinking
    (LiteLLM's convention), not a field any chat provider knows: it never leaves Baton.
    The reasoning text it holds stays in ``reasoning_content``."""
    messages = payload.get("messages")
    if not isinstance(messages, list):
        return
    if any(isinstance(m, dict) and "thinking_blocks" in m for m in messages):
        payload["messages"] = [
            {k: v for k, v in m.items() if k != "thinking_blocks"} if isinstance(m, dict) else m
            for m in messages
        ]
