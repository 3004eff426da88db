"""OpenAI Responses, passed through: a Responses client and a target that serves Responses.

OpenAI, Azure (``{resource}/openai/v1/responses``) and the providers' own Responses endpoints
(DeepSeek, DashScope, MiniMax, Volcengine Ark) get the client's body with only ``model``
replaced (Azure: the deployment) and the team's key (``Authorization: Bearer``; Azure's
``api-key``). The one change to the body: hosted tools (``web_search``, ``tool_search``...) go
only to providers that run them (``RESPONSES_QUIRKS`` in wire/providers/quirks.py). Replies and
stream events go back as the bytes received, so reasoning items, their ``encrypted_content``
and ``phase`` arrive byte for byte. Events are read to take the usage of the terminal event
(``response.completed``, ``response.incomplete`` and ``response.failed`` all carry it: what was
used is billed), to count generated text for estimates, to note the turn's call and reasoning
ids (gateway/turns.py) and whether the upstream stored the response, and to re-render an
``error`` event or a failed response without any echo of the credential's key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from wire.base import Endpoint, Refusal, Upstream, UpstreamError, UpstreamRequest, Usage
from wire.errors import error_from_payload, error_from_response, malformed_chunk_error
from wire.providers.azure import AzureAdapter, deployment_name
from wire.providers.openai_compat import OpenAICompatAdapter
from wire.providers.quirks import (
    ResponsesQuirks,
    quirks_for,
    responses_quirks_for,
    upstream_model,
)
from wire.scrub import scrub
from wire.sse import event_fields
from wire.tokens import text_token_units
from wire.translate.responses import CLIENT_TOOLS
from wire.translate.responses_stream import error_payload, frame
from wire.translator import FinalUsageTranslator
from wire.usage import usage_from_responses

_AZURE = AzureAdapter()
_OPENAI = OpenAICompatAdapter()
_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_TURN_ITEMS = {"function_call": "call_id", "custom_tool_call": "call_id", "reasoning": "id"}
# Delta events and the field holding their generated text.
_DELTAS = {
    "response.output_text.delta": "delta",
    "response.reasoning_summary_text.delta": "delta",
    "response.reasoning_text.delta": "delta",
    "response.function_call_arguments.delta": "delta",
    "response.custom_tool_call_input.delta": "delta",
    "response.refusal.delta": "delta",
}


class ResponsesNativeAdapter:
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
        headers["Content-Type"] = "application/json"
        payload = dict(body)
        payload["model"] = (
            deployment_name(upstream)
            if upstream.family == "azure"
            else upstream_model(quirks_for(upstream.provider), upstream.model)
        )
        _fit_tools(payload, upstream.provider, responses_quirks_for(upstream.provider))
        return UpstreamRequest("POST", self.url(upstream), headers, orjson.dumps(payload))

    def stored_request(
        self, method: str, upstream: Upstream, response_id: str, suffix: str = ""
    ) -> UpstreamRequest:
        """``GET`` or ``DELETE`` of a response the upstream stored (``suffix``: ``/input_items``)."""
        url = f"{self.url(upstream)}/{quote(response_id, safe='')}{suffix}"
        return UpstreamRequest(method, url, self.headers(upstream), None)

    @staticmethod
    def url(upstream: Upstream) -> str:
        return upstream.natives["responses"].rstrip("/") + "/responses"

    @staticmethod
    def headers(upstream: Upstream) -> dict[str, str]:
        return (_AZURE if upstream.family == "azure" else _OPENAI).headers(upstream)

    def parse_response(
        self, endpoint: Endpoint, body: bytes, upstream: Upstream
    ) -> tuple[bytes, Usage]:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                502,
                "upstream returned a response that is not valid JSON",
                kind="server",
                code="upstream_malformed_response",
            ) from None
        if not isinstance(payload, dict) or not (
            payload.get("object") == "response" or ("output" in payload and "status" in payload)
        ):
            raise error_from_payload(payload, status=502) or UpstreamError(
                502,
                "upstream returned something that is not a response object",
                kind="server",
                code="upstream_malformed_response",
            )
        raw = payload.get("usage")
        usage = usage_from_responses(raw) if isinstance(raw, dict) else Usage(estimated=True)
        error = payload.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            cleaned = scrub(error["message"], upstream.api_key)
            if cleaned != error["message"]:
                payload["error"] = {**error, "message": cleaned}
                body = orjson.dumps(payload)
        return body, usage

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        return error_from_response(status, body, headers)

    def stream_translator(
        self, endpoint: Endpoint, upstream: Upstream, *, client_wants_usage: bool
    ) -> ResponsesPassThrough:
        return ResponsesPassThrough(
            secret=upstream.api_key, quirks=responses_quirks_for(upstream.provider)
        )


def stored_response_id(payload: Mapping[str, Any], quirks: ResponsesQuirks) -> str | None:
    """The id of a response its upstream stored (so a ``previous_response_id`` may name it
    later), or None: it says ``store: true`` and the provider is not known to keep nothing."""
    response_id = payload.get("id")
    if (
        payload.get("store") is True
        and isinstance(response_id, str)
        and response_id
        and not quirks.stateless
    ):
        return response_id
    return None


def _fit_tools(payload: dict[str, Any], provider: str, quirks: ResponsesQuirks) -> None:
    """Leave out the hosted tools the provider does not run (and the ``include`` entries
    asking for their results); refuse a ``tool_choice`` that forces one."""
    runs = quirks.hosted_tools
    if runs is None:
        return

    def runnable(kind: Any) -> bool:
        return kind in CLIENT_TOOLS or kind in runs

    tools = payload.get("tools")
    if isinstance(tools, list) and any(
        isinstance(t, dict) and not runnable(t.get("type")) for t in tools
    ):
        payload["tools"] = [t for t in tools if not isinstance(t, dict) or runnable(t.get("type"))]
    choice = payload.get("tool_choice")
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind not in ("allowed_tools", None) and not runnable(kind):
        raise UpstreamError(
            400,
            f"tool_choice forces the hosted tool {kind!r}, which {provider} does not run; "
            "only OpenAI's own servers do.",
            kind="bad_request",
            param="tool_choice",
            retryable=True,  # another target (OpenAI) may run it
        )
    include = payload.get("include")
    if isinstance(include, list) and any(
        isinstance(x, str) and not x.startswith(("reasoning.", "message.")) for x in include
    ):
        payload["include"] = [
            x for x in include if isinstance(x, str) and x.startswith(("reasoning.", "message."))
        ]


def _event_error(event: Mapping[str, Any]) -> UpstreamError:
    """An ``error`` event (OpenAI's flat ``code``/``message``, or an ``error`` object) or a
    failed response's ``error`` as an UpstreamError."""
    nested = error_from_payload(event)
    if nested is not None:
        return nested
    message = event.get("message")
    code = event.get("code")
    return UpstreamError(
        500,
        message if isinstance(message, str) and message else "The upstream response failed.",
        kind="server",
        code=code if isinstance(code, str) else None,
        param=event.get("param") if isinstance(event.get("param"), str) else None,
    )


class ResponsesPassThrough(FinalUsageTranslator):
    """Forwards Responses events as received, reading usage and watching for failures.

    An ``error`` event is passed on (scrubbed) at once; the ``response.failed`` that follows
    it closes the stream. If the upstream ends without one, Baton adds it."""

    __slots__ = (
        "_created",
        "_model",
        "_pending",
        "_quirks",
        "_response_id",
        "_sequence",
    )

    def __init__(self, *, secret: str = "", quirks: ResponsesQuirks) -> None:
        super().__init__(client_wants_usage=True, secret=secret)
        self._quirks = quirks
        self._sequence = -1
        self._response_id = ""
        self._model = ""
        self._created = 0
        self._pending: UpstreamError | None = None  # an error event not yet followed by failed

    def _handle(self, raw: bytes) -> bytes:
        if self._closed:
            return b""
        name, data, _ = event_fields(raw)
        if data is None or not data.strip():
            return raw  # comments, keep-alives: as received
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._fail(malformed_chunk_error())
        if not isinstance(event, dict):
            return self._fail(malformed_chunk_error())
        kind = str(event.get("type") or name or "")
        sequence = event.get("sequence_number")
        if isinstance(sequence, int) and sequence > self._sequence:
            self._sequence = sequence
        field = _DELTAS.get(kind)
        if field is not None:
            self._count(event.get(field))
            return raw
        if kind == "response.output_item.done":
            item = event.get("item")
            if isinstance(item, dict) and item.get("type") in _TURN_ITEMS:
                self._note_tool(item.get(_TURN_ITEMS[item["type"]]))
            return raw
        response = event.get("response")
        if isinstance(response, dict):
            self._remember(response)
            if kind in _TERMINAL:
                return self._terminal(kind, event, response, raw)
            return raw
        if kind == "error":
            self._pending = _event_error(event).scrub_secret(self._secret)
            return self._rewritten(event, raw, self._pending.message)
        return raw

    def _remember(self, response: dict[str, Any]) -> None:
        if isinstance(response.get("id"), str):
            self._response_id = response["id"]
        if isinstance(response.get("model"), str):
            self._model = response["model"]
        if isinstance(response.get("created_at"), int):
            self._created = response["created_at"]

    def _terminal(
        self, kind: str, event: dict[str, Any], response: dict[str, Any], raw: bytes
    ) -> bytes:
        usage = response.get("usage")
        if isinstance(usage, dict):
            self.usage = usage_from_responses(usage)
            self._final_seen = True
        if kind != "response.failed":
            self.saw_done = True
            self.stored_response = stored_response_id(response, self._quirks)
            return raw
        error = response.get("error")
        failure = _event_error(error) if isinstance(error, dict) else self._pending
        failure = (failure or _failed()).scrub_secret(self._secret)
        message = error.get("message") if isinstance(error, dict) else None
        if isinstance(error, dict) and isinstance(message, str) and failure.message != message:
            fixed = {**response, "error": {**error, "message": failure.message}}
            raw = frame({**event, "response": fixed})
        self.error = self._pending or failure
        self._closed = True
        return raw

    def _rewritten(self, event: dict[str, Any], raw: bytes, message: str) -> bytes:
        """The event again with its message scrubbed, when the upstream echoed the key."""
        if event.get("message") == message or not isinstance(event.get("message"), str):
            nested = event.get("error")
            said = nested.get("message") if isinstance(nested, dict) else None
            if isinstance(nested, dict) and isinstance(said, str) and said != message:
                return frame({**event, "error": {**nested, "message": message}})
            return raw
        return frame({**event, "message": message})

    def _count(self, text: Any) -> None:
        if isinstance(text, str) and text:
            self.completion_chars += len(text)
            self._units += text_token_units(text)

    def _end(self) -> bytes:
        """The upstream ended: after an ``error`` event with no ``response.failed``, Baton
        ends the stream as OpenAI's would."""
        if self._pending is not None:
            return self._failed_tail(self._pending, error_event=False)
        self._closed = True
        return b""

    def failure_tail(self, refusal: Refusal) -> bytes:
        """Baton cut the stream (the upstream broke off, a shutdown): end it as failed."""
        if self._closed:
            return b""
        error = UpstreamError(
            refusal.status, refusal.message, kind="server", code=refusal.code, type=refusal.type
        )
        return self._failed_tail(error, error_event=True)

    def _error_event(self, error: UpstreamError) -> bytes:
        """A stream Baton cannot read on (malformed, oversized events) ends as OpenAI's would."""
        return self._failed_tail(error, error_event=True)

    def _failed_tail(self, error: UpstreamError, *, error_event: bool) -> bytes:
        self._closed = True
        self.error = self.error or error
        fields = error_payload(
            Refusal(error.status, error.message, error.type, error.code, error.param)
        )
        out = b""
        if error_event:
            self._sequence += 1
            out = frame({"type": "error", "sequence_number": self._sequence, **fields})
        self._sequence += 1
        response = {
            "id": self._response_id,
            "object": "response",
            "created_at": self._created,
            "status": "failed",
            "error": {"code": fields["code"], "message": fields["message"]},
            "incomplete_details": None,
            "model": self._model,
            "usage": self.usage.to_responses() if self.usage is not None else None,
        }
        return out + frame(
            {"type": "response.failed", "sequence_number": self._sequence, "response": response}
        )


def _failed() -> UpstreamError:
    return UpstreamError(502, "The upstream response failed.", kind="other")
