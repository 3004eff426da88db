"""The Anthropic Messages dialect (``/v1/messages``, ``/v1/messages/count_tokens``).

What Claude Code and the Anthropic SDKs speak. Requests are checked only as far as Baton
needs to route, admit and bill them (model, ``max_tokens``, ``messages``, ``stream``): every
other field passes through to a native target untouched, and the target says what it
thinks of it. Errors take Anthropic's shape and status codes
(https://docs.anthropic.com/en/api/errors): ``{"type": "error", "error": {"type", "message"}}``,
and after a stream started an ``error`` event. Targets that do not speak Messages are
reached through the chat pivot (wire/translate/messages.py and messages_stream.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from wire.base import Endpoint
from wire.dialects.base import Ask, ClientRequest, DialectError, DialectName, Pivot, Refusal
from wire.tokens import estimate_structured_tokens
from wire.translate.messages import chat_to_messages_response, messages_to_chat
from wire.translate.messages_stream import ChatToMessagesStream, anthropic_error_type, event

_ROLES = frozenset({"user", "assistant", "system"})


class MessagesPivot:
    def to_chat(self, endpoint: Endpoint, body: dict[str, Any]) -> dict[str, Any]:
        return messages_to_chat(body)

    # Replies name the model the client asked for, as on native paths
    # (wire/providers/messages_native.py says why).
    def from_chat(self, endpoint: Endpoint, chat: bytes, client: ClientRequest) -> bytes:
        payload = orjson.loads(chat)
        return orjson.dumps(
            chat_to_messages_response(
                payload if isinstance(payload, dict) else {}, client.ask.model
            )
        )

    def from_chat_stream(self, endpoint: Endpoint, client: ClientRequest) -> ChatToMessagesStream:
        return ChatToMessagesStream(client.ask.model)


class MessagesDialect:
    name: DialectName = "messages"
    pivot: Pivot | None = MessagesPivot()

    def ask(self, endpoint: Endpoint, body: dict[str, Any]) -> Ask:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise DialectError("model: Field required", param="model", code="missing_model")
        messages = body.get("messages")
        if not isinstance(messages, list):
            raise DialectError("messages: Field required", param="messages")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in _ROLES:
                raise DialectError(
                    f"messages.{i}.role: Input should be 'user' or 'assistant'",
                    param=f"messages.{i}.role",
                )
            content = message.get("content")
            if not isinstance(content, str | list):
                raise DialectError(
                    f"messages.{i}.content: Input should be a valid string or list",
                    param=f"messages.{i}.content",
                )
        system = body.get("system")
        if system is not None and not isinstance(system, str | list):
            raise DialectError("system: Input should be a valid string or list", param="system")
        if endpoint == "count_tokens":
            return Ask(model=model)
        cap = body.get("max_tokens")
        if cap is None:
            raise DialectError("max_tokens: Field required", param="max_tokens")
        if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
            raise DialectError("max_tokens: Input should be a positive integer", param="max_tokens")
        if not messages:
            raise DialectError("messages: at least one message is required", param="messages")
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise DialectError("stream: Input should be a valid boolean", param="stream")
        return Ask(model=model, stream=stream, output_cap=cap)

    def error_status(self, refusal: Refusal) -> int:
        # A prepaid balance or budget that is used up: Anthropic's 402 billing_error,
        # unless it frees up by itself (requests in flight), which is a 429 to retry.
        if refusal.type == "insufficient_quota" and not refusal.retryable:
            return 402
        # Anthropic says overloaded with 529, which chat's terms made a 503: its own clients
        # (Claude Code among them) treat 529 as overloaded, not as an outage.
        if refusal.status == 503 and refusal.code == "overloaded_error":
            return 529
        return refusal.status

    def error_body(self, refusal: Refusal) -> bytes:
        return orjson.dumps(self._error(refusal))

    def error_event(self, refusal: Refusal) -> bytes:
        return event("error", self._error(refusal))

    def shutdown_tail(self, refusal: Refusal) -> bytes:
        return self.error_event(refusal)

    def _error(self, refusal: Refusal) -> dict[str, Any]:
        return {
            "type": "error",
            "error": {
                "type": anthropic_error_type(self.error_status(refusal)),
                "message": refusal.message,
            },
        }

    def estimate_prompt_tokens(self, body: Mapping[str, Any]) -> int:
        return (
            estimate_structured_tokens(body.get("system"))
            + estimate_structured_tokens(body.get("messages"))
            + estimate_structured_tokens(body.get("tools"))
        )

    def models_body(self, models: list[tuple[str, str]]) -> bytes:
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "1970-01-01T00:00:00Z"}
            for m, _ in models
        ]
        return orjson.dumps(
            {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )


MESSAGES = MessagesDialect()
