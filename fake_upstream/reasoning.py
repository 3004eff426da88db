"""Reasoning as the providers treat it: who thinks, signed thinking, and the strict echo rules.

Who thinks. A Messages request thinks when it sets ``thinking: {type: enabled|adaptive}``;
a chat request when it sets ``thinking: {type: enabled}`` (Qwen: ``enable_thinking: true``).
Some models think unless told ``thinking: {type: disabled}``: DeepSeek V4
(``deepseek-v4-*``, ``deepseek-reasoner``, and the ``claude*`` names DeepSeek's
``/anthropic`` maps to V4), GLM 4.7 and 5.x, Kimi K2.5 and later, MiniMax M2/M3 (M2 cannot
turn it off). Reasoning text is deterministic (``thinking_text``) and normalised to single
spaces, so a client that reassembles a stream gets it back byte for byte.

Signed thinking (Messages). A thinking block's ``signature`` is the fake's own MAC over the
thinking text, the account (the API key presented), the flavor, the number of
``redacted_thinking`` blocks that follow it and keyed digests of the conversation prefix the
block was produced after: ``system``, ``tools`` and the earlier messages, compared with
``cache_control`` and ``null`` fields removed and string content read as one text block.
So, like Anthropic's (https://platform.claude.com/docs/en/build-with-claude/extended-thinking
and .../preserved-thinking), a block is bound to its account and its conversation: a
different key, an edited text or an edited prefix no longer verifies. ``redacted_thinking.data`` is
bound the same way.

Strict mode (the ``strict_reasoning`` fault directive). Only there are echo rules enforced,
so a test points one credential at a strict base URL:

- Anthropic and Qwen Messages: every thinking block passed back must verify (else
  ``messages.I.content.J: Invalid `signature` in `thinking` block``, or the prefix-binding
  text naming what changed, unless ``thinking.block_binding.prefix_mismatch_behavior`` is
  ``drop_block`` with beta ``thinking-binding-controls-2026-08-01``); the latest assistant
  turn, when it holds ``tool_use``, must start with thinking or ``redacted_thinking``
  ("Expected `thinking` or `redacted_thinking`, but found ..."), and its signed number of
  ``redacted_thinking`` blocks must follow intact ("... cannot be modified").
- DeepSeek, Moonshot, Zhipu, MiniMax Messages: every assistant turn with ``tool_use`` must
  start with a thinking block that verifies, else the provider's text (DeepSeek: "The
  `content[].thinking` in the thinking mode must be passed back to the API.", farion1231/
  cc-switch #3263; Moonshot: its chat text; Zhipu, MiniMax: the fake's own wording in their
  style, as neither documents one).
- Chat (DeepSeek, Moonshot, Zhipu, MiniMax): every assistant message with ``tool_calls``
  must carry its reasoning, equal to what the fake produced for that tool call when it
  remembers it (a bounded map ``(account, tool_call_id) -> reasoning``): DeepSeek 400 "The
  `reasoning_content` in the thinking mode must be passed back to the API."
  (https://api-docs.deepseek.com/guides/thinking_mode); Moonshot "thinking is enabled but
  reasoning_content is missing in assistant tool call message at index N"
  (https://platform.moonshot.ai/docs/guide/use-kimi-k2-thinking-model); Zhipu and MiniMax
  (``<think>`` kept whole in ``content``, or ``reasoning_details``) in the fake's words.

All checks apply only when the request itself has thinking on.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections import OrderedDict
from enum import Enum
from typing import Any

import orjson

from fake_upstream.tokens import split_tokens

SECRET = b"baton-fake-upstream-thinking-v1"  # fixed, so signatures survive a restart
_VERSION = 1
_DIGEST = 16
_PAYLOAD = 2 + 3 * _DIGEST
_MAC = 32
_REDACTED_MAGIC = b"RT"
CHAT_THINKERS = frozenset({"deepseek", "moonshot", "zhipu", "minimax"})
MEMORY_SIZE = 20_000

# Model-name prefixes that think unless the request disables it.
_DEFAULT_THINKERS: dict[str, tuple[str, ...]] = {
    "deepseek": ("deepseek-v4", "deepseek-reasoner"),
    "zhipu": ("glm-4.7", "glm-5"),
    "moonshot": ("kimi-k2.5", "kimi-k2.6", "kimi-k2.7", "kimi-k2-thinking", "kimi-k3"),
    "minimax": ("MiniMax-M",),
}
# MiniMax M2.x always thinks; M3 accepts "disabled".
_UNDISABLEABLE: dict[str, tuple[str, ...]] = {"minimax": ("MiniMax-M2",)}

THINKING_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
BINDING_BETA = "thinking-binding-controls-2026-08-01"
DEEPSEEK_CHAT_TEXT = "The `reasoning_content` in the thinking mode must be passed back to the API."
DEEPSEEK_MESSAGES_TEXT = (
    "The `content[].thinking` in the thinking mode must be passed back to the API."
)


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# --- who thinks -------------------------------------------------------------------------------


def thinks_by_default(flavor: str, model: str) -> bool:
    prefixes = _DEFAULT_THINKERS.get(flavor)
    return prefixes is not None and model.startswith(prefixes)


def messages_thinking(flavor: str, model: str, body: dict[str, Any]) -> bool:
    kind = _obj(body.get("thinking")).get("type")
    if kind == "disabled":
        return False
    if kind in ("enabled", "adaptive"):
        return True
    return thinks_by_default(flavor, model)


def chat_thinking(flavor: str, model: str, body: dict[str, Any]) -> bool:
    if flavor == "qwen":
        return body.get("enable_thinking") is True
    if flavor not in CHAT_THINKERS:
        return False
    kind = _obj(body.get("thinking")).get("type")
    if kind == "disabled":
        stubborn = _UNDISABLEABLE.get(flavor)
        return stubborn is not None and model.startswith(stubborn)
    if kind in ("enabled", "adaptive", "auto"):
        return True
    return thinks_by_default(flavor, model)


def thinking_text(prompt: str, tool: str | None, after_tool: bool) -> str:
    """What the fake "thought": deterministic, echoing the prompt, single-spaced."""
    quoted = " ".join(split_tokens(prompt)[:8]) or "nothing"
    if after_tool:
        text = f"The tool returned {quoted} so I can answer now."
    elif tool is not None:
        text = f"The user asks about {quoted} so I should call {tool} first."
    else:
        text = f"The user wrote {quoted} and a short answer will do."
    return " ".join(split_tokens(text))


# --- signatures -------------------------------------------------------------------------------


def strip(value: Any) -> Any:
    """``value`` without ``cache_control`` anywhere (caching never changes the prefix) and
    without ``null`` fields (a typed server reads ``"citations": null`` as absent)."""
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k != "cache_control" and v is not None}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


def blocks(content: object) -> list[Any]:
    """Message content as a block list: a string is one text block."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return content if isinstance(content, list) else []


def _message(message: object) -> Any:
    m = _obj(message)
    return {**m, "content": blocks(m.get("content"))} if m else message


def _digest(value: Any) -> bytes:
    raw = orjson.dumps(strip(value), option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(raw, key=SECRET, digest_size=_DIGEST).digest()


class Prefix:
    """Keyed digests of the parts of a conversation a thinking block is bound to."""

    __slots__ = ("messages", "system", "tools")

    def __init__(self, system: object, tools: object, earlier: list[Any]) -> None:
        self.system = _digest(blocks(system))
        self.tools = _digest(tools if isinstance(tools, list) else [])
        self.messages = _digest([_message(m) for m in earlier])

    def all(self) -> bytes:
        return self.system + self.tools + self.messages


def _mac(flavor: str, account: str, *parts: bytes) -> bytes:
    msg = b"\0".join([flavor.encode(), account.encode(), *parts])
    return hmac.new(SECRET, msg, hashlib.sha256).digest()


def sign(flavor: str, account: str, text: str, prefix: Prefix, redacted: int = 0) -> str:
    payload = bytes([_VERSION, redacted]) + prefix.all()
    mac = _mac(flavor, account, text.encode(), payload)
    return base64.b64encode(payload + mac).decode()


class Verdict(Enum):
    OK = "ok"
    FORGED = "forged"  # not ours, edited text, another account or another provider
    SYSTEM = "system"
    TOOLS = "tools"
    MESSAGES = "messages"


def verify(
    flavor: str, account: str, text: object, signature: object, prefix: Prefix
) -> tuple[Verdict, int]:
    """Whether a thinking block verifies here, and how many redacted blocks it vouches for."""
    if not isinstance(text, str) or not isinstance(signature, str):
        return Verdict.FORGED, 0
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return Verdict.FORGED, 0
    if len(raw) != _PAYLOAD + _MAC or raw[0] != _VERSION:
        return Verdict.FORGED, 0
    payload, mac = raw[:_PAYLOAD], raw[_PAYLOAD:]
    if not hmac.compare_digest(mac, _mac(flavor, account, text.encode(), payload)):
        return Verdict.FORGED, 0
    system, tools, earlier = (payload[2 + i * _DIGEST : 2 + (i + 1) * _DIGEST] for i in range(3))
    if system != prefix.system:
        return Verdict.SYSTEM, payload[1]
    if tools != prefix.tools:
        return Verdict.TOOLS, payload[1]
    if earlier != prefix.messages:
        return Verdict.MESSAGES, payload[1]
    return Verdict.OK, payload[1]


def redacted_data(flavor: str, account: str, prefix: Prefix, position: int) -> str:
    """An opaque ``redacted_thinking.data`` bound like a signature, and to its position in
    the reply's content (so a block that moved, or lost the thinking before it, is caught)."""
    body = _REDACTED_MAGIC + bytes([position % 256]) + prefix.all()
    return base64.b64encode(body + _mac(flavor, account, body)).decode()


def verify_redacted(flavor: str, account: str, data: object, prefix: Prefix, position: int) -> bool:
    if not isinstance(data, str):
        return False
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return False
    body, mac = raw[:-_MAC], raw[-_MAC:]
    return (
        body.startswith(_REDACTED_MAGIC)
        and body[2:3] == bytes([position % 256])
        and body[3:] == prefix.all()
        and hmac.compare_digest(mac, _mac(flavor, account, body))
    )


# --- strict mode on Messages endpoints -------------------------------------------------------

_PREFIX_PART = {
    Verdict.SYSTEM: "The `system` prompt differs from the one this block was created with.",
    Verdict.TOOLS: "The `tools` differ from the ones this block was created with.",
    Verdict.MESSAGES: "The earlier `messages` differ from the ones this block was created with.",
}


def _anthropic_signature_error(i: int, j: int, verdict: Verdict) -> str:
    head = f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
    if verdict is Verdict.FORGED:
        return head
    return (
        f"{head}. The block is bound to a different conversation. Remove the block, or set "
        '`thinking.block_binding.prefix_mismatch_behavior` to "drop_block". That setting '
        f"requires the `{BINDING_BETA}` value in the `anthropic-beta` header. "
        + _PREFIX_PART[verdict]
    )


def _modified(i: int, j: int) -> str:
    return (
        f"messages.{i}.content.{j}: `thinking` or `redacted_thinking` blocks in the latest "
        "assistant message cannot be modified. These blocks must remain as they were in the "
        "original response."
    )


def _expected(i: int, found: str) -> str:
    return (
        f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
        f"`{found}`. When `thinking` is enabled, a final `assistant` message must start with a "
        "thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). "
        "We recommend you include thinking blocks from previous turns. To avoid this "
        f"requirement, disable `thinking`. Please consult our documentation at {THINKING_DOCS}"
    )


def messages_refusal(flavor: str, i: int) -> str:
    """The text a non-Anthropic provider uses for a tool turn that lost its thinking."""
    if flavor == "deepseek":
        return DEEPSEEK_MESSAGES_TEXT
    if flavor == "moonshot":
        return (
            "thinking is enabled but reasoning_content is missing in assistant tool call "
            f"message at index {i}"
        )
    if flavor == "zhipu":
        return (
            f"messages[{i}]: the thinking of an assistant message with tool_use must be "
            "passed back unchanged when thinking is enabled"
        )
    return (
        f"invalid params, the thinking of the assistant tool call message at index {i} was "
        "not passed back whole"
    )


def check_messages(
    flavor: str, body: dict[str, Any], account: str, betas: frozenset[str]
) -> str | None:
    """Strict mode for a Messages request with thinking on: the refusal text, or None."""
    messages: list[Any] = body["messages"]
    system, tools = body.get("system"), body.get("tools")
    anthropic_rules = flavor in ("anthropic", "qwen")
    binding = _obj(_obj(body.get("thinking")).get("block_binding"))
    drop_mismatch = (
        binding.get("prefix_mismatch_behavior") == "drop_block" and BINDING_BETA in betas
    )
    assistants = [i for i, m in enumerate(messages) if _obj(m).get("role") == "assistant"]
    latest = assistants[-1] if assistants else -1
    for i in assistants:
        content = blocks(_obj(messages[i]).get("content"))
        kinds = [_obj(b).get("type") for b in content]
        has_tool = "tool_use" in kinds
        if not anthropic_rules and not has_tool:
            continue  # the others read reasoning only on tool-call turns
        prefix = Prefix(system, tools, messages[:i])
        if not anthropic_rules:
            first = _obj(content[0]) if content else {}
            verdict = Verdict.FORGED
            if first.get("type") == "thinking":
                verdict, _ = verify(
                    flavor, account, first.get("thinking"), first.get("signature"), prefix
                )
            if verdict is not Verdict.OK:
                return messages_refusal(flavor, i)
            continue
        for j, block in enumerate(content):
            b = _obj(block)
            if b.get("type") == "redacted_thinking":
                good = verify_redacted(flavor, account, b.get("data"), prefix, j)
                if i == latest and not good:
                    return _modified(i, j)
                continue
            if b.get("type") != "thinking":
                continue
            verdict, redacted = verify(
                flavor, account, b.get("thinking"), b.get("signature"), prefix
            )
            if verdict in _PREFIX_PART and drop_mismatch:
                continue
            if verdict is not Verdict.OK:
                return _anthropic_signature_error(i, j, verdict)
            if i == latest:
                run = 0  # redacted blocks that follow, which must be the ones it vouches for
                while j + 1 + run < len(kinds) and kinds[j + 1 + run] == "redacted_thinking":
                    run += 1
                if run != redacted:
                    return _modified(i, j + 1 + min(run, redacted))
        if i == latest and has_tool and kinds and kinds[0] not in ("thinking", "redacted_thinking"):
            return _expected(i, str(kinds[0]))
    return None


# --- strict mode on chat endpoints ------------------------------------------------------------


class ReasoningMemory:
    """What the fake reasoned for each tool call it made, per account; bounded, oldest out."""

    def __init__(self, size: int = MEMORY_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], str] = OrderedDict()

    def remember(self, account: str, call_id: str, reasoning: str) -> None:
        self._items[(account, call_id)] = reasoning
        if len(self._items) > self.size:
            self._items.popitem(last=False)

    def recall(self, account: str, call_id: object) -> str | None:
        if not isinstance(call_id, str):
            return None
        return self._items.get((account, call_id))


_THINK_RE = re.compile(r"\A\s*<think>\n?(.*?)\n?</think>", re.DOTALL)


def passed_back(flavor: str, message: dict[str, Any]) -> str | None:
    """The reasoning an assistant message carries back, in the flavor's own field."""
    if flavor == "minimax":
        details = message.get("reasoning_details")
        if isinstance(details, list) and details:
            texts = [_obj(d).get("text") for d in details]
            return "".join(t for t in texts if isinstance(t, str)) or None
        content = message.get("content")
        found = _THINK_RE.match(content) if isinstance(content, str) else None
        return found.group(1) if found else None
    value = message.get("reasoning_content")
    return value if isinstance(value, str) else None


def chat_refusal(flavor: str, i: int) -> tuple[str, str | None]:
    """The provider's text (and error code, where it sets one) for message ``i``."""
    if flavor == "deepseek":
        return DEEPSEEK_CHAT_TEXT, "invalid_request_error"
    if flavor == "moonshot":
        return (
            "thinking is enabled but reasoning_content is missing in assistant tool call "
            f"message at index {i}",
            None,
        )
    if flavor == "zhipu":
        return (
            f"messages[{i}]: reasoning_content of an assistant message with tool_calls must be "
            "passed back unchanged when thinking is enabled",
            None,
        )
    return (
        f"invalid params, the reasoning of the assistant tool call message at index {i} was "
        "not passed back whole (<think> in content or reasoning_details)",
        None,
    )


def check_chat(
    flavor: str, messages: list[Any], account: str, memory: ReasoningMemory
) -> tuple[str, str | None] | None:
    """Strict mode for a chat request with thinking on: the refusal, or None."""
    if flavor not in CHAT_THINKERS:
        return None
    for i, raw in enumerate(messages):
        message = _obj(raw)
        calls = message.get("tool_calls")
        if message.get("role") != "assistant" or not isinstance(calls, list) or not calls:
            continue
        got = passed_back(flavor, message)
        expected = next(
            (
                r
                for r in (memory.recall(account, _obj(c).get("id")) for c in calls)
                if r is not None
            ),
            None,
        )
        if not got or (expected is not None and got != expected):
            return chat_refusal(flavor, i)
    return None
