"""The Chat Completions dialect (``/v1/chat/completions``, ``/v1/completions``,
``/v1/embeddings``): OpenAI's shapes. Chat is also the pivot every other dialect
translates through, so its own translation is the identity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from wire.base import Endpoint
from wire.dialects.base import Ask, DialectError, DialectName, Pivot, Refusal
from wire.tokens import estimate_prompt_tokens

DONE = b"data: [DONE]\n\n"


class ChatDialect:
    name: DialectName = "chat"
    pivot: Pivot | None = None  # chat is the pivot: chat targets are never translated

    def ask(self, endpoint: Endpoint, body: dict[str, Any]) -> Ask:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise DialectError(
                "The 'model' field is required.", param="model", code="missing_model"
            )
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise DialectError("'stream' must be true or false.", param="stream")
        options = body.get("stream_options", {})
        if not isinstance(options, dict | None):
            raise DialectError("'stream_options' must be an object.", param="stream_options")
        if stream and endpoint == "embeddings":
            raise DialectError("Embeddings cannot be streamed.", param="stream")
        return Ask(
            model=model,
            stream=stream,
            wants_usage=isinstance(options, dict) and options.get("include_usage") is True,
            output_cap=output_cap(body),
            choices=choices(body),
        )

    def error_status(self, refusal: Refusal) -> int:
        return refusal.status

    def error_body(self, refusal: Refusal) -> bytes:
        return orjson.dumps(openai_error(refusal))

    def error_event(self, refusal: Refusal) -> bytes:
        return b"data: " + orjson.dumps(openai_error(refusal)) + b"\n\n"

    def shutdown_tail(self, refusal: Refusal) -> bytes:
        return self.error_event(refusal) + DONE

    def estimate_prompt_tokens(self, body: Mapping[str, Any]) -> int:
        return estimate_prompt_tokens(body)

    def models_body(self, models: list[tuple[str, str]]) -> bytes:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": o} for m, o in models]
        return orjson.dumps({"object": "list", "data": data})


def openai_error(refusal: Refusal) -> dict[str, Any]:
    return {
        "error": {
            "message": refusal.message,
            "type": refusal.type,
            "param": refusal.param,
            "code": refusal.code,
        }
    }


def output_cap(body: Mapping[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def choices(body: Mapping[str, Any]) -> int:
    value = body.get("n")
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 128:
        return value
    return 1


CHAT = ChatDialect()
