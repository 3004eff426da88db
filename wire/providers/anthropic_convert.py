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
- Assistant ``reasoning_content`` is not sent back: Anthropic only accepts
  thinking blocks with the signature it issued, which OpenAI clients do not keep.
- An assistant tool call with empty arguments means "no arguments" (``{}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeGuard

import orjson

from .base import UpstreamError, Usage
from .usage import usage_from_anthropic

DEFAULT_MAX_TOKENS = 4096

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

    message: dict[str, Any] = {
        "role": "assistant",
        # OpenAI convention: content is null on a pure tool-call turn.
        "content": "".join(texts) if texts or not tool_calls else None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
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
    blocks: list[dict[str, Any]] = []
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
