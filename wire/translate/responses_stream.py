"""Chat-completions SSE in, Responses API SSE out: the stream of a Responses client whose
target speaks only chat.

The chat stream comes from Baton's own chat adapters (usage asked for), so it is well-formed:
deltas of ``reasoning_content``, ``content`` and ``tool_calls``, a finish chunk, a usage chunk,
``[DONE]``. It becomes the event sequence of the streaming reference
(developers.openai.com/api/reference/resources/responses/streaming-events), every event named
in ``event:`` and numbered by ``sequence_number`` from 0:

- ``response.created``, ``response.in_progress`` (a snapshot of the response, no output);
- per output item ``response.output_item.added`` ... ``response.output_item.done``: reasoning
  as a summary (``reasoning_summary_part.added``, ``reasoning_summary_text.delta``... /
  ``.done``, ``reasoning_summary_part.done``), text (``content_part.added``,
  ``output_text.delta``... / ``.done``, ``content_part.done``), each tool call
  (``function_call_arguments.delta``... / ``.done``; a custom tool's input comes whole, as
  ``custom_tool_call_input.delta`` and ``.done``, once the model finished writing it);
- ``response.completed``, or ``response.incomplete`` with ``incomplete_details`` when the
  reply was cut (``finish_reason: length``), carrying the whole response and its usage. There is
  no ``[DONE]``.

A failure (an error event from the chat side, or Baton cutting the stream: ``failure_tail``)
is OpenAI's ``error`` event, then ``response.failed`` with what was finished and the usage so
far; nothing follows it.

Memory: the items of the reply, which ``response.completed`` repeats whole as OpenAI's does (a
reply is bounded by its output cap); the splitter holds one event.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from wire.base import Refusal, Usage
from wire.errors import error_from_payload
from wire.sse import EventSplitter, event_fields
from wire.translate.responses import (
    Reply,
    call_item,
    client_tools,
    message_item,
    new_id,
    output_text,
    reasoning_item,
    response_object,
    status_of,
)
from wire.usage import usage_from_openai


def frame(payload: dict[str, Any]) -> bytes:
    """One Responses SSE event: the ``event:`` name is the payload's type."""
    return (
        b"event: " + str(payload["type"]).encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
    )


def error_payload(refusal: Refusal) -> dict[str, Any]:
    """The fields of OpenAI's ``error`` stream event (and of a failed response's ``error``)."""
    return {
        "code": refusal.code or refusal.type,
        "message": refusal.message,
        "param": refusal.param,
    }


class _Tool:
    __slots__ = ("arguments", "chat_name", "closed", "index", "item")

    def __init__(self, index: int, item: dict[str, Any], chat_name: str) -> None:
        self.index = index
        self.item = item
        self.chat_name = chat_name
        self.arguments: list[str] = []
        self.closed = False


class ChatToResponsesStream:
    """Feeds on chat SSE bytes, returns Responses SSE bytes (see the module docstring)."""

    __slots__ = (
        "_closed",
        "_created",
        "_current",
        "_done",
        "_finish",
        "_model",
        "_names",
        "_next_index",
        "_reply",
        "_response_id",
        "_sequence",
        "_splitter",
        "_started",
        "_text",
        "_tools",
        "_usage",
        "finished",
    )

    def __init__(self, reply: Reply) -> None:
        self._reply = reply
        self._names = client_tools(reply.body.get("tools"))
        self._splitter = EventSplitter()
        self._sequence = 0
        self._started = False
        self._closed = False
        self.finished = False  # the terminal event was sent
        self._response_id = new_id("resp")
        self._created = int(time.time())
        self._model = reply.model
        self._next_index = 0
        # The open reasoning or message item: (kind, output index, item id).
        self._current: tuple[str, int, str] | None = None
        self._text: list[str] = []  # the open item's text so far
        self._tools: dict[int, _Tool] = {}  # chat tool_calls index -> its item
        self._done: dict[int, dict[str, Any]] = {}  # output index -> finished item
        self._finish: Any = None
        self._usage: Usage | None = None

    # --- the ChatStreamTranslator protocol ---------------------------------------------------
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

    def failure_tail(self, refusal: Refusal) -> bytes:
        """Baton cut the stream (the upstream broke off, a shutdown): end it as failed."""
        if self._closed:
            return b""
        return self._fail(refusal)

    # --- events ------------------------------------------------------------------------------
    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return frame(payload)

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
            refusal = (
                Refusal(failure.status, failure.message, failure.type, failure.code, failure.param)
                if failure is not None
                else Refusal(502, "The upstream stream failed.", "upstream_error")
            )
            return self._fail(refusal)
        out = [self._start(chunk)]
        raw_usage = chunk.get("usage")
        if isinstance(raw_usage, dict):
            self._usage = usage_from_openai(raw_usage)[0]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                out.append(self._delta(delta))
            if isinstance(choice.get("finish_reason"), str):
                self._finish = choice["finish_reason"]
        return b"".join(out)

    def _start(self, chunk: dict[str, Any]) -> bytes:
        if self._started:
            return b""
        self._started = True
        if isinstance(chunk.get("model"), str) and chunk["model"]:
            self._model = chunk["model"]
        snapshot = self._response("in_progress", [], None)
        return self._event("response.created", response=snapshot) + self._event(
            "response.in_progress", response=snapshot
        )

    def _response(
        self,
        status: str,
        output: list[dict[str, Any]] | None,
        usage: dict[str, Any] | None,
        incomplete_reason: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return response_object(
            self._reply,
            self._response_id,
            self._created,
            self._model,
            status=status,
            output=output,
            usage=usage,
            incomplete_reason=incomplete_reason,
            error=error,
        )

    def _delta(self, delta: dict[str, Any]) -> bytes:
        out: list[bytes] = []
        reasoning = delta.get("reasoning_content")
        if not isinstance(reasoning, str):
            reasoning = delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            out.append(self._text_delta("reasoning", reasoning))
        text = delta.get("content")
        if isinstance(text, str) and text:
            out.append(self._text_delta("message", text))
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                out.append(self._tool_delta(call))
        return b"".join(out)

    def _text_delta(self, kind: str, text: str) -> bytes:
        out: list[bytes] = []
        if self._current is None or self._current[0] != kind:
            out.append(self._close_current())
            out.append(self._open(kind))
        assert self._current is not None
        _, index, item_id = self._current
        self._text.append(text)
        if kind == "reasoning":
            out.append(
                self._event(
                    "response.reasoning_summary_text.delta",
                    item_id=item_id,
                    output_index=index,
                    summary_index=0,
                    delta=text,
                )
            )
        else:
            out.append(
                self._event(
                    "response.output_text.delta",
                    item_id=item_id,
                    output_index=index,
                    content_index=0,
                    delta=text,
                    logprobs=[],
                )
            )
        return b"".join(out)

    def _open(self, kind: str) -> bytes:
        index = self._new_index()
        if kind == "reasoning":
            item_id = new_id("rs")
            item: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": []}
            where = {"item_id": item_id, "output_index": index}
            opened = self._event("response.output_item.added", output_index=index, item=item)
            part = self._event(
                "response.reasoning_summary_part.added",
                **where,
                summary_index=0,
                part={"type": "summary_text", "text": ""},
            )
        else:
            item_id = new_id("msg")
            item = {
                "id": item_id,
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            opened = self._event("response.output_item.added", output_index=index, item=item)
            part = self._event(
                "response.content_part.added",
                item_id=item_id,
                output_index=index,
                content_index=0,
                part=output_text(""),
            )
        self._current = (kind, index, item_id)
        return opened + part

    def _close_current(self) -> bytes:
        if self._current is None:
            return b""
        kind, index, item_id = self._current
        text = "".join(self._text)
        self._current, self._text = None, []
        where = {"item_id": item_id, "output_index": index}
        if kind == "reasoning":
            item = reasoning_item(text, self._reply, item_id)
            out = self._event(
                "response.reasoning_summary_text.done", **where, summary_index=0, text=text
            ) + self._event(
                "response.reasoning_summary_part.done",
                **where,
                summary_index=0,
                part={"type": "summary_text", "text": text},
            )
        else:
            item = message_item(
                text, None, incomplete=status_of(self._finish)[0] == "incomplete", item_id=item_id
            )
            out = self._event(
                "response.output_text.done", **where, content_index=0, text=text, logprobs=[]
            ) + self._event(
                "response.content_part.done", **where, content_index=0, part=output_text(text)
            )
        self._done[index] = item
        return out + self._event("response.output_item.done", output_index=index, item=item)

    def _tool_delta(self, call: dict[str, Any]) -> bytes:
        out: list[bytes] = []
        position = call.get("index", 0)
        position = position if isinstance(position, int) else 0
        raw_function = call.get("function")
        function: dict[str, Any] = raw_function if isinstance(raw_function, dict) else {}
        tool = self._tools.get(position)
        if tool is None:
            out.append(self._close_current())
            chat_name = function.get("name") if isinstance(function.get("name"), str) else ""
            call_id = call.get("id") if isinstance(call.get("id"), str) else new_id("call")
            item = call_item(str(call_id), str(chat_name), "", self._names, status="in_progress")
            tool = self._tools[position] = _Tool(self._new_index(), item, str(chat_name))
            added = {**item, "input": ""} if item["type"] == "custom_tool_call" else item
            out.append(
                self._event("response.output_item.added", output_index=tool.index, item=added)
            )
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments and not tool.closed:
            tool.arguments.append(arguments)
            if tool.item["type"] == "function_call":
                out.append(
                    self._event(
                        "response.function_call_arguments.delta",
                        item_id=tool.item["id"],
                        output_index=tool.index,
                        delta=arguments,
                    )
                )
        return b"".join(out)

    def _close_tool(self, tool: _Tool) -> bytes:
        tool.closed = True
        arguments = "".join(tool.arguments)
        tool.arguments = []
        item = call_item(
            tool.item["call_id"],
            tool.chat_name,
            arguments,
            self._names,
            item_id=tool.item["id"],
        )
        where = {"item_id": item["id"], "output_index": tool.index}
        if item["type"] == "custom_tool_call":
            out = self._event(
                "response.custom_tool_call_input.delta", **where, delta=item["input"]
            ) + self._event("response.custom_tool_call_input.done", **where, input=item["input"])
        else:
            out = self._event(
                "response.function_call_arguments.done",
                **where,
                name=item["name"],
                arguments=arguments,
            )
        self._done[tool.index] = item
        return out + self._event("response.output_item.done", output_index=tool.index, item=item)

    def _new_index(self) -> int:
        index = self._next_index
        self._next_index += 1
        return index

    # --- the end -----------------------------------------------------------------------------
    def _output(self) -> list[dict[str, Any]]:
        return [self._done[i] for i in sorted(self._done)]

    def _end(self) -> bytes:
        if self._closed:
            return b""
        out = [self._start({}), self._close_current()]
        out += [self._close_tool(t) for t in self._tools.values() if not t.closed]
        self._closed = True
        status, reason = status_of(self._finish)
        usage = self._usage.to_responses() if self._usage is not None else None
        response = self._response(status, self._output(), usage, reason)
        out.append(self._event(f"response.{status}", response=response))
        self.finished = True
        return b"".join(out)

    def _fail(self, refusal: Refusal) -> bytes:
        start = self._start({})
        self._closed = True
        error = error_payload(refusal)
        usage = self._usage.to_responses() if self._usage is not None else None
        failed = self._response(
            "failed",
            self._output(),
            usage,
            error={"code": error["code"], "message": error["message"]},
        )
        return (
            start + self._event("error", **error) + self._event("response.failed", response=failed)
        )
