"""OpenAI Responses bodies to Chat Completions and back: a Responses client (Codex CLI, the
Agents SDK) and a target that speaks only chat.

The Responses side is developers.openai.com/api/reference/resources/responses: ``input`` as a
string or a list of items, ``instructions``, tools with a top-level ``name``, ``text.format``,
``reasoning``, ``max_output_tokens``; a reply is a ``response`` object whose ``output`` holds
``reasoning``, ``message`` and ``function_call`` items.

The request, item by item (``responses_to_chat``):

- ``instructions``, and ``developer`` and ``system`` messages wherever they are, become
  ``system`` messages in place (providers that take only one have their quirk merge them).
- ``user`` messages keep their parts: ``input_text`` as text, ``input_image`` by URL (a data
  URL included), ``input_file`` by its ``file_data``, ``input_audio``; a file or image that is
  only an OpenAI ``file_id`` cannot reach another provider and is refused.
- An assistant turn is the run of ``reasoning``, assistant ``message``, ``function_call`` and
  ``custom_tool_call`` items between the client's own items: it becomes one assistant message
  (its text, its ``tool_calls``), followed at once by the ``tool`` messages answering its
  calls, paired by ``call_id`` wherever the outputs stand in ``input`` (a call without an output,
  or an output without its call, is OpenAI's own 400). Images in a tool output follow it as a
  user message (chat tool messages carry text).
- The reasoning items of a turn that calls tools become its ``reasoning_content`` (the field
  DeepSeek V4, Kimi and GLM in thinking mode want back): the item's ``reasoning_text`` content,
  else its summary. Baton's own items carry the exact text (one summary part; and, sealed under
  the team's key, in ``encrypted_content``, which gateway/turns.py opens back into
  ``reasoning_text`` before the pivot sees it), so it goes back byte for byte. Reasoning of a
  turn without tool calls is left out, as those providers ignore or refuse it there; another
  provider's ``encrypted_content`` is never read or sent.
- A turn that calls tools but whose reasoning shows no text (another provider's
  ``encrypted_content`` only: a conversation that moved here from a native target, such as
  OpenAI, mid-loop) reaches chat without ``reasoning_content``, which those providers refuse
  in thinking mode ("The `reasoning_content` in the thinking mode must be passed back"). The
  request then goes with thinking off (``thinking: {type: disabled}``, as for
  ``reasoning.effort: none``), so the loop continues without thinking instead of failing, as
  a native Messages target does when it loses thinking blocks it cannot read.
- ``phase`` (``commentary`` / ``final_answer``) has no place in chat and is not sent.
- Tools: ``function`` tools as they are; a ``custom`` tool (free-form input, Codex's
  ``apply_patch``) as a function taking ``{"input": string}``, its grammar in the description,
  its calls turned back into ``custom_tool_call`` items; a ``namespace`` tool's functions as
  ``{namespace}__{name}``, their calls carrying ``namespace`` again. Hosted tools
  (``web_search``, ``file_search``, ``tool_search``...) run only on OpenAI's own servers and are
  left out, and so are the items recording their past runs; a ``tool_choice`` that forces one
  becomes the default.
- ``tool_choice``, ``parallel_tool_calls``, ``temperature``, ``top_p``, ``prompt_cache_key``
  and ``safety_identifier`` (as ``user``) pass on; ``max_output_tokens`` becomes ``max_tokens``;
  ``text.format`` becomes ``response_format``; ``reasoning.effort`` becomes ``reasoning_effort``
  (``none`` turns thinking off with the ``thinking`` switch instead).
- Refused with a 400, since chat has nothing like them: ``previous_response_id`` and
  ``conversation`` (server-side state), ``item_reference``, ``compaction`` items, background
  mode, unknown item types. ``store`` is not honoured: Baton keeps no responses, and the reply
  says ``store: false``.

The reply (``chat_to_response``): ``reasoning_content`` becomes a reasoning item shown as its
summary (with Baton's ``encrypted_content`` when the client asked for it and its team lets
Baton keep reasoning), then the message, then one item per tool call; ``finish_reason: length``
makes the response ``incomplete`` (``max_output_tokens``), as ``content_filter`` does
(``content_filter``). Items Baton made have ids with ``BATON_ID`` in them (``rs_baton_…``), so
they are told apart from a provider's when a conversation later reaches a native target.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

import orjson

from wire.base import UpstreamError, Usage
from wire.usage import usage_from_openai

# What encrypted_content starts with when Baton sealed it (gateway/turns.py opens it).
BATON_REASONING_PREFIX = "baton:"
# In the ids of the items and responses Baton makes: rs_baton_…, msg_baton_…, resp_baton_….
BATON_ID = "_baton_"
ENCRYPTED_REASONING = "reasoning.encrypted_content"
CLIENT_TOOLS = frozenset({"function", "custom", "namespace"})
# Items that record a hosted tool's run on OpenAI's servers: nothing a chat model can read.
HOSTED_CALL_ITEMS = frozenset(
    {
        "web_search_call",
        "file_search_call",
        "code_interpreter_call",
        "image_generation_call",
        "computer_call",
        "computer_call_output",
        "mcp_list_tools",
        "mcp_call",
        "mcp_approval_request",
        "mcp_approval_response",
        "tool_search_call",
        "tool_search_output",
    }
)
_OUTPUT_ITEMS = frozenset({"function_call_output", "custom_tool_call_output"})
_CALL_ITEMS = frozenset({"function_call", "custom_tool_call"})
EFFORTS: dict[str, str] = {
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
    "max": "high",
}
INCOMPLETE_REASONS: dict[str, str] = {
    "length": "max_output_tokens",
    "content_filter": "content_filter",
}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> UpstreamError:
    return UpstreamError(400, message, kind="bad_request", param=param, code=code)


def new_id(kind: str) -> str:
    return f"{kind}{BATON_ID}{uuid.uuid4().hex}"


def is_baton_reasoning(item: Mapping[str, Any]) -> bool:
    """A reasoning item Baton made for a translated reply (never a provider's)."""
    sealed = item.get("encrypted_content")
    item_id = item.get("id")
    return (isinstance(sealed, str) and sealed.startswith(BATON_REASONING_PREFIX)) or (
        isinstance(item_id, str) and BATON_ID in item_id
    )


def wants_encrypted_reasoning(body: Mapping[str, Any]) -> bool:
    include = body.get("include")
    return isinstance(include, list) and ENCRYPTED_REASONING in include


# --- tool names ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientTool:
    """The Responses tool a chat function stands for."""

    kind: str  # "function" or "custom"
    name: str
    namespace: str | None = None


def namespaced(namespace: str, name: str) -> str:
    return f"{namespace}__{name}"


def client_tools(tools: Any) -> dict[str, ClientTool]:
    """Chat function name -> the client's tool, for the tools of a Responses request."""
    out: dict[str, ClientTool] = {}
    for tool in tools if isinstance(tools, list) else ():
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            continue
        kind = tool.get("type")
        if kind in ("function", "custom"):
            out[tool["name"]] = ClientTool(kind, tool["name"])
        elif kind == "namespace":
            for inner in tool.get("tools") or ():
                if (
                    isinstance(inner, dict)
                    and inner.get("type", "function") in ("function", "custom")
                    and isinstance(inner.get("name"), str)
                ):
                    chat_name = namespaced(tool["name"], inner["name"])
                    out[chat_name] = ClientTool(
                        inner.get("type", "function"), inner["name"], tool["name"]
                    )
    return out


# --- the request ---------------------------------------------------------------------------


def responses_to_chat(body: Mapping[str, Any]) -> dict[str, Any]:
    """The chat-completions body for a Responses body (already checked by the dialect)."""
    if body.get("previous_response_id") is not None:
        raise bad_request(
            "previous_response_id needs the stateful Responses endpoint that issued it; this "
            "model is reached through Chat Completions, which keeps no responses. Send the "
            "whole conversation in 'input' instead.",
            "previous_response_id",
            "previous_response_not_found",
        )
    if body.get("conversation") is not None:
        raise bad_request(
            "Conversations are kept by OpenAI's own servers; this model is reached through "
            "Chat Completions. Send the whole conversation in 'input' instead.",
            "conversation",
        )
    if body.get("background") is True:
        raise bad_request(
            "Background mode needs a provider's own Responses endpoint; this model is reached "
            "through Chat Completions.",
            "background",
        )
    out: dict[str, Any] = {"model": body.get("model")}
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    raw = body.get("input")
    items: list[Any] = (
        [{"type": "message", "role": "user", "content": raw}] if isinstance(raw, str) else raw or []
    )
    conversation = _Conversation(client_tools(body.get("tools")))
    messages += conversation.build(items)
    out["messages"] = messages

    cap = body.get("max_output_tokens")
    if _is_int(cap) and cap > 0:
        out["max_tokens"] = cap
    for name in ("temperature", "top_p"):
        if _is_number(body.get(name)):
            out[name] = body[name]
    for name in ("prompt_cache_key",):
        if isinstance(body.get(name), str):
            out[name] = body[name]
    user = body.get("safety_identifier") or body.get("user")
    if isinstance(user, str) and user:
        out["user"] = user
    response_format = _response_format(body.get("text"))
    if response_format is not None:
        out["response_format"] = response_format
    reasoning = body.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    if effort == "none" or conversation.unread_reasoning:
        out["thinking"] = {"type": "disabled"}
    elif isinstance(effort, str) and effort in EFFORTS:
        out["reasoning_effort"] = EFFORTS[effort]
    tools, choice = _chat_tools(body.get("tools"), body.get("tool_choice"))
    if tools:
        out["tools"] = tools
        if choice is not None:
            out["tool_choice"] = choice
        if isinstance(body.get("parallel_tool_calls"), bool):
            out["parallel_tool_calls"] = body["parallel_tool_calls"]
    if body.get("stream") is True:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


class _Conversation:
    """Responses items in, chat messages out (see the module docstring)."""

    def __init__(self, names: dict[str, ClientTool]) -> None:
        self.chat_names = {(t.namespace, t.name): chat for chat, t in names.items()}
        self.messages: list[dict[str, Any]] = []
        self.outputs: dict[str, list[dict[str, Any]]] = {}
        self.turn: dict[str, Any] | None = None  # the open assistant message
        self.texts: list[str] = []
        self.reasoning: list[str] = []
        self.unreadable = False  # the open turn has a reasoning item that shows no text
        self.calls: list[dict[str, Any]] = []
        # A tool-call turn went without its reasoning: chat cannot read it (module docstring).
        self.unread_reasoning = False

    def build(self, items: list[Any]) -> list[dict[str, Any]]:
        items = [_normalized(item, i) for i, item in enumerate(items)]
        called = {
            item.get("call_id")
            for item in items
            if item.get("type") in _CALL_ITEMS and isinstance(item.get("call_id"), str)
        }
        for i, item in enumerate(items):
            if item.get("type") in _OUTPUT_ITEMS:
                call_id = item.get("call_id")
                if not isinstance(call_id, str) or call_id not in called:
                    raise bad_request(
                        f"No tool call found for function call output with call_id {call_id}.",
                        f"input[{i}]",
                    )
                self.outputs.setdefault(call_id, []).extend(_tool_messages(item, i))
        for i, item in enumerate(items):
            self._item(item, i)
        self._close()
        return self.messages

    def _item(self, item: dict[str, Any], i: int) -> None:
        kind = item.get("type")
        param = f"input[{i}]"
        if kind == "message":
            role = item.get("role")
            if role == "assistant":
                self._open()
                self.texts.append(_assistant_text(item.get("content"), param))
            elif role in ("system", "developer"):
                self._close()
                text = _plain_text(item.get("content"), param)
                if text:
                    self.messages.append({"role": "system", "content": text})
            elif role == "user":
                self._close()
                self.messages.append(
                    {"role": "user", "content": _user_content(item.get("content"), param)}
                )
            else:
                raise bad_request(f"Invalid value: '{role}' for the message role.", param + ".role")
        elif kind == "reasoning":
            self._open()
            thought = reasoning_text(item)
            if thought is not None:
                self.reasoning.append(thought)
            else:
                self.unreadable = True
        elif kind in _CALL_ITEMS:
            self._open()
            self.calls.append(self._call(item, param))
        elif kind in _OUTPUT_ITEMS:
            self._close()  # answered where their calls are (see build)
        elif kind in HOSTED_CALL_ITEMS:
            pass  # a hosted tool's run on OpenAI's servers: its result is in the reply after it
        elif kind == "item_reference":
            raise bad_request(
                "item_reference needs the stateful Responses endpoint that stored the item; "
                "this model is reached through Chat Completions. Send the item itself.",
                param,
            )
        elif kind == "compaction":
            raise bad_request(
                "A compaction item holds context only OpenAI can read; this model is reached "
                "through Chat Completions.",
                param,
            )
        else:
            raise bad_request(
                f"Input items of type {kind!r} cannot be sent to this model (it is reached "
                "through Chat Completions).",
                param + ".type",
            )

    def _call(self, item: dict[str, Any], param: str) -> dict[str, Any]:
        call_id = item.get("call_id")
        name = item.get("name")
        if not isinstance(call_id, str) or not isinstance(name, str):
            raise bad_request("A tool call item needs a call_id and a name.", param)
        namespace = item.get("namespace")
        chat_name = self.chat_names.get(
            (namespace if isinstance(namespace, str) else None, name),
            namespaced(namespace, name) if isinstance(namespace, str) else name,
        )
        if item.get("type") == "custom_tool_call":
            value = item.get("input")
            arguments = orjson.dumps({"input": value if isinstance(value, str) else ""}).decode()
        else:
            raw = item.get("arguments")
            arguments = raw if isinstance(raw, str) and raw.strip() else "{}"
        return {
            "id": call_id,
            "type": "function",
            "function": {"name": chat_name, "arguments": arguments},
        }

    def _open(self) -> None:
        if self.turn is None:
            self.turn = {"role": "assistant"}

    def _close(self) -> None:
        if self.turn is None:
            return
        message = self.turn
        text = "".join(self.texts)
        if self.calls:
            message["content"] = text or None
            message["tool_calls"] = self.calls
            if self.reasoning:
                message["reasoning_content"] = "\n\n".join(self.reasoning)
            elif self.unreadable:
                self.unread_reasoning = True
        elif text:
            message["content"] = text
        if self.calls or text:
            self.messages.append(message)
        for call in self.calls:
            answers = self.outputs.get(call["id"])
            if not answers:
                raise bad_request(f"No tool output found for function call {call['id']}.", "input")
            self.messages.extend(answers)
        self.turn, self.texts, self.reasoning, self.calls = None, [], [], []
        self.unreadable = False


def _normalized(item: Any, i: int) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise bad_request(f"Invalid type for 'input[{i}]': expected an object.", f"input[{i}]")
    if "type" not in item and "role" in item:  # an EasyInputMessage
        return {"type": "message", **item}
    return item


def reasoning_text(item: Mapping[str, Any]) -> str | None:
    """A reasoning item's readable text: its ``reasoning_text`` content (DeepSeek's native
    items, and Baton's own once opened), else its summary; None when it shows none."""
    content = item.get("content")
    if isinstance(content, list):
        texts = [
            part["text"]
            for part in content
            if isinstance(part, dict)
            and part.get("type") == "reasoning_text"
            and isinstance(part.get("text"), str)
        ]
        if texts:
            return "".join(texts)
    summary = item.get("summary")
    if isinstance(summary, list):
        texts = [
            part["text"]
            for part in summary
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        ]
        if texts:
            return "\n\n".join(texts)
    return None


def _plain_text(content: Any, param: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad_request("Message content must be a string or a list of parts.", param)
    texts = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") not in ("input_text", "output_text"):
            raise bad_request(
                "Only text parts can be sent in system and developer messages to this model.",
                f"{param}.content[{j}]",
            )
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
    return "\n\n".join(texts)


def _assistant_text(content: Any, param: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad_request("Message content must be a string or a list of parts.", param)
    texts = []
    for part in content:
        if not isinstance(part, dict):
            continue
        text = part.get("text") if part.get("type") != "refusal" else part.get("refusal")
        if isinstance(text, str):
            texts.append(text)
    return "".join(texts)


def _user_content(content: Any, param: str) -> Any:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad_request("Message content must be a string or a list of parts.", param)
    parts = [_user_part(part, f"{param}.content[{j}]") for j, part in enumerate(content)]
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _user_part(part: Any, param: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise bad_request("Content parts must be objects.", param)
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        text = part.get("text")
        return {"type": "text", "text": text if isinstance(text, str) else ""}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise bad_request(
                "Images must be sent by URL or data URL to this model (an OpenAI file_id "
                "cannot reach another provider).",
                param,
            )
        image: dict[str, Any] = {"url": url}
        if isinstance(part.get("detail"), str):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        data = part.get("file_data")
        if not isinstance(data, str) or not data:
            raise bad_request(
                "Files must be sent inline (file_data) to this model (an OpenAI file_id or a "
                "file_url cannot reach another provider).",
                param,
            )
        file: dict[str, Any] = {"file_data": data}
        if isinstance(part.get("filename"), str):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    if kind == "input_audio":
        return {"type": "input_audio", "input_audio": part.get("input_audio")}
    raise bad_request(f"Content parts of type {kind!r} cannot be sent to this model.", param)


def _tool_messages(item: dict[str, Any], i: int) -> list[dict[str, Any]]:
    """A tool output as a tool message, and the images it holds as a user message after it."""
    output = item.get("output")
    call_id = item["call_id"]
    if isinstance(output, str):
        return [{"role": "tool", "tool_call_id": call_id, "content": output}]
    if not isinstance(output, list):
        text = "" if output is None else orjson.dumps(output).decode()
        return [{"role": "tool", "tool_call_id": call_id, "content": text}]
    texts: list[str] = []
    media: list[dict[str, Any]] = []
    for j, part in enumerate(output):
        converted = _user_part(part, f"input[{i}].output[{j}]")
        if converted["type"] == "text":
            texts.append(converted["text"])
        else:
            media.append(converted)
    out = [{"role": "tool", "tool_call_id": call_id, "content": "".join(texts)}]
    if media:
        out.append({"role": "user", "content": media})
    return out


def _response_format(text: Any) -> dict[str, Any] | None:
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict):
        return None
    kind = fmt.get("type")
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        spec = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": spec}
    return None


def _chat_tools(tools: Any, choice: Any) -> tuple[list[dict[str, Any]], Any]:
    out: list[dict[str, Any]] = []
    for tool in tools if isinstance(tools, list) else ():
        if not isinstance(tool, dict) or tool.get("type") not in CLIENT_TOOLS:
            continue  # a hosted tool: only OpenAI's own servers run it
        if tool.get("type") == "namespace":
            for inner in tool.get("tools") or ():
                if isinstance(inner, dict) and inner.get("type", "function") in (
                    "function",
                    "custom",
                ):
                    out.append(_chat_function(inner, namespace=tool.get("name")))
        else:
            out.append(_chat_function(tool))
    if not out:
        return out, None
    return _chat_choice(out, choice)


_CUSTOM_INPUT = "The tool's whole input, as free text."


def _chat_function(tool: Mapping[str, Any], namespace: Any = None) -> dict[str, Any]:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise bad_request("Every tool needs a name.", "tools")
    if isinstance(namespace, str):
        name = namespaced(namespace, name)
    function: dict[str, Any] = {"name": name}
    description = tool.get("description")
    if tool.get("type") == "custom":
        fmt = tool.get("format")
        detail = _CUSTOM_INPUT
        if isinstance(fmt, dict) and fmt.get("type") == "grammar":
            detail += f" It must follow this {fmt.get('syntax', '')} grammar:\n{fmt.get('definition', '')}"
        function["parameters"] = {
            "type": "object",
            "properties": {"input": {"type": "string", "description": detail}},
            "required": ["input"],
        }
    else:
        parameters = tool.get("parameters")
        function["parameters"] = (
            parameters if isinstance(parameters, dict) else {"type": "object", "properties": {}}
        )
        if isinstance(tool.get("strict"), bool):
            function["strict"] = tool["strict"]
    if isinstance(description, str) and description:
        function["description"] = description
    return {"type": "function", "function": function}


def _chat_choice(tools: list[dict[str, Any]], choice: Any) -> tuple[list[dict[str, Any]], Any]:
    if choice in ("auto", "none", "required"):
        return tools, choice
    if not isinstance(choice, dict):
        return tools, None
    kind = choice.get("type")
    if kind in ("function", "custom") and isinstance(choice.get("name"), str):
        name = choice["name"]
        if isinstance(choice.get("namespace"), str):
            name = namespaced(choice["namespace"], name)
        return tools, {"type": "function", "function": {"name": name}}
    if kind == "allowed_tools":
        allowed = {
            namespaced(t["namespace"], t["name"])
            if isinstance(t.get("namespace"), str)
            else t["name"]
            for t in choice.get("tools") or ()
            if isinstance(t, dict) and isinstance(t.get("name"), str)
        }
        kept = [t for t in tools if t["function"]["name"] in allowed]
        return kept, ("required" if choice.get("mode") == "required" else "auto") if kept else None
    return tools, None  # a hosted tool forced: it is not offered, so the model decides


# --- the reply -----------------------------------------------------------------------------


Seal = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Reply:
    """What answering a Responses request in its own terms needs: the request (echoed, and
    its tools to name calls back), the model asked for, and Baton's sealing of reasoning."""

    body: Mapping[str, Any]
    model: str
    seal: Seal | None = None

    @property
    def sealing(self) -> bool:
        return self.seal is not None and wants_encrypted_reasoning(self.body)


def reasoning_item(text: str, reply: Reply, item_id: str | None = None) -> dict[str, Any]:
    """Reasoning from a chat upstream as a Responses reasoning item: shown as its summary;
    sealed by Baton in ``encrypted_content`` when the client asked for it and may have it."""
    item: dict[str, Any] = {
        "id": item_id or new_id("rs"),
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}],
    }
    if reply.seal is not None and reply.sealing:
        item["encrypted_content"] = BATON_REASONING_PREFIX + reply.seal(text)
    return item


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(
    text: str, refusal: str | None, *, incomplete: bool, item_id: str | None = None
) -> dict[str, Any]:
    content: list[dict[str, Any]] = [output_text(text)] if text or not refusal else []
    if refusal:
        content.append({"type": "refusal", "refusal": refusal})
    return {
        "id": item_id or new_id("msg"),
        "type": "message",
        "status": "incomplete" if incomplete else "completed",
        "role": "assistant",
        "content": content,
    }


def call_item(
    call_id: str,
    chat_name: str,
    arguments: str,
    names: Mapping[str, ClientTool],
    *,
    item_id: str | None = None,
    status: str = "completed",
) -> dict[str, Any]:
    """A chat tool call as the client's function or custom tool call item."""
    tool = names.get(chat_name) or ClientTool("function", chat_name)
    if tool.kind == "custom":
        return {
            "id": item_id or new_id("ctc"),
            "type": "custom_tool_call",
            "status": status,
            "call_id": call_id,
            "name": tool.name,
            "input": custom_input(arguments),
        }
    item: dict[str, Any] = {
        "id": item_id or new_id("fc"),
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": tool.name,
        "arguments": arguments,
    }
    if tool.namespace is not None:
        item["namespace"] = tool.namespace
    return item


def custom_input(arguments: str) -> str:
    """The free-form input of a custom tool, from the ``{"input": ...}`` the model wrote."""
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(parsed, dict) and isinstance(parsed.get("input"), str):
        return str(parsed["input"])
    return arguments


def status_of(finish_reason: Any) -> tuple[str, str | None]:
    """(response status, incomplete reason) for a chat finish reason."""
    reason = INCOMPLETE_REASONS.get(finish_reason) if isinstance(finish_reason, str) else None
    return ("incomplete", reason) if reason else ("completed", None)


def response_object(
    reply: Reply,
    response_id: str,
    created: int,
    model: str,
    *,
    status: str,
    output: list[dict[str, Any]] | None,
    usage: dict[str, Any] | None,
    incomplete_reason: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``response`` object for a translated reply, echoing the client's request as OpenAI
    does (``output`` None leaves it out: the SDK then keeps the items it streamed)."""
    body = reply.body
    reasoning = body.get("reasoning")
    reasoning = reasoning if isinstance(reasoning, dict) else {}
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    out: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": model,
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
        "previous_response_id": None,
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default",
        "store": False,  # Baton keeps no responses
        "temperature": body.get("temperature") if _is_number(body.get("temperature")) else 1.0,
        "text": {"format": fmt if isinstance(fmt, dict) else {"type": "text"}},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": body.get("tools") if isinstance(body.get("tools"), list) else [],
        "top_p": body.get("top_p") if _is_number(body.get("top_p")) else 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": body.get("user"),
        "metadata": body.get("metadata") if isinstance(body.get("metadata"), dict) else {},
    }
    if output is not None:
        out["output"] = output
    if status in ("completed", "incomplete"):
        out["completed_at"] = int(time.time())
    return out


def chat_to_response(payload: Mapping[str, Any], reply: Reply) -> dict[str, Any]:
    """A ``response`` object for a chat-completions response body."""
    choices = payload.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    choice = choice if isinstance(choice, dict) else {}
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    status, reason = status_of(choice.get("finish_reason"))
    output: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content")
    if not isinstance(reasoning, str):
        reasoning = message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        output.append(reasoning_item(reasoning, reply))
    text = message.get("content")
    if isinstance(text, list):
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    refusal = message.get("refusal")
    refusal = refusal if isinstance(refusal, str) and refusal else None
    calls = [c for c in message.get("tool_calls") or () if isinstance(c, dict)]
    if (isinstance(text, str) and text) or refusal or not calls:
        output.append(
            message_item(
                text if isinstance(text, str) else "", refusal, incomplete=status == "incomplete"
            )
        )
    names = client_tools(reply.body.get("tools"))
    for call in calls:
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        arguments = function.get("arguments")
        output.append(
            call_item(
                str(call.get("id") or new_id("call")),
                str(function.get("name") or ""),
                arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode(),
                names,
            )
        )
    raw_usage = payload.get("usage")
    usage = usage_from_openai(raw_usage)[0] if isinstance(raw_usage, dict) else Usage()
    created = payload.get("created")
    return response_object(
        reply,
        new_id("resp"),
        created if _is_int(created) else int(time.time()),
        str(payload.get("model") or reply.model),
        status=status,
        output=output,
        usage=usage.to_responses(),
        incomplete_reason=reason,
    )


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
