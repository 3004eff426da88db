"""OpenAI chat bodies to Anthropic Messages and back.

Anthropic's side is https://docs.anthropic.com/en/api/messages: ``system`` at the top
level, only ``user`` and ``assistant`` turns, ``max_tokens`` required, tool calls as
``tool_use`` blocks whose ``input`` is an object, ``input_tokens`` counted without the
cache reads and writes.

The request is rebuilt from an allow-list rather than copied: Anthropic
rejects unknown top-level fields, so OpenAI-only parameters (penalties,
logprobs, seed, logit_bias, service_tier, ...) are left out. Requests that
cannot be expressed fail early with a 400 instead of being silently changed:
``n`` > 1, audio input, unknown content parts, tool-call arguments that are
not a JSON object.

Decisions worth knowing:

- ``system`` and ``developer`` messages, wherever they appear, become the
  top-level ``system`` text blocks in order (``cache_control`` on text parts
  is kept, so prompt caching works through Baton).
- ``response_format`` json_object / json_schema has no Anthropic equivalent;
  it becomes an extra system instruction (with the schema), because dropping
  it would hand clients that parse JSON a prose answer.
- Assistant ``reasoning_content`` alone is not sent back: Anthropic only accepts
  thinking blocks with the signature it issued. Clients that keep ``thinking_blocks``
  (LiteLLM's convention, which Baton's own replies carry) get them back whole.
- An assistant tool call with empty arguments means "no arguments" (``{}``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeGuard

import orjson

from wire.base import UpstreamError, Usage
from wire.usage import usage_from_anthropic, usage_from_openai

DEFAULT_MAX_TOKENS = 4096
# Marks a thinking signature Baton made (for reasoning from a chat upstream): no provider
# issued it, so it never goes to one that verifies signatures.
BATON_SIGNATURE_PREFIX = "baton-"

FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",  # server tools paused; the client must continue the turn
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

_JSON_OBJECT_INSTRUCTION = "Respond with a single valid JSON object and nothing else."
_JSON_SCHEMA_INSTRUCTION = (
    "Respond with a single valid JSON object, and nothing else, that conforms to this JSON Schema: "
)


def bad_request(message: str, param: str | None = None) -> UpstreamError:
    return UpstreamError(400, message, kind="bad_request", param=param)


def to_anthropic_request(
    body: Mapping[str, Any], model: str, extras: Mapping[str, Any], *, stream: bool
) -> dict[str, Any]:
    """The Messages API body for an OpenAI chat-completions body."""
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        raise bad_request("n > 1 is not supported by Anthropic models", "n")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages must be a non-empty array", "messages")

    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad_request("each message must be an object", f"messages[{i}]")
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system += _text_blocks(content, f"messages[{i}].content")
        elif role == "user":
            _append_turn(turns, "user", _user_blocks(content, i))
        elif role == "assistant":
            _append_turn(turns, "assistant", _assistant_blocks(message, i))
        elif role == "tool":
            _append_turn(turns, "user", [_tool_result(message, i)])
        else:
            raise bad_request(f"unsupported message role {role!r}", f"messages[{i}].role")

    instruction = _response_format_instruction(body.get("response_format"))
    if instruction:
        system.append({"type": "text", "text": instruction})

    out: dict[str, Any] = {
        "model": model,
        "messages": turns,
        "max_tokens": _max_tokens(body, extras),
    }
    if system:
        out["system"] = system
    if stream:
        out["stream"] = True

    temperature = body.get("temperature")
    if _is_number(temperature):
        out["temperature"] = min(max(temperature, 0.0), 1.0)  # OpenAI allows up to 2
    for name in ("top_p", "top_k"):
        if _is_number(body.get(name)):
            out[name] = body[name]
    stop = body.get("stop")
    if isinstance(stop, str) and stop:
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        out["stop_sequences"] = [s for s in stop if isinstance(s, str) and s]
    user = body.get("user")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}
    if isinstance(body.get("thinking"), dict):  # Anthropic-native, sent via extra_body
        out["thinking"] = body["thinking"]

    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise bad_request("tools must be a list of function tools", "tools")
    if tools:
        out["tools"] = [_tool(tool, i) for i, tool in enumerate(tools)]
        choice = _tool_choice(body.get("tool_choice"))
        if body.get("parallel_tool_calls") is False:
            choice = {**(choice or {"type": "auto"})}
            if choice["type"] != "none":
                choice["disable_parallel_tool_use"] = True
        if choice is not None:
            out["tool_choice"] = choice
    return out


def from_anthropic_response(
    payload: Mapping[str, Any], created: int
) -> tuple[dict[str, Any], Usage]:
    """A ``chat.completion`` body and its usage for a Messages API response."""
    texts: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    for block in payload.get("content") or ():
        if not isinstance(block, dict):
            continue
        block_type = block.get("type")
        if block_type == "text":
            texts.append(str(block.get("text", "")))
        elif block_type == "tool_use":
            tool_calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
        elif block_type == "thinking":
            reasoning.append(str(block.get("thinking", "")))
            thinking_blocks.append(block)
        elif block_type == "redacted_thinking":
            thinking_blocks.append(block)

    message: dict[str, Any] = {
        "role": "assistant",
        # OpenAI convention: content is null on a pure tool-call turn.
        "content": "".join(texts) if texts or not tool_calls else None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if thinking_blocks:
        # Signatures included, so a client that keeps them can send the turn back whole.
        message["thinking_blocks"] = thinking_blocks
    raw_usage = payload.get("usage")
    usage = usage_from_anthropic(raw_usage if isinstance(raw_usage, dict) else {})
    completion = {
        "id": payload.get("id"),
        "object": "chat.completion",
        "created": created,
        "model": payload.get("model"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(payload.get("stop_reason")),
            }
        ],
        "usage": usage.to_openai(),
    }
    return completion, usage


def finish_reason(stop_reason: Any) -> str:
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def models_to_openai(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Anthropic's model list as an OpenAI ``list`` of ``model`` objects."""
    data = []
    for model in payload.get("data") or ():
        if isinstance(model, dict) and isinstance(model.get("id"), str):
            data.append(
                {
                    "id": model["id"],
                    "object": "model",
                    "created": _epoch(model.get("created_at")),
                    "owned_by": "anthropic",
                }
            )
    return {"object": "list", "data": data}


def _append_turn(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Anthropic wants alternating roles: consecutive turns of one role are merged."""
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _text_blocks(content: Any, param: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if content is None:
        return []
    if not isinstance(content, list):
        raise bad_request("content must be a string or an array of parts", param)
    blocks = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text":
            raise bad_request("only text parts are allowed here", f"{param}[{j}]")
        block = _text_part(part)
        if block:
            blocks.append(block)
    return blocks


def _text_part(part: Mapping[str, Any]) -> dict[str, Any] | None:
    text = part.get("text")
    if not isinstance(text, str) or not text:
        return None  # Anthropic rejects empty text blocks
    block: dict[str, Any] = {"type": "text", "text": text}
    if "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    return block


def _user_blocks(content: Any, i: int) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return _text_blocks(content, f"messages[{i}].content")
    blocks = []
    for j, part in enumerate(content):
        param = f"messages[{i}].content[{j}]"
        if not isinstance(part, dict):
            raise bad_request("content parts must be objects", param)
        part_type = part.get("type")
        block: dict[str, Any] | None
        if part_type == "text":
            block = _text_part(part)
        elif part_type == "image_url":
            block = _image_block(part.get("image_url"), param)
        elif part_type == "file":
            block = _document_block(part.get("file"), param)
        else:
            raise bad_request(f"content part type {part_type!r} is not supported", param)
        if block:
            blocks.append(block)
    return blocks


def _image_block(image: Any, param: str) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise bad_request("image_url.url must be a string", param)
    if url.startswith("data:"):
        media_type, data = _split_data_url(url, param)
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    if url.startswith(("https://", "http://")):
        # Anthropic fetches the URL itself; Baton never does (no SSRF surface here).
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise bad_request("image_url.url must be an http(s) or data: URL", param)


def _document_block(file: Any, param: str) -> dict[str, Any]:
    data_url = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data_url, str):
        raise bad_request("file parts need file_data (a base64 data: URL)", param)
    media_type, data = _split_data_url(data_url, param)
    return {
        "type": "document",
        "source": {"type": "base64", "media_type": media_type, "data": data},
    }


def _split_data_url(url: str, param: str) -> tuple[str, str]:
    header, sep, data = url.partition(",")
    if not sep or not header.endswith(";base64"):
        raise bad_request("data: URLs must be base64-encoded", param)
    media_type = header[len("data:") : -len(";base64")]
    return media_type or "application/octet-stream", data


def _assistant_blocks(message: Mapping[str, Any], i: int) -> list[dict[str, Any]]:
    content = message.get("content")
    # Thinking first, whole and in order, as Anthropic requires on a tool-use turn; only
    # blocks a provider signed (Baton's own marks would be refused), and only whole blocks:
    # bare reasoning_content has no signature Anthropic would accept.
    blocks: list[dict[str, Any]] = [
        dict(block)
        for block in message.get("thinking_blocks") or ()
        if isinstance(block, dict)
        and (
            block.get("type") == "redacted_thinking"
            or (
                block.get("type") == "thinking"
                and isinstance(block.get("signature"), str)
                and not block["signature"].startswith(BATON_SIGNATURE_PREFIX)
            )
        )
    ]
    if isinstance(content, list):
        # Assistant parts may be "text" or "refusal"; a refusal is plain text to Anthropic.
        for part in content:
            if isinstance(part, dict):
                text = part.get("text") if part.get("type") == "text" else part.get("refusal")
                if isinstance(text, str) and text:
                    blocks.append({"type": "text", "text": text})
    else:
        blocks += _text_blocks(content, f"messages[{i}].content")
    for j, call in enumerate(message.get("tool_calls") or ()):
        param = f"messages[{i}].tool_calls[{j}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise bad_request("tool calls need a function name", param)
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function["name"],
                "input": _arguments(function.get("arguments"), param + ".function.arguments"),
            }
        )
    return blocks


def _arguments(arguments: Any, param: str) -> Any:
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    try:
        parsed = orjson.loads(arguments) if isinstance(arguments, str) else None
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise bad_request("tool call arguments must be a JSON object", param)
    return parsed


def _tool_result(message: Mapping[str, Any], i: int) -> dict[str, Any]:
    tool_call_id = message.get("tool_call_id")
    if not isinstance(tool_call_id, str) or not tool_call_id:
        raise bad_request("tool messages need a tool_call_id", f"messages[{i}].tool_call_id")
    content = message.get("content")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_call_id}
    if isinstance(content, list):
        block["content"] = _text_blocks(content, f"messages[{i}].content")
    elif isinstance(content, str) and content:
        block["content"] = content
    return block


def _tool(tool: Any, i: int) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or tool.get("type", "function") != "function":
        raise bad_request("only function tools are supported", f"tools[{i}]")
    out: dict[str, Any] = {
        "name": function.get("name"),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict):
        function = choice.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return {"type": "tool", "name": function["name"]}
    return None


def _response_format_instruction(response_format: Any) -> str | None:
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return _JSON_OBJECT_INSTRUCTION
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if schema is None:
            return _JSON_OBJECT_INSTRUCTION
        return _JSON_SCHEMA_INSTRUCTION + orjson.dumps(schema).decode()
    return None


def _max_tokens(body: Mapping[str, Any], extras: Mapping[str, Any]) -> int:
    """Anthropic requires max_tokens; the client's value, else the target's default."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise bad_request(f"{name} must be a positive integer", name)
        return value
    default = extras.get("default_max_tokens")
    return default if isinstance(default, int) and default > 0 else DEFAULT_MAX_TOKENS


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _epoch(value: Any) -> int:
    if not isinstance(value, str):
        return 0
    try:
        return int(datetime.fromisoformat(value).timestamp())
    except ValueError:
        return 0


# --- Messages in, chat out: a Messages client and a target that speaks only chat ----------
#
# The inverse of the mapping above. Reasoning travels both ways: an assistant turn's
# thinking blocks become ``reasoning_content`` (the field DeepSeek, GLM and Kimi need passed
# back on tool-call turns) and are also kept whole in ``thinking_blocks`` (LiteLLM's
# convention; the chat adapters strip it before a provider sees it), so a signature survives
# a trip through the chat pivot. A chat reply's ``reasoning_content`` comes back to the client
# as a thinking block whose signature Baton made (``BATON_SIGNATURE_PREFIX``): no provider
# can verify it, so the relay drops such blocks before a provider that checks signatures.


STOP_REASONS: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def baton_signature(thinking: str) -> str:
    """A signature for reasoning Baton turned into a thinking block: marks it as Baton's
    (not a provider's), so it is never sent to a provider that verifies signatures."""
    digest = hashlib.sha256(thinking.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return BATON_SIGNATURE_PREFIX + digest


def messages_to_chat(body: Mapping[str, Any]) -> dict[str, Any]:
    """The chat-completions body for a Messages body (already validated by the dialect)."""
    out: dict[str, Any] = {"model": body.get("model")}
    chat: list[dict[str, Any]] = []
    system = _system_text(body.get("system"))
    if system:
        chat.append({"role": "system", "content": system})
    for i, message in enumerate(body.get("messages") or ()):
        role = message.get("role")
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if role == "system":  # mid-conversation system entries (Claude Code sends them)
            text = _system_text(content)
            if text:
                chat.append({"role": "system", "content": text})
        elif role == "assistant":
            chat.append(_assistant_message(blocks or [], i))
        else:
            chat.extend(_user_messages(blocks or [], i))
    out["messages"] = chat
    out["max_tokens"] = body.get("max_tokens")
    for name in ("temperature", "top_p"):
        if _is_number(body.get(name)):
            out[name] = body[name]
    stop = body.get("stop_sequences")
    if isinstance(stop, list) and stop:
        out["stop"] = [s for s in stop if isinstance(s, str)]
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        out["user"] = metadata["user_id"]
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive", "disabled"):
        # DeepSeek, GLM, Kimi and Ark take the same switch on chat; the quirks of
        # providers that reject it drop it.
        out["thinking"] = {"type": "disabled" if thinking["type"] == "disabled" else "enabled"}
    config = body.get("output_config")
    effort = config.get("effort") if isinstance(config, dict) else None
    if effort in ("low", "medium", "high"):
        out["reasoning_effort"] = effort
    elif effort == "max":
        out["reasoning_effort"] = "high"
    tools = [
        _chat_tool(tool)
        for tool in body.get("tools") or ()
        if isinstance(tool, dict) and tool.get("type") in (None, "custom")
    ]
    if tools:
        out["tools"] = tools
        choice = body.get("tool_choice")
        if isinstance(choice, dict):
            kind = choice.get("type")
            if kind == "any":
                out["tool_choice"] = "required"
            elif kind == "tool" and isinstance(choice.get("name"), str):
                out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
            elif kind in ("auto", "none"):
                out["tool_choice"] = kind
            if choice.get("disable_parallel_tool_use") is True:
                out["parallel_tool_calls"] = False
    if body.get("stream") is True:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        texts = [
            b["text"]
            for b in system
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        ]
        return "\n\n".join(t for t in texts if t)
    return ""


def _assistant_message(blocks: list[Any], i: int) -> dict[str, Any]:
    texts: list[str] = []
    reasoning: list[str] = []
    kept: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "thinking":
            thinking = block.get("thinking")
            if isinstance(thinking, str):
                reasoning.append(thinking)
            kept.append(block)
        elif kind == "redacted_thinking":
            kept.append(block)
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
    }
    if calls:
        message["tool_calls"] = calls
    if kept:
        # Byte for byte what the client sent, in order (an empty thinking text included).
        message["reasoning_content"] = "".join(reasoning)
        message["thinking_blocks"] = kept
    return message


def _user_messages(blocks: list[Any], i: int) -> list[dict[str, Any]]:
    """A user turn: its tool results first (each a ``tool`` message, answering the assistant
    turn just before), then what the user wrote."""
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        param = f"messages[{i}].content[{j}]"
        if not isinstance(block, dict):
            raise bad_request("content blocks must be objects", param)
        kind = block.get("type")
        if kind == "tool_result":
            results.append(
                {
                    "role": "tool",
                    "tool_call_id": block.get("tool_use_id"),
                    "content": _tool_result_text(block),
                }
            )
        elif kind == "text" and isinstance(block.get("text"), str):
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _source_url(block, param)}})
        elif kind == "document":
            source = block.get("source")
            if isinstance(source, dict) and source.get("type") == "text":
                parts.append({"type": "text", "text": str(source.get("data") or "")})
            else:
                parts.append({"type": "file", "file": {"file_data": _source_url(block, param)}})
        else:
            raise bad_request(f"content block type {kind!r} is not supported here", param)
    out = list(results)
    if parts:
        only_text = all(p["type"] == "text" for p in parts)
        content: Any = "".join(p["text"] for p in parts) if only_text else parts
        out.append({"role": "user", "content": content})
    return out


def _tool_result_text(block: Mapping[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = "".join(
            b.get("text", "")
            for b in content
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        )
    else:
        text = ""
    if block.get("is_error") is True and not text.startswith("Error"):
        text = "Error: " + text
    return text


def _source_url(block: Mapping[str, Any], param: str) -> str:
    source = block.get("source")
    if isinstance(source, dict):
        if source.get("type") == "base64" and isinstance(source.get("data"), str):
            media = source.get("media_type") or "application/octet-stream"
            return f"data:{media};base64,{source['data']}"
        if source.get("type") == "url" and isinstance(source.get("url"), str):
            return str(source["url"])
    raise bad_request("this content block's source cannot be sent to this model", param)


def _chat_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    function: dict[str, Any] = {
        "name": tool.get("name"),
        "parameters": tool.get("input_schema") or {"type": "object", "properties": {}},
    }
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def chat_to_messages_response(
    payload: Mapping[str, Any], model: str | None = None
) -> dict[str, Any]:
    """A Messages response body for a chat-completions response body, naming ``model``
    (the one the client asked for) when given."""
    choices = payload.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    message = choice.get("message") if isinstance(choice, dict) else None
    message = message if isinstance(message, dict) else {}
    content: list[dict[str, Any]] = thinking_blocks_of(message)
    text = message.get("content")
    if isinstance(text, list):
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": _tool_input(function.get("arguments")),
            }
        )
    raw_usage = payload.get("usage")
    usage, _ = usage_from_openai(raw_usage if isinstance(raw_usage, dict) else {})
    finish = choice.get("finish_reason") if isinstance(choice, dict) else None
    return {
        "id": messages_id(payload.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model if model is not None else payload.get("model"),
        "content": content,
        "stop_reason": STOP_REASONS.get(finish, "end_turn") if isinstance(finish, str) else None,
        "stop_sequence": None,
        "usage": usage.to_anthropic(),
    }


def thinking_blocks_of(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The thinking blocks of a chat assistant message: the ones it carries whole (an
    Anthropic upstream's, signatures included), else its reasoning text under Baton's mark."""
    kept = message.get("thinking_blocks")
    if isinstance(kept, list) and kept:
        return [dict(b) for b in kept if isinstance(b, dict)]
    reasoning = message.get("reasoning_content")
    if not isinstance(reasoning, str):
        reasoning = message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        return [
            {"type": "thinking", "thinking": reasoning, "signature": baton_signature(reasoning)}
        ]
    return []


def messages_id(chat_id: Any) -> str:
    text = str(chat_id or "")
    return text if text.startswith("msg_") else "msg_" + (text.removeprefix("chatcmpl-") or "baton")


def _tool_input(arguments: Any) -> Any:
    if isinstance(arguments, dict):
        return arguments
    if isinstance(arguments, str) and arguments.strip():
        try:
            parsed = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            return {"arguments": arguments}  # keep what the model wrote rather than lose it
        return parsed if isinstance(parsed, dict) else {"value": parsed}
    return {}
