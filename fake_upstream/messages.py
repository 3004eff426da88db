"""The Anthropic Messages dialect, as Anthropic and the providers that copy it serve it.

Bases (each may sit under a ``/_f/{directives}`` fault prefix; any query string, such as
Claude Code's ``?beta=true``, is accepted and recorded):

=========================== ============================================================
``/anthropic/v1``            Anthropic: ``messages``, ``messages/count_tokens``, ``models``
``/deepseek/anthropic/v1``   DeepSeek (https://api-docs.deepseek.com/guides/anthropic_api):
                             ``messages`` only; ``claude-opus*`` -> ``deepseek-v4-pro``,
                             other ``claude*`` -> ``deepseek-v4-flash``, other unknown
                             models -> 400; ``cache_control`` ignored (its cache is
                             automatic); errors in its OpenAI shape
``/qwen/anthropic/v1``       DashScope ``/apps/anthropic``: ``messages``
``/zhipu/anthropic/v1``      Zhipu ``/api/anthropic``: ``messages``
``/moonshot/anthropic/v1``   Moonshot ``/anthropic``: ``messages``
``/minimax/anthropic/v1``    MiniMax ``/anthropic``: ``messages``; refuses ``role: system``
                             inside ``messages`` ("invalid params, chat content has invalid
                             message role: system (2013)")
=========================== ============================================================

``count_tokens`` and ``models`` exist only where the provider documents them (Anthropic);
elsewhere they are a 404 in that provider's shape, which is what a relay must handle. The
key is read from ``x-api-key`` or ``Authorization: Bearer``; only Anthropic requires
``anthropic-version``. Unknown body fields (``context_management``, ``output_config``,
``metadata``, ``cache_control``...) are accepted and ignored. A ``role: system`` entry in
``messages`` is accepted by Anthropic only with the ``mid-conversation-system-2026-04-07``
beta, by the others except MiniMax always.

Replies: the usual deterministic text (``Echo: ...``), or a ``tool_use`` chosen as
tools.py says; when the request thinks (reasoning.py), a signed ``thinking`` block comes
first, plus a ``redacted_thinking`` block with the ``redacted`` fault directive. Streams
follow https://platform.claude.com/docs/en/build-with-claude/streaming: ``message_start``,
``ping``, per block ``content_block_start`` / deltas (``thinking_delta``... then one
``signature_delta``; ``text_delta``; ``input_json_delta``) / ``content_block_stop``, then
``message_delta`` with the cumulative usage and ``message_stop``.

Usage. Input counts as tokens.py counts (a message or system prompt costs 3 tokens on top
of its text, a tool its name and description plus 3). Without any ``cache_control`` a system
prompt of 8+ tokens reads as cached plus 2 freshly written tokens (so a plain request shows
cache fields). With ``cache_control`` (on blocks, or top level for the last block) the fake
keeps a real prompt cache per account: the longest prefix ending at a breakpoint that an
earlier request wrote is read; the tokens after it, up to the last breakpoint, are written,
each stretch under the ``ttl`` of the breakpoint that closes it (``1h`` into
``ephemeral_1h_input_tokens``, else ``ephemeral_5m_input_tokens``). ``input_tokens``
excludes reads and writes, as Anthropic reports it.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import orjson

from fake_upstream import reasoning, tools
from fake_upstream.faults import Faults
from fake_upstream.flavors import (
    FLAVORS,
    MODEL_LISTS,
    Event,
    Flavor,
    auth_failure,
    error,
    model_detail,
    new_id,
)
from fake_upstream.tokens import (
    PER_MESSAGE_TOKENS,
    Reply,
    ToolCall,
    content_text,
    count_tokens,
    last_user_text,
    reply_length,
    reply_words,
)

Json = tuple[int, bytes, int]  # status, body, completion tokens (for tps pacing)
Result = Json | Iterator[Event]

MID_CONVERSATION_SYSTEM = "mid-conversation-system-2026-04-07"
MAX_BREAKPOINTS = 4
CACHE_SIZE = 50_000
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
PING = b'event: ping\ndata: {"type":"ping"}\n\n'
STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'

FLAVORS_WITH_MESSAGES: dict[str, Flavor] = {
    "anthropic": FLAVORS["anthropic"],
    **{
        name: Flavor(name, "on_request", models, name, kind="anthropic")
        for name, models in (
            (
                "deepseek",
                ("deepseek-v4-pro", "deepseek-v4-flash", "deepseek-chat", "deepseek-reasoner"),
            ),
            ("qwen", ("qwen3-max", "qwen3.5-plus", "qwen3-coder-plus", "qwen-plus")),
            ("zhipu", ("glm-5", "glm-4.7", "glm-4.6")),
            ("moonshot", ("kimi-k2.6", "kimi-k2.5", "kimi-k2.7-code")),
            ("minimax", ("MiniMax-M3", "MiniMax-M2.7", "MiniMax-M2")),
        )
    },
}
COUNT_TOKENS = frozenset({"anthropic"})
MODELS = frozenset({"anthropic"})
NEEDS_VERSION = frozenset({"anthropic"})
NO_MID_SYSTEM = frozenset({"minimax"})


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _error(fl: Flavor, status: int, message: str) -> Json:
    return (*error(fl, status, message), 0)


def _event(obj: dict[str, Any]) -> bytes:
    kind: str = obj["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"


def betas(headers: dict[bytes, bytes]) -> frozenset[str]:
    raw = headers.get(b"anthropic-beta", b"").decode("latin-1")
    return frozenset(b.strip() for b in raw.split(",") if b.strip())


# --- usage and the prompt cache ---------------------------------------------------------------


def _tool_tokens(tool: object) -> int:
    t = _obj(tool)
    name, description = t.get("name"), t.get("description")
    return (
        count_tokens(name if isinstance(name, str) else "")
        + count_tokens(description if isinstance(description, str) else "")
        + PER_MESSAGE_TOKENS
    )


def _segments(body: dict[str, Any]) -> list[tuple[int, Any, object]]:
    """The prompt in cache order (tools, system, messages): tokens, block, cache_control."""
    out: list[tuple[int, Any, object]] = []
    tool_list = body.get("tools")
    for tool in tool_list if isinstance(tool_list, list) else []:
        out.append((_tool_tokens(tool), tool, _obj(tool).get("cache_control")))
    system = reasoning.blocks(body.get("system"))
    for i, block in enumerate(system):
        extra = PER_MESSAGE_TOKENS if i == 0 else 0
        out.append(
            (count_tokens(content_text([block])) + extra, block, _obj(block).get("cache_control"))
        )
    for message in body["messages"]:
        content = reasoning.blocks(_obj(message).get("content"))
        if not content:
            out.append((PER_MESSAGE_TOKENS, message, None))
        for i, block in enumerate(content):
            extra = PER_MESSAGE_TOKENS if i == 0 else 0
            out.append(
                (
                    count_tokens(content_text([block])) + extra,
                    block,
                    _obj(block).get("cache_control"),
                )
            )
    auto = body.get("cache_control")
    if isinstance(auto, dict) and out:
        tokens, block, own = out[-1]
        out[-1] = (tokens, block, own or auto)
    return out


def input_tokens(body: dict[str, Any]) -> int:
    return sum(tokens for tokens, _, _ in _segments(body))


class PromptCache:
    """Prefix digests written by earlier requests, per flavor and account; bounded."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    def usage(self, fl: Flavor, account: str, body: dict[str, Any], output: int) -> dict[str, Any]:
        segments = _segments(body)
        total = sum(tokens for tokens, _, _ in segments)
        write_5m = write_1h = read = 0
        marks = [s for s in segments if isinstance(s[2], dict)]
        if fl.name == "deepseek":
            read = total // 2 if total >= 8 else 0  # automatic disk cache, cache_control ignored
        elif not marks:
            system = count_tokens(content_text(body.get("system")))
            read = system if system >= 8 else 0
            write_5m = 2 if read else 0
        else:
            running = hashlib.blake2b(
                b"\0".join([fl.name.encode(), account.encode()]), digest_size=16
            )
            done = 0
            points: list[tuple[int, bool, bytes]] = []  # tokens so far, 1h?, digest
            for tokens, block, mark in segments:
                running.update(orjson.dumps(reasoning.strip(block), option=orjson.OPT_SORT_KEYS))
                done += tokens
                if isinstance(mark, dict):
                    points.append((done, mark.get("ttl") == "1h", running.copy().digest()))
            hit = next(
                (k for k in range(len(points) - 1, -1, -1) if points[k][2] in self._seen), -1
            )
            read = points[hit][0] if hit >= 0 else 0
            previous = read
            for done_at, long_ttl, _ in points[hit + 1 :]:
                if long_ttl:
                    write_1h += done_at - previous
                else:
                    write_5m += done_at - previous
                previous = done_at
            for _, _, digest in points:
                self._seen[digest] = None
                self._seen.move_to_end(digest)
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)
        written = write_5m + write_1h
        return {
            "input_tokens": total - read - written,
            "cache_creation_input_tokens": written,
            "cache_read_input_tokens": read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": write_5m,
                "ephemeral_1h_input_tokens": write_1h,
            },
            "output_tokens": output,
        }


# --- request checks ---------------------------------------------------------------------------


def _model(fl: Flavor, model: str) -> str | None:
    """The model that will answer, or None when the provider refuses the name."""
    if fl.name != "deepseek" or model in fl.models:
        return model
    if model.startswith("claude-opus"):
        return "deepseek-v4-pro"
    if model.startswith("claude"):
        return "deepseek-v4-flash"
    return None


def _check_roles(fl: Flavor, messages: list[Any], beta: frozenset[str]) -> str | None:
    for i, message in enumerate(messages):
        role = _obj(message).get("role")
        if role in ("user", "assistant"):
            continue
        if role == "system":
            if fl.name in NO_MID_SYSTEM:
                return "invalid params, chat content has invalid message role: system"
            if fl.name != "anthropic" or MID_CONVERSATION_SYSTEM in beta:
                continue
            hint = (
                ' The Messages API accepts a top-level `system` parameter, not "system" as '
                "an input message role."
            )
            return f"messages.{i}.role: Input should be 'user' or 'assistant'.{hint}"
        return f"messages.{i}.role: Input should be 'user' or 'assistant'."
    return None


def _check_anthropic(body: dict[str, Any], cap: int) -> str | None:
    """Anthropic's own refusals of thinking and caching settings."""
    thinking = _obj(body.get("thinking"))
    if thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1024:
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        if budget >= cap:
            return (
                "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
                f"documentation at {reasoning.THINKING_DOCS}#max-tokens-and-context-window-size"
            )
        if _obj(body.get("tool_choice")).get("type") in ("any", "tool"):
            return "Thinking may not be enabled when tool_choice forces tool use."
    marks = sum(1 for _, _, mark in _segments(body) if isinstance(mark, dict))
    if marks > MAX_BREAKPOINTS:
        return (
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {marks}."
        )
    return None


def _validate(fl: Flavor, body: dict[str, Any], beta: frozenset[str]) -> str | None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return "model: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    return _check_roles(fl, messages, beta)


# --- replies ----------------------------------------------------------------------------------


class Thinking:
    """The signed thinking (and redacted blocks) that open a reply."""

    __slots__ = ("redacted", "signature", "text")

    def __init__(self, text: str, signature: str, redacted: list[str]) -> None:
        self.text = text
        self.signature = signature
        self.redacted = redacted

    def blocks(self) -> list[dict[str, object]]:
        first: dict[str, object] = {
            "type": "thinking",
            "thinking": self.text,
            "signature": self.signature,
        }
        hidden: list[dict[str, object]] = [
            {"type": "redacted_thinking", "data": d} for d in self.redacted
        ]
        return [first, *hidden]


def _answer_block(reply: Reply) -> dict[str, object]:
    if reply.tool is not None:
        return {
            "type": "tool_use",
            "id": reply.tool.id,
            "name": reply.tool.name,
            "input": orjson.loads(reply.tool.arguments),
        }
    return {"type": "text", "text": reply.text}


def body(reply: Reply, thinking: Thinking | None, model: str, usage: dict[str, Any]) -> bytes:
    content = [*(thinking.blocks() if thinking else ()), _answer_block(reply)]
    return orjson.dumps(
        {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": STOP_REASONS[reply.finish_reason],
            "stop_sequence": None,
            "usage": usage,
        }
    )


Delta = tuple[dict[str, object], bool]


def _block(index: int, start: dict[str, object], deltas: list[Delta]) -> Iterator[Event]:
    yield _event({"type": "content_block_start", "index": index, "content_block": start}), False
    for delta, token in deltas:
        yield _event({"type": "content_block_delta", "index": index, "delta": delta}), token
    yield _event({"type": "content_block_stop", "index": index}), False


def stream(
    reply: Reply, thinking: Thinking | None, model: str, usage: dict[str, Any]
) -> Iterator[Event]:
    """The SSE events of a streamed reply; token events are marked for tps pacing."""
    message: dict[str, object] = {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 1},
    }
    yield _event({"type": "message_start", "message": message}), False
    yield PING, False
    index = 0
    if thinking is not None:
        deltas: list[Delta] = [
            ({"type": "thinking_delta", "thinking": p}, True) for p in reply.reasoning_pieces
        ]
        deltas.append(({"type": "signature_delta", "signature": thinking.signature}, False))
        yield from _block(index, {"type": "thinking", "thinking": "", "signature": ""}, deltas)
        index += 1
        for data in thinking.redacted:
            yield from _block(index, {"type": "redacted_thinking", "data": data}, [])
            index += 1
    if reply.tool is not None:
        start: dict[str, object] = {
            "type": "tool_use",
            "id": reply.tool.id,
            "name": reply.tool.name,
            "input": {},
        }
        parts = ["", *reply.tool.fragments()]
        yield from _block(
            index, start, [({"type": "input_json_delta", "partial_json": p}, True) for p in parts]
        )
    else:
        yield from _block(
            index,
            {"type": "text", "text": ""},
            [({"type": "text_delta", "text": piece}, True) for piece in reply.pieces],
        )
    final = {"stop_reason": STOP_REASONS[reply.finish_reason], "stop_sequence": None}
    yield _event({"type": "message_delta", "delta": final, "usage": usage}), False
    yield STOP, False


# --- endpoints --------------------------------------------------------------------------------


def dispatch(
    fl: Flavor,
    endpoint: str,
    method: str,
    path: str,
    headers: dict[bytes, bytes],
    key: str | None,
    payload: Any,
    faults: Faults,
    cache: PromptCache,
) -> Result:
    """One request to a Messages base: route checks, auth, validation, the reply."""
    is_models = endpoint == "models" or endpoint.startswith("models/")
    known = (
        endpoint == "messages"
        or (endpoint == "messages/count_tokens" and fl.name in COUNT_TOKENS)
        or (is_models and fl.name in MODELS)
    )
    if not known:
        return _error(fl, 404, f"Invalid URL ({method} {path})")
    if method != ("GET" if is_models else "POST"):
        return _error(fl, 405, f"Invalid method for URL ({method} {path})")
    if key is None or key.startswith("bad"):
        return (*auth_failure(fl, key), 0)
    if fl.name in NEEDS_VERSION and b"anthropic-version" not in headers:
        return _error(fl, 400, "anthropic-version: header is required")
    if is_models:
        if endpoint == "models":
            return 200, MODEL_LISTS[fl.name], 0
        detail = model_detail(fl, endpoint[len("models/") :])
        if detail is None:
            return _error(fl, 404, f"model: {endpoint[len('models/') :]}")
        return 200, detail, 0
    if not isinstance(payload, dict):
        return _error(fl, 400, "The request body is not valid JSON.")
    beta = betas(headers)
    problem = _validate(fl, payload, beta)
    if problem is not None:
        return _error(fl, 400, problem)
    if endpoint == "messages/count_tokens":
        return 200, orjson.dumps({"input_tokens": input_tokens(payload)}), 0
    return create(fl, payload, key, beta, faults, cache)


def create(
    fl: Flavor,
    payload: dict[str, Any],
    key: str,
    beta: frozenset[str],
    faults: Faults,
    cache: PromptCache,
) -> Result:
    value = payload.get("max_tokens")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        message = (
            "max_tokens: Field required"
            if value is None
            else ("max_tokens: Input should be a valid positive integer")
        )
        return _error(fl, 400, message)
    cap = int(value)
    model = _model(fl, payload["model"])
    if model is None:
        return _error(fl, 400, "Model Not Exist")
    if fl.name == "anthropic":
        problem = _check_anthropic(payload, cap)
        if problem is not None:
            return _error(fl, 400, problem)
    messages: list[Any] = payload["messages"]
    thinks = reasoning.messages_thinking(fl.name, model, payload)
    if faults.strict_reasoning and thinks:
        refusal = reasoning.check_messages(fl.name, payload, key, beta)
        if refusal is not None:
            return _error(fl, 400, refusal)
    prompt = last_user_text(messages)
    picked = tools.pick(
        payload.get("tools"), payload.get("tool_choice"), prompt, messages, dialect="messages"
    )
    thought = ""
    if thinks:
        after = tools.after_tool_result(messages)
        thought = reasoning.thinking_text(prompt, picked[0] if picked else None, after)
    if picked is not None:
        call = ToolCall(new_id("toolu_"), picked[0], tools.arguments(picked[1], prompt))
        reply = Reply((), False, call, reasoning=thought)
    else:
        length, capped = reply_length(cap, faults.chunks, cap_is_target=False)
        reply = Reply(reply_words(prompt, length), capped, reasoning=thought)
    thinking = None
    if thinks:
        prefix = reasoning.Prefix(payload.get("system"), payload.get("tools"), messages)
        count = 1 if faults.redacted else 0
        signature = reasoning.sign(fl.name, key, thought, prefix, count)
        hidden = [reasoning.redacted_data(fl.name, key, prefix, 1 + k) for k in range(count)]
        thinking = Thinking(thought, signature, hidden)
    usage = cache.usage(fl, key, payload, reply.completion_tokens)
    if payload.get("stream") is True:
        return stream(reply, thinking, model, usage)
    return 200, body(reply, thinking, model, usage), reply.completion_tokens
