"""The OpenAI Responses dialect (``/v1/responses``): what Codex CLI and OpenAI's Agents SDK speak.

Requests are checked only as far as Baton needs to route, admit and bill them (``model``,
``input``, ``stream``, ``max_output_tokens`` as the output cap, and the types of the few fields
Baton itself reads); every other field passes through to a native target untouched, and the
target judges it. Errors take OpenAI's shape (``{"error": {"message", "type", "param",
"code"}}``). A stream ends with ``response.completed``, ``response.incomplete`` or
``response.failed``, never ``[DONE]``; a failure after it started is OpenAI's ``error`` event
followed by ``response.failed`` for the same response, numbered on from the events before (the
translators end their own streams: ``failure_tail``). Targets that do not serve Responses are
reached through the chat pivot (wire/translate/responses.py and responses_stream.py).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from wire.base import Endpoint
from wire.dialects.base import Ask, ClientRequest, DialectError, DialectName, Pivot, Refusal
from wire.dialects.chat import openai_error
from wire.tokens import estimate_structured_tokens
from wire.translate.responses import Reply, chat_to_response, new_id, responses_to_chat
from wire.translate.responses_stream import ChatToResponsesStream, error_payload, frame


def reply_of(client: ClientRequest) -> Reply:
    return Reply(client.body, client.ask.model, client.seal)


class ResponsesPivot:
    def to_chat(self, endpoint: Endpoint, body: dict[str, Any]) -> dict[str, Any]:
        return responses_to_chat(body)

    def from_chat(self, endpoint: Endpoint, chat: bytes, client: ClientRequest) -> bytes:
        payload = orjson.loads(chat)
        return orjson.dumps(
            chat_to_response(payload if isinstance(payload, dict) else {}, reply_of(client))
        )

    def from_chat_stream(self, endpoint: Endpoint, client: ClientRequest) -> ChatToResponsesStream:
        return ChatToResponsesStream(reply_of(client))


def _missing(param: str) -> DialectError:
    return DialectError(
        f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


def _wrong_type(param: str, expected: str) -> DialectError:
    return DialectError(
        f"Invalid type for '{param}': expected {expected}.", param=param, code="invalid_type"
    )


# Fields Baton reads itself, with the JSON types OpenAI documents for them.
_TYPES: dict[str, tuple[type | tuple[type, ...], str]] = {
    "instructions": (str, "a string"),
    "previous_response_id": (str, "a string"),
    "store": (bool, "a boolean"),
    "tools": (list, "an array"),
    "include": (list, "an array of strings"),
    "reasoning": (dict, "an object"),
    "text": (dict, "an object"),
    "prompt_cache_key": (str, "a string"),
    "parallel_tool_calls": (bool, "a boolean"),
    "metadata": (dict, "an object"),
}


class ResponsesDialect:
    name: DialectName = "responses"
    pivot: Pivot | None = ResponsesPivot()

    def ask(self, endpoint: Endpoint, body: dict[str, Any]) -> Ask:
        model = body.get("model")
        if model is None:
            raise DialectError(
                "Missing required parameter: 'model'.", param="model", code="missing_model"
            )
        if not isinstance(model, str) or not model:
            raise _wrong_type("model", "a non-empty string")
        raw_input = body.get("input")
        if raw_input is None:
            if body.get("previous_response_id") is None and body.get("conversation") is None:
                raise _missing("input")
        elif isinstance(raw_input, list):
            if not raw_input and body.get("previous_response_id") is None:
                raise DialectError(
                    "Invalid 'input': empty array. Expected an array with minimum length 1, but "
                    "got an empty array instead.",
                    param="input",
                    code="empty_array",
                )
            for i, item in enumerate(raw_input):
                if not isinstance(item, dict):
                    raise _wrong_type(f"input[{i}]", "an object")
        elif not isinstance(raw_input, str):
            raise _wrong_type("input", "a string or an array")
        for name, (kind, expected) in _TYPES.items():
            value = body.get(name)
            if value is not None and (
                not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))
            ):
                raise _wrong_type(name, expected)
        include = body.get("include")
        if isinstance(include, list) and not all(isinstance(x, str) for x in include):
            raise _wrong_type("include", "an array of strings")
        stream = body.get("stream", False)
        if stream is None:
            stream = False
        if not isinstance(stream, bool):
            raise _wrong_type("stream", "a boolean")
        cap = body.get("max_output_tokens")
        if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool)):
            raise _wrong_type("max_output_tokens", "an integer")
        if isinstance(cap, int) and cap < 1:
            raise DialectError(
                "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 1, "
                f"but got {cap} instead.",
                param="max_output_tokens",
                code="integer_below_min_value",
            )
        return Ask(model=model, stream=stream, output_cap=cap)

    def error_status(self, refusal: Refusal) -> int:
        return refusal.status

    def error_body(self, refusal: Refusal) -> bytes:
        return orjson.dumps(openai_error(refusal))

    def error_event(self, refusal: Refusal) -> bytes:
        """A failure with no stream to continue (the translators end their own streams with
        the right numbering and response id): ``error``, then ``response.failed``."""
        error = error_payload(refusal)
        failed = {
            "id": new_id("resp"),
            "object": "response",
            "created_at": int(time.time()),
            "status": "failed",
            "error": {"code": error["code"], "message": error["message"]},
            "incomplete_details": None,
            "output": [],
            "usage": None,
        }
        return frame({"type": "error", "sequence_number": 0, **error}) + frame(
            {"type": "response.failed", "sequence_number": 1, "response": failed}
        )

    def shutdown_tail(self, refusal: Refusal) -> bytes:
        return self.error_event(refusal)

    def estimate_prompt_tokens(self, body: Mapping[str, Any]) -> int:
        return (
            estimate_structured_tokens(body.get("instructions"))
            + estimate_structured_tokens(body.get("input"))
            + estimate_structured_tokens(body.get("tools"))
        )

    def models_body(self, models: list[tuple[str, str]]) -> bytes:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": o} for m, o in models]
        return orjson.dumps({"object": "list", "data": data})


RESPONSES = ResponsesDialect()
