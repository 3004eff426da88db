"""Request fixes for OpenAI-compatible providers that are not quite compatible.

One :class:`Quirks` entry per catalog provider id, each fix from the provider's
API page (docs/providers.md lists them) or, where the code says so, from traffic;
providers without an entry get the body as the client sent it. Adding a
provider that needs fixes means adding one entry here, and adding a new kind
of fix means one field plus a few lines in :func:`apply_quirks`.

Fixes never mutate the client's body: the hot path may send the same body to
several targets in turn, so anything nested is copied before it is changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_NO_FIELDS: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ModelRule:
    """Fields to drop for the models whose lower-cased name starts with a prefix."""

    prefixes: tuple[str, ...]
    drop: frozenset[str]


@dataclass(frozen=True, slots=True)
class Quirks:
    # Send stream_options.include_usage on streams (nearly everyone accepts it;
    # without it OpenAI-style providers send no usage at all).
    stream_usage: bool = True
    # Top-level fields the provider rejects.
    drop: frozenset[str] = _NO_FIELDS
    # (field, low, high): numeric sampling parameters clamped into range.
    clamp: tuple[tuple[str, float, float], ...] = ()
    # Only one stop string is accepted, as a one-item list (Zhipu's documented
    # format): a longer list keeps its first item, a bare string is wrapped.
    single_stop: bool = False
    # Accepted tool_choice forms among "none", "auto", "required" and
    # "function" (the object form); others are dropped. None: all accepted.
    tool_choice: frozenset[str] | None = None
    # Fields removed from assistant messages before they are sent back.
    strip_assistant_fields: frozenset[str] = _NO_FIELDS
    # Assistant "content": null (tool-call turns) is rejected: send "".
    assistant_null_content_to_empty: bool = False
    # tools[].function.strict = null is rejected: remove the key.
    drop_null_tool_strict: bool = False
    # More than one system message is rejected: join them into the first one.
    merge_system_messages: bool = False
    lowercase_model: bool = False
    model_rules: tuple[ModelRule, ...] = ()


NO_QUIRKS = Quirks()

QUIRKS: dict[str, Quirks] = {
    "zhipu": Quirks(
        drop=frozenset({"n"}),
        clamp=(("temperature", 0.0, 1.0), ("top_p", 0.01, 1.0)),
        single_stop=True,
    ),
    "moonshot": Quirks(
        drop=frozenset({"functions", "function_call"}),
        clamp=(("temperature", 0.0, 1.0),),
        # "required" is unsupported. Dropping it lets the model decide instead
        # of failing the request (LiteLLM appends a prompt asking for a tool
        # call instead; that rewrites the conversation behind the client's back).
        tool_choice=frozenset({"none", "auto", "function"}),
        model_rules=(
            # kimi-k2.5/k2.6 refuse any change to their sampling parameters.
            ModelRule(("kimi-k2.5", "kimi-k2.6"), frozenset({"temperature", "top_p", "n"})),
        ),
    ),
    # The temperature and top_p ranges, n = 1 and the tool_choice forms are MiniMax's
    # documented limits (https://platform.minimax.io/docs/api-reference/text-openai-api). The
    # 400s on stream_options, parallel_tool_calls, strict: null, an assistant content: null
    # and several system messages are not in its documentation: other OpenAI clients
    # reported them from traffic.
    "minimax": Quirks(
        stream_usage=False,  # 400 on stream_options; the final chunk carries usage anyway
        drop=frozenset({"n", "parallel_tool_calls"}),
        clamp=(("temperature", 0.01, 1.0), ("top_p", 0.01, 1.0)),  # (0, 1]: 0 becomes 0.01
        tool_choice=frozenset({"none", "auto"}),
        assistant_null_content_to_empty=True,
        drop_null_tool_strict=True,
        merge_system_messages=True,
    ),
    "deepseek": Quirks(
        # V4 in thinking mode requires reasoning_content passed back on tool-call turns
        # (https://api-docs.deepseek.com/guides/thinking_mode); the V3-era rule that it be
        # stripped is obsolete, so it is sent as the client (or Baton's memory) gave it.
        model_rules=(ModelRule(("deepseek-reasoner",), frozenset({"logprobs", "top_logprobs"})),),
    ),
    # Gemini refuses fields it does not know; prompt_cache_key comes from Responses clients
    # through the chat pivot.
    "gemini": Quirks(drop=frozenset({"thinking", "web_search_options", "prompt_cache_key"})),
    # OpenAI's and Azure's chat reject the thinking switch other providers share (it arrives
    # from Messages and Responses clients through the chat pivot).
    "openai": Quirks(drop=frozenset({"thinking"})),
    "azure": Quirks(drop=frozenset({"thinking"})),
    "qianfan": Quirks(lowercase_model=True),
}


def quirks_for(provider: str) -> Quirks:
    return QUIRKS.get(provider, NO_QUIRKS)


def upstream_model(quirks: Quirks, model: str) -> str:
    return model.lower() if quirks.lowercase_model else model


def apply_quirks(payload: dict[str, Any], quirks: Quirks, model: str) -> None:
    """Fix ``payload`` in place. It must be a shallow copy owned by the caller."""
    if quirks is NO_QUIRKS:
        return
    for name in quirks.drop:
        payload.pop(name, None)
    lowered = model.lower()
    for rule in quirks.model_rules:
        if lowered.startswith(rule.prefixes):
            for name in rule.drop:
                payload.pop(name, None)
    for name, low, high in quirks.clamp:
        value = payload.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            payload[name] = min(max(value, low), high)
    if quirks.single_stop:
        stop = payload.get("stop")
        if isinstance(stop, str):
            payload["stop"] = [stop]
        elif isinstance(stop, list):
            if stop:
                payload["stop"] = stop[:1]
            else:
                del payload["stop"]
    allowed = quirks.tool_choice
    choice = payload.get("tool_choice")
    if allowed is not None and choice is not None and _tool_choice_form(choice) not in allowed:
        del payload["tool_choice"]
    if quirks.drop_null_tool_strict:
        tools = payload.get("tools")
        if isinstance(tools, list):
            payload["tools"] = [_without_null_strict(tool) for tool in tools]
    messages = payload.get("messages")
    if isinstance(messages, list) and (
        quirks.strip_assistant_fields
        or quirks.assistant_null_content_to_empty
        or quirks.merge_system_messages
    ):
        payload["messages"] = _fixed_messages(messages, quirks)


def _tool_choice_form(value: Any) -> str:
    return value if isinstance(value, str) else "function"


def _without_null_strict(tool: Any) -> Any:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or "strict" not in function or function["strict"] is not None:
        return tool
    fixed = {k: v for k, v in function.items() if k != "strict"}
    return {**tool, "function": fixed}


def _fixed_messages(messages: list[Any], quirks: Quirks) -> list[Any]:
    fixed: list[Any] = []
    system_at: int | None = None
    for message in messages:
        if not isinstance(message, dict):
            fixed.append(message)
            continue
        role = message.get("role")
        if role == "assistant":
            if quirks.strip_assistant_fields and not quirks.strip_assistant_fields.isdisjoint(
                message
            ):
                message = {
                    k: v for k, v in message.items() if k not in quirks.strip_assistant_fields
                }
            if quirks.assistant_null_content_to_empty and message.get("content", "") is None:
                message = {**message, "content": ""}
        elif role == "system" and quirks.merge_system_messages:
            if system_at is not None:
                first = fixed[system_at]
                joined = _text_of(first.get("content")) + "\n\n" + _text_of(message.get("content"))
                fixed[system_at] = {**first, "content": joined}
                continue
            system_at = len(fixed)
        fixed.append(message)
    return fixed


def _text_of(content: Any) -> str:
    """A system message's text, whether a string or text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


# --- native Messages endpoints ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessagesQuirks:
    """What a provider's Anthropic-compatible endpoint does differently from Anthropic's."""

    # Answers POST /v1/messages/count_tokens; otherwise Baton counts itself.
    count_tokens: bool = False
    # Verifies thinking signatures (and binds them to the account and conversation): reasoning
    # produced anywhere else must not be sent to it.
    verifies_signatures: bool = False
    # anthropic-beta values to forward: None forwards them all, unchanged.
    betas: frozenset[str] | None = None
    # Authenticate with "Authorization: Bearer" rather than Anthropic's x-api-key.
    bearer: bool = False


NO_MESSAGES_QUIRKS = MessagesQuirks()

MESSAGES_QUIRKS: dict[str, MessagesQuirks] = {
    "anthropic": MessagesQuirks(count_tokens=True, verifies_signatures=True),
    # DeepSeek ignores anthropic-beta on /anthropic (https://api-docs.deepseek.com/guides/anthropic_api):
    # nothing is forwarded that it would only drop.
    "deepseek": MessagesQuirks(betas=frozenset()),
}


def messages_quirks_for(provider: str) -> MessagesQuirks:
    return MESSAGES_QUIRKS.get(provider, NO_MESSAGES_QUIRKS)


# --- native Responses endpoints ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResponsesQuirks:
    """What a provider's own Responses endpoint (``POST {base}/responses``) does differently
    from OpenAI's. Providers without an entry (a custom base URL that declares Responses) get
    the default: OpenAI's hosted tools dropped, state as their replies say."""

    # Hosted tool types it runs (web_search, file_search, tool_search...): None keeps every
    # tool; any other tool type but function, custom and namespace is left out of the
    # request, and a tool_choice forcing one is refused.
    hosted_tools: frozenset[str] | None = _NO_FIELDS
    # Keeps no responses whatever ``store`` says: a previous_response_id can never name one.
    stateless: bool = False
    # A reasoning item must carry its own encrypted_content or name an item it stored
    # (OpenAI's "Item with id 'rs_…' not found"): reasoning made anywhere else is left out
    # whole rather than sent without its encrypted_content.
    opaque_reasoning: bool = False


DEFAULT_RESPONSES_QUIRKS = ResponsesQuirks()

RESPONSES_QUIRKS: dict[str, ResponsesQuirks] = {
    # https://developers.openai.com/api/docs/guides/tools and /guides/reasoning: hosted tools
    # run there, and reasoning items are encrypted per organization.
    "openai": ResponsesQuirks(hosted_tools=None, opaque_reasoning=True),
    "azure": ResponsesQuirks(hosted_tools=None, opaque_reasoning=True),
    # https://api-docs.deepseek.com/guides/responses_api: stateless (store is ignored).
    "deepseek": ResponsesQuirks(stateless=True),
    # https://platform.minimaxi.com/docs/api-reference/responses-create: store: false only.
    "minimax": ResponsesQuirks(stateless=True),
}


def responses_quirks_for(provider: str) -> ResponsesQuirks:
    return RESPONSES_QUIRKS.get(provider, DEFAULT_RESPONSES_QUIRKS)
