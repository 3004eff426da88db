"""The OpenAI Responses API (``POST {base}/responses``) as each provider that serves it natively.

Codex CLI speaks only this dialect, so the fake reproduces what a relay must get right: the full
stream event sequence, reasoning items whose ``encrypted_content`` is bound to the account that
received it, stored responses for ``previous_response_id`` on the stateful providers, and the
exact refusals of a strict upstream. Pure like flavors.py: a parsed request in, bytes or SSE
events out; app.py does the routing, timing and faults.

Routes (each may be prefixed with ``/_f/{directives}``, see faults.py)::

    POST /v1/responses  /openai/v1/responses    openai    (api.openai.com/v1/responses)
    POST /azure/openai/v1/responses             azure     (key in ``api-key`` or Bearer)
    POST /qwen/v1/responses                     qwen      (DashScope …/compatible-mode/v1/responses)
    POST /ark/v1/responses                      ark       (Volcengine Ark …/api/v3/responses)
    POST /deepseek/v1/responses                 deepseek  (api.deepseek.com/responses)
    POST /minimax/v1/responses                  minimax   (api.minimaxi.com/v1/responses)

Moonshot's Responses endpoint is only reported by third parties with no documented URL, and
Zhipu has none, so ``/moonshot/v1/responses`` and ``/zhipu/v1/responses`` are 404 like every
other flavor's: those are the "translated" targets.

Per flavor (the choices where a provider documents nothing are marked *fake*):

========= ========= ====== ============== ============ ============ =========================
flavor    state     store  reasoning      hosted tools unknown body errors
========= ========= ====== ============== ============ ============ =========================
openai    stateful  true   summary on ask accepted     accepted     OpenAI's
azure     stateful  true   summary on ask accepted     accepted     Azure's (code, message)
qwen      stateful  true   reasoning_text 400 *fake*   accepted     OpenAI's + request_id
ark       stateful  true   reasoning_text 400 *fake*   accepted     Ark's (code, type, param)
deepseek  stateless false  reasoning_text 400 *fake*   accepted     OpenAI's
minimax   stateless false  reasoning_text 400 *fake*   400 *fake*   OpenAI's, not the HTTP 200
                                                                    of its chat endpoint
========= ========= ====== ============== ============ ============ =========================

* **State.** Stateful flavors keep each ``store``-d response (default ``store: true``) in memory,
  per account (the presented API key), at most 256 responses and 4096 items per account, so
  ``previous_response_id`` continues a conversation (its ``instructions`` are not inherited) and
  ``item_reference`` resolves. An unknown, unstored or other account's id, and any id on a
  stateless flavor, is 400 ``previous_response_not_found``: "Previous response with id
  'resp_…' not found." (developers.openai.com/api/docs/guides/conversation-state). A stored
  response is also there to ``GET`` (as the final response object), ``DELETE`` and list the
  ``input_items`` of (``stored``); anything else is 404 "Response with id '…' not found.".
* **Reasoning.** Reasoning models (``gpt-5*``, ``o1``-``o9*``, ``codex*``, ``deepseek-v4*``,
  ``deepseek-reasoner``, ``qwen3*``, ``qwq*``, ``MiniMax-M*``, ``doubao-seed*``, ``kimi-k2.5+``,
  ``kimi-k3*``, any ``*thinking*``) emit a ``reasoning`` item (id ``rs_…``) before their function
  call or message, unless ``reasoning.effort`` is ``none``; ``reasoning.effort`` on any other
  model is 400 ``unsupported_parameter``. The reasoning is always ``REASONING_TOKENS`` (8)
  tokens: ``Thinking:`` then the prompt's first words, padded with lorem. OpenAI and Azure show
  it only as ``summary`` when ``reasoning.summary`` is set; the other flavors show it as
  ``content: [{type: reasoning_text}]`` (streamed as ``response.reasoning_text.*``, as DeepSeek
  does). ``include: ["reasoning.encrypted_content"]`` adds ``encrypted_content`` on every
  flavor but DeepSeek: a Fernet token (``gAAAAA…`` like OpenAI's) under a key derived from the
  account, holding the item's id. Any ``encrypted_content`` in the input is verified: another
  account's, an edited one, or one moved to another item id is 400
  ``invalid_encrypted_content``, "The encrypted content for item rs_… could not be verified.
  Reason: Encrypted content could not be decrypted or parsed." (github.com/openai/codex/issues/
  35334). On OpenAI and Azure a reasoning item without ``encrypted_content`` must be a stored
  one, else "Item with id 'rs_…' not found. Items are not persisted when `store` is set to
  false. …" (the message Codex users met with ``store: false``).
* **Strict mode** (the ``strict_reasoning`` fault directive, on every flavor) adds OpenAI's
  pairing rules: a ``function_call`` whose reasoning item the fake emitted before it is missing
  from the input is refused with "Item 'fc_…' of type 'function_call' was provided without its
  required 'reasoning' item: 'rs_…'." (github.com/cline/cline/issues/12242), and a reasoning
  item not followed by an output item (assistant message, function or tool call) with "Item
  'rs_…' of type 'reasoning' was provided without its required following item."
  (github.com/vercel/ai/issues/7099).
* **Always checked**, as OpenAI does: duplicate item ids, a ``function_call_output`` without its
  ``function_call`` ("No tool call found for function call output with call_id …."), a
  ``function_call`` without its output ("No tool output found for function call …."), content
  part types by role, ``phase`` values, a ``json_object`` format without "json" in the input.
* **Tools.** ``function``, ``custom`` and ``namespace`` tools are accepted everywhere; OpenAI's
  built-in tool types (``web_search``, ``tool_search``, ``file_search``… see ``HOSTED_TOOLS``;
  Codex 0.171.0 sends ``web_search`` and a client-executed ``tool_search``) only on OpenAI and
  Azure, which accept but never run them here (no ``web_search_call`` item); elsewhere they
  are 400 ``invalid_value`` on ``tools[i].type``, so a relay must drop them. With function tools the fake calls one (the one ``tool_choice`` names,
  else one whose name is a word of the prompt, else the first top-level function, else the
  first inside a namespace, with ``namespace`` set on the call), unless ``tool_choice`` is
  ``none``, or the last input item is a ``function_call_output`` and the choice is not forced:
  then it answers with a message, so an agent loop ends. Arguments follow the chat and
  Messages rule: each required string property gets the prompt's last backticked text, else
  its first word, so "run `echo hi`" makes Codex's ``exec_command`` ``{"cmd": "echo hi"}``;
  no string property gives ``{"q": <first word>}``.
* **Reply text**: ``Echo:`` and the text of the last user message, or of the last
  ``function_call_output`` when answering one, padded to 20 tokens (the ``chunks`` directive
  sets another length). ``text.format`` ``json_schema`` answers an object built from the
  schema, ``json_object`` ``{"echo": …}``.
* **max_output_tokens** caps reasoning plus visible output (OpenAI's minimum is 16): a reply cut
  by it ends ``response.incomplete`` with ``incomplete_details.reason: max_output_tokens`` and
  usage.
* **Usage**: ``input_tokens`` counts the context (stored items too) like chat prompts, every
  item 3 tokens plus its text; ``input_tokens_details.cached_tokens`` is half of an input of 8+
  tokens when ``prompt_cache_key`` is set, else 0; GPT-5.6 and later also report
  ``input_tokens_details.cache_write_tokens`` (the other half, with a ``ttl_30m_tokens`` split)
  per developers.openai.com/api/docs/guides/prompt-caching; ``output_tokens`` includes
  ``output_tokens_details.reasoning_tokens``.
* **phase**: assistant input messages may carry ``phase`` (``commentary``/``final_answer``);
  gpt-5.3-codex and gpt-5.4 and later answer with ``phase: final_answer`` on their message.
* **Stream** (developers.openai.com/api/reference/resources/responses/streaming-events):
  ``event:`` + ``data:`` frames, a ``sequence_number`` from 0 on every event, ``created``,
  ``in_progress``, per item ``output_item.added`` … ``output_item.done``, then ``completed``,
  ``incomplete`` or ``failed``; no ``[DONE]``. OpenAI and Azure add ``obfuscation`` padding to
  delta events unless ``stream_options.include_obfuscation`` is false. The ``error_after``
  directive sends an ``error`` event, then ``response.failed`` with the usage so far.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken

from fake_upstream import tools
from fake_upstream.flavors import Event, Flavor, auth_failure, error, new_id
from fake_upstream.tokens import (
    DEFAULT_REPLY_TOKENS,
    MAX_REPLY_TOKENS,
    PER_MESSAGE_TOKENS,
    ToolCall,
    cached_prompt_tokens,
    content_text,
    count_tokens,
    reply_words,
)

REASONING_TOKENS = 8
MAX_RESPONSES_PER_ACCOUNT = 256
MAX_ITEMS_PER_ACCOUNT = 4096
MAX_ACCOUNTS = 256
MAX_PAIRS = 10_000
ENCRYPTED = "reasoning.encrypted_content"

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
SUMMARIES = ("auto", "concise", "detailed", "generate_summary")
PHASES = ("commentary", "final_answer")
ROLES = ("assistant", "system", "developer", "user")
CLIENT_TOOLS = frozenset({"function", "custom", "namespace"})
HOSTED_TOOLS = frozenset(
    [
        "web_search",
        "web_search_2025_08_26",
        "web_search_preview",
        "web_search_preview_2025_03_11",
        "file_search",
        "code_interpreter",
        "image_generation",
        "computer",
        "computer_use_preview",
        "mcp",
        "local_shell",
        "shell",
        "apply_patch",
        "tool_search",
    ]
)
# Items a model outputs besides reasoning and messages; a reasoning item must precede one.
_CALL_ITEMS = frozenset(
    [
        "function_call",
        "custom_tool_call",
        "web_search_call",
        "file_search_call",
        "computer_call",
        "code_interpreter_call",
        "image_generation_call",
        "local_shell_call",
        "shell_call",
        "apply_patch_call",
        "mcp_call",
        "mcp_list_tools",
        "mcp_approval_request",
        "tool_search_call",
    ]
)
# Every other item type OpenAI accepts in ``input``, checked no further.
_OTHER_INPUT_ITEMS = _CALL_ITEMS | frozenset(
    [
        "function_call_output",
        "custom_tool_call_output",
        "computer_call_output",
        "local_shell_call_output",
        "shell_call_output",
        "apply_patch_call_output",
        "mcp_approval_response",
        "tool_search_output",
        "compaction",
    ]
)
_INPUT_PARTS = ("input_text", "input_image", "input_file", "input_audio")
_ASSISTANT_PARTS = ("output_text", "refusal")
# OpenAI's documented request body (developers.openai.com/api/reference/resources/responses)
# plus Codex's ``client_metadata``: what a flavor that refuses unknown fields still accepts.
KNOWN_FIELDS = frozenset(
    [
        "access_programs",
        "background",
        "background_options",
        "client_metadata",
        "context_management",
        "conversation",
        "image",
        "include",
        "input",
        "instructions",
        "max_output_tokens",
        "max_tool_calls",
        "metadata",
        "model",
        "moderation",
        "parallel_tool_calls",
        "previous_response_id",
        "prompt",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning",
        "safety_identifier",
        "service_tier",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "text",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "truncation",
        "user",
    ]
)
_REASONING_MODEL = re.compile(
    r"^(?:gpt-5|o[1-9]|codex|deepseek-v4|deepseek-reasoner|qwen3|qwq|minimax-m|doubao-seed"
    r"|kimi-k2\.[5-9]|kimi-k3)|thinking",
    re.IGNORECASE,
)
_GPT5_MINOR = re.compile(r"^gpt-5\.(\d+)(.*)$", re.IGNORECASE)
_GPT_MAJOR = re.compile(r"^gpt-(\d+)", re.IGNORECASE)
_JSON_WORD = re.compile(r"json", re.IGNORECASE)
_BACKTICKS = re.compile(r"`([^`]+)`")
_WORDS = re.compile(r"[\w.-]+")


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one provider's ``/responses`` behaves (see the table in the module docstring)."""

    stateful: bool
    hosted_tools: bool
    unknown_fields: bool
    raw_reasoning: bool  # reasoning as ``reasoning_text`` content, not summaries
    opaque_reasoning: bool  # reasoning items need encrypted_content or a stored id (OpenAI)
    encrypted: bool  # honours include reasoning.encrypted_content
    min_output_tokens: int
    obfuscation: bool


_OPENAI = Dialect(
    stateful=True,
    hosted_tools=True,
    unknown_fields=True,
    raw_reasoning=False,
    opaque_reasoning=True,
    encrypted=True,
    min_output_tokens=16,
    obfuscation=True,
)
_SHOWN = Dialect(
    stateful=True,
    hosted_tools=False,
    unknown_fields=True,
    raw_reasoning=True,
    opaque_reasoning=False,
    encrypted=True,
    min_output_tokens=1,
    obfuscation=False,
)
DIALECTS: dict[str, Dialect] = {
    "openai": _OPENAI,
    "azure": _OPENAI,
    "qwen": _SHOWN,
    "ark": _SHOWN,
    "deepseek": replace(_SHOWN, stateful=False, encrypted=False),
    "minimax": replace(_SHOWN, stateful=False, unknown_fields=False),
}
# MiniMax answers chat errors with HTTP 200 and ``base_resp``; a Responses client could not
# read that, so its /responses errors take OpenAI's shape (a flavor name error_object does not
# special-case).
_MINIMAX_ERRORS = Flavor("minimax-responses", "on_request", (), "minimax")


def serves(fl: Flavor) -> bool:
    """Whether ``fl`` has a native ``/responses`` endpoint."""
    return fl.name in DIALECTS


def error_flavor(fl: Flavor) -> Flavor:
    """The flavor whose error shape ``/responses`` errors take."""
    return _MINIMAX_ERRORS if fl.name == "minimax" else fl


def auth_refusal(fl: Flavor, key: str | None) -> tuple[int, bytes]:
    if fl.name == "minimax":
        return error(
            _MINIMAX_ERRORS,
            401,
            "login fail: Please carefully check the API secret key (Authorization) you entered",
            code="invalid_api_key",
        )
    return auth_failure(fl, key)


def is_reasoning_model(model: str) -> bool:
    return _REASONING_MODEL.search(model) is not None


def _gpt_version(model: str) -> tuple[int, int, str] | None:
    minor = _GPT5_MINOR.match(model)
    if minor:
        return 5, int(minor.group(1)), minor.group(2)
    major = _GPT_MAJOR.match(model)
    if major:
        return int(major.group(1)), 0, model[major.end() :]
    return None


def has_phase(model: str) -> bool:
    """gpt-5.3-codex, gpt-5.4 and later label assistant messages with ``phase``."""
    version = _gpt_version(model)
    if version is None:
        return False
    major, minor, rest = version
    return major > 5 or minor >= 4 or (minor == 3 and "codex" in rest.lower())


def reports_cache_writes(model: str) -> bool:
    """GPT-5.6 and later report ``cache_write_tokens``."""
    version = _gpt_version(model)
    return version is not None and (version[0] > 5 or version[1] >= 6)


# --- refusals -----------------------------------------------------------------------------------


class Refusal(Exception):
    """A 4xx answer in the flavor's error shape."""

    def __init__(
        self, message: str, param: str | None = None, code: str | None = None, status: int = 400
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status = status


def _invalid_value(value: object, param: str, supported: tuple[str, ...]) -> Refusal:
    quoted = [f"'{s}'" for s in supported]
    listing = (
        ", ".join(quoted[:-1]) + f", and {quoted[-1]}" if len(quoted) > 2 else " and ".join(quoted)
    )
    return Refusal(
        f"Invalid value: '{value}'. Supported values are: {listing}.", param, "invalid_value"
    )


def _missing(param: str) -> Refusal:
    return Refusal(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _wrong_type(param: str, expected: str) -> Refusal:
    return Refusal(f"Invalid type for '{param}': expected {expected}.", param, "invalid_type")


def previous_not_found(response_id: object) -> Refusal:
    return Refusal(
        f"Previous response with id '{response_id}' not found.",
        "previous_response_id",
        "previous_response_not_found",
    )


def _item_not_found(item_id: str) -> Refusal:
    return Refusal(
        f"Item with id '{item_id}' not found. Items are not persisted when `store` is set to "
        "false. Try again with `store` set to true, or remove this item from your input.",
        "input",
    )


def unverifiable(item_id: str) -> Refusal:
    return Refusal(
        f"The encrypted content for item {item_id} could not be verified. Reason: Encrypted "
        "content could not be decrypted or parsed.",
        None,
        "invalid_encrypted_content",
    )


def missing_reasoning(call_id: str, reasoning_id: str) -> Refusal:
    return Refusal(
        f"Item '{call_id}' of type 'function_call' was provided without its required "
        f"'reasoning' item: '{reasoning_id}'.",
        "input",
    )


def missing_following(reasoning_id: str) -> Refusal:
    return Refusal(
        f"Item '{reasoning_id}' of type 'reasoning' was provided without its required "
        "following item.",
        "input",
    )


# --- server state ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Account:
    responses: OrderedDict[str, list[dict[str, Any]]] = field(default_factory=OrderedDict)
    items: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)  # as GET returns them


class State:
    """What one fake server remembers: stored responses, its sealing secret, reasoning pairs."""

    def __init__(self) -> None:
        self._secret = os.urandom(32)
        self._accounts: OrderedDict[str, _Account] = OrderedDict()
        # function_call item id -> the reasoning item id emitted before it (strict mode).
        self.reasoning_of: OrderedDict[str, str] = OrderedDict()

    @staticmethod
    def account_id(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    def _account(self, account: str, create: bool) -> _Account | None:
        found = self._accounts.get(account)
        if found is not None:
            self._accounts.move_to_end(account)
            return found
        if not create:
            return None
        found = self._accounts[account] = _Account()
        while len(self._accounts) > MAX_ACCOUNTS:
            self._accounts.popitem(last=False)
        return found

    def save(
        self,
        account: str,
        response_id: str,
        context: list[dict[str, Any]],
        response: dict[str, Any] | None = None,
    ) -> None:
        acct = self._account(account, create=True)
        assert acct is not None
        acct.responses[response_id] = context
        if response is not None:
            acct.objects[response_id] = response
        while len(acct.responses) > MAX_RESPONSES_PER_ACCOUNT:
            dropped, _ = acct.responses.popitem(last=False)
            acct.objects.pop(dropped, None)
        for item in context:
            item_id = item.get("id")
            if isinstance(item_id, str):
                acct.items[item_id] = item
                acct.items.move_to_end(item_id)
        while len(acct.items) > MAX_ITEMS_PER_ACCOUNT:
            acct.items.popitem(last=False)

    def context(self, account: str, response_id: str) -> list[dict[str, Any]] | None:
        acct = self._account(account, create=False)
        return None if acct is None else acct.responses.get(response_id)

    def stored(self, account: str, response_id: str) -> dict[str, Any] | None:
        acct = self._account(account, create=False)
        return None if acct is None else acct.objects.get(response_id)

    def delete(self, account: str, response_id: str) -> bool:
        acct = self._account(account, create=False)
        if acct is None or response_id not in acct.responses:
            return False
        del acct.responses[response_id]
        acct.objects.pop(response_id, None)
        return True

    def item(self, account: str, item_id: str) -> dict[str, Any] | None:
        acct = self._account(account, create=False)
        return None if acct is None else acct.items.get(item_id)

    def pair(self, call_item_id: str, reasoning_id: str) -> None:
        self.reasoning_of[call_item_id] = reasoning_id
        while len(self.reasoning_of) > MAX_PAIRS:
            self.reasoning_of.popitem(last=False)

    def _fernet(self, account: str) -> Fernet:
        raw = hmac.new(self._secret, b"account:" + account.encode(), hashlib.sha256).digest()
        return Fernet(base64.urlsafe_b64encode(raw))

    def seal(self, account: str, item_id: str, text: str) -> str:
        """``encrypted_content`` for reasoning item ``item_id``, readable only by ``account``."""
        payload = orjson.dumps({"id": item_id, "text": text})
        return self._fernet(account).encrypt(payload).decode()

    def unseal(self, account: str, item_id: str, token: str) -> str:
        """The reasoning text in ``token``; Refusal unless ``account`` sealed it for ``item_id``."""
        try:
            payload = orjson.loads(self._fernet(account).decrypt(token.encode()))
        except (InvalidToken, orjson.JSONDecodeError, ValueError):
            raise unverifiable(item_id) from None
        if not isinstance(payload, dict) or payload.get("id") != item_id:
            raise unverifiable(item_id)
        return str(payload.get("text", ""))


# --- the request ------------------------------------------------------------------------------


@dataclass(slots=True)
class Tools:
    echo: list[Any]
    functions: list[tuple[str | None, str, dict[str, Any]]]  # (namespace, name, parameters)


@dataclass(slots=True)
class Request:
    model: str
    account: str
    stream: bool
    store: bool
    instructions: str | None
    context: list[dict[str, Any]]  # stored context + input, references resolved
    previous_response_id: str | None
    tools: Tools
    tool_choice: Any
    parallel_tool_calls: bool
    reasoning: dict[str, Any]
    reasoning_on: bool
    encrypted: bool
    summary: bool
    max_output_tokens: int | None
    text_format: dict[str, Any]
    verbosity: str
    prompt_cache_key: str | None
    obfuscate: bool
    body: dict[str, Any]


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _parse_tools(dialect: Dialect, raw: object) -> Tools:
    if raw is None:
        return Tools([], [])
    if not isinstance(raw, list):
        raise _wrong_type("tools", "an array")
    functions: list[tuple[str | None, str, dict[str, Any]]] = []
    for i, tool in enumerate(raw):
        if not isinstance(tool, dict):
            raise _wrong_type(f"tools[{i}]", "an object")
        kind = tool.get("type")
        if kind in HOSTED_TOOLS:
            if not dialect.hosted_tools:
                raise _invalid_value(kind, f"tools[{i}].type", ("function", "custom", "namespace"))
            continue
        if kind not in CLIENT_TOOLS:
            raise _invalid_value(kind, f"tools[{i}].type", ("function", "custom", "namespace"))
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise _missing(f"tools[{i}].name")
        if kind == "function":
            functions.append((None, name, _obj(tool.get("parameters"))))
        elif kind == "namespace":
            inner = tool.get("tools")
            if not isinstance(inner, list):
                raise _missing(f"tools[{i}].tools")
            for j, sub in enumerate(inner):
                sub_name = _obj(sub).get("name")
                if not isinstance(sub_name, str) or not sub_name:
                    raise _missing(f"tools[{i}].tools[{j}].name")
                if _obj(sub).get("type") == "function":
                    functions.append((name, sub_name, _obj(_obj(sub).get("parameters"))))
    return Tools(raw, functions)


def _parse_tool_choice(raw: object, tools: Tools) -> Any:
    if raw is None:
        return "auto"
    if isinstance(raw, str):
        if raw not in ("none", "auto", "required"):
            raise _invalid_value(raw, "tool_choice", ("none", "auto", "required"))
        return raw
    if not isinstance(raw, dict):
        raise _wrong_type("tool_choice", "a string or an object")
    if raw.get("type") == "function":
        name = raw.get("name")
        if not isinstance(name, str):
            raise _missing("tool_choice.name")
        if not any(fn == name for _, fn, _ in tools.functions):
            raise Refusal(
                f"Tool choice 'function' with name '{name}' not found in 'tools' parameter.",
                "tool_choice",
            )
    return raw


def _normalize_item(item: object, i: int) -> dict[str, Any]:
    """One input item, validated; an ``EasyInputMessage`` (no ``type``) becomes a message."""
    if not isinstance(item, dict):
        raise _wrong_type(f"input[{i}]", "an object")
    kind = item.get("type")
    if kind is None and "role" in item:
        item = {"type": "message", **item}
        kind = "message"
    if kind == "message":
        role = item.get("role")
        if role not in ROLES:
            raise _invalid_value(role, f"input[{i}].role", ROLES)
        content = item.get("content")
        if isinstance(content, list):
            allowed = _ASSISTANT_PARTS if role == "assistant" else _INPUT_PARTS
            for j, part in enumerate(content):
                ptype = _obj(part).get("type")
                if ptype not in allowed:
                    raise _invalid_value(ptype, f"input[{i}].content[{j}]", allowed)
        elif not isinstance(content, str):
            raise _missing(f"input[{i}].content")
        phase = item.get("phase")
        if phase is not None and (role != "assistant" or phase not in PHASES):
            raise _invalid_value(phase, f"input[{i}].phase", PHASES)
    elif kind == "function_call":
        for key in ("call_id", "name", "arguments"):
            if not isinstance(item.get(key), str):
                raise _missing(f"input[{i}].{key}")
    elif kind == "function_call_output":
        if not isinstance(item.get("call_id"), str):
            raise _missing(f"input[{i}].call_id")
        if "output" not in item:
            raise _missing(f"input[{i}].output")
    elif kind == "reasoning":
        if not isinstance(item.get("id"), str):
            raise _missing(f"input[{i}].id")
        if not isinstance(item.get("summary"), list):
            raise _missing(f"input[{i}].summary")
    elif kind == "item_reference":
        if not isinstance(item.get("id"), str):
            raise _missing(f"input[{i}].id")
    elif kind not in _OTHER_INPUT_ITEMS:
        raise _invalid_value(kind, f"input[{i}].type", ("message", "function_call", "reasoning"))
    return item


def _item_text(item: dict[str, Any]) -> str:
    kind = item.get("type")
    if kind == "message":
        return content_text(item.get("content"))
    if kind == "function_call":
        return f"{item.get('name', '')} {item.get('arguments', '')}"
    if kind == "custom_tool_call":
        return f"{item.get('name', '')} {item.get('input', '')}"
    if kind in ("function_call_output", "custom_tool_call_output"):
        return content_text(item.get("output"))
    if kind == "reasoning":
        parts = [*(item.get("summary") or ()), *(item.get("content") or ())]
        return content_text(parts)
    return ""


def input_tokens(instructions: str | None, context: list[dict[str, Any]]) -> int:
    """Like chat prompts: every item (and the instructions) costs 3 tokens plus its text."""
    total = count_tokens(instructions) + PER_MESSAGE_TOKENS if instructions else 0
    for item in context:
        total += count_tokens(_item_text(item)) + PER_MESSAGE_TOKENS
    return total


def _resolve_context(
    dialect: Dialect, state: State, account: str, body: dict[str, Any], items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The conversation the model sees: the previous response's context, then the input."""
    previous = body.get("previous_response_id")
    context: list[dict[str, Any]] = []
    if previous is not None:
        if not isinstance(previous, str):
            raise _wrong_type("previous_response_id", "a string")
        stored = state.context(account, previous) if dialect.stateful else None
        if stored is None:
            raise previous_not_found(previous)
        context.extend(stored)
    for item in items:
        if item.get("type") == "item_reference":
            found = state.item(account, item["id"]) if dialect.stateful else None
            if found is None:
                raise _item_not_found(item["id"])
            item = found
        elif item.get("type") == "reasoning":
            sealed = item.get("encrypted_content")
            if isinstance(sealed, str):
                state.unseal(account, item["id"], sealed)
            elif dialect.opaque_reasoning and state.item(account, item["id"]) is None:
                raise _item_not_found(item["id"])
        context.append(item)
    return context


def _check_context(context: list[dict[str, Any]], strict: bool, state: State) -> None:
    seen_ids: set[str] = set()
    calls: set[str] = set()
    answered: set[str] = set()
    reasoning_ids: set[str] = set()
    for index, item in enumerate(context):
        kind = item.get("type")
        item_id = item.get("id")
        if isinstance(item_id, str):
            if item_id in seen_ids:
                raise Refusal(
                    f"Duplicate item found with id {item_id}. Remove the duplicate item from "
                    "your input and try again.",
                    "input",
                )
            seen_ids.add(item_id)
        if kind in ("function_call", "custom_tool_call"):
            calls.add(str(item.get("call_id")))
            required = state.reasoning_of.get(item_id) if isinstance(item_id, str) else None
            if strict and kind == "function_call" and required and required not in reasoning_ids:
                raise missing_reasoning(str(item_id), required)
        elif kind in ("function_call_output", "custom_tool_call_output"):
            call_id = str(item.get("call_id"))
            if call_id not in calls:
                raise Refusal(
                    f"No tool call found for function call output with call_id {call_id}.",
                    "input",
                )
            answered.add(call_id)
        elif kind == "reasoning":
            reasoning_ids.add(str(item_id))
            following = context[index + 1] if index + 1 < len(context) else None
            if strict and not _is_output_item(following):
                raise missing_following(str(item_id))
    for item in context:
        if item.get("type") == "function_call" and item.get("call_id") not in answered:
            raise Refusal(f"No tool output found for function call {item.get('call_id')}.", "input")


def _is_output_item(item: dict[str, Any] | None) -> bool:
    if item is None:
        return False
    kind = item.get("type")
    return kind in _CALL_ITEMS or (kind == "message" and item.get("role") == "assistant")


def _positive(body: dict[str, Any], key: str, minimum: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(key, "an integer")
    if value < minimum:
        raise Refusal(
            f"Invalid '{key}': integer below minimum value. Expected a value >= {minimum}, "
            f"but got {value} instead.",
            key,
            "integer_below_min_value",
        )
    return value


def parse(fl: Flavor, body: dict[str, Any], key: str, strict: bool, state: State) -> Request:
    """Validate ``body`` as OpenAI does and resolve its conversation; Refusal when invalid."""
    dialect = DIALECTS[fl.name]
    if not dialect.unknown_fields:
        for name in body:
            if name not in KNOWN_FIELDS:
                raise Refusal(f"invalid params, unknown field '{name}'", name, "unknown_parameter")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _missing("model")
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise _wrong_type("stream", "a boolean")
    store = body.get("store")
    if store is not None and not isinstance(store, bool):
        raise _wrong_type("store", "a boolean")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise _wrong_type("instructions", "a string")
    raw_input = body.get("input")
    if isinstance(raw_input, str):
        items: list[dict[str, Any]] = [{"type": "message", "role": "user", "content": raw_input}]
    elif isinstance(raw_input, list):
        if not raw_input:
            raise Refusal(
                "Invalid 'input': empty array. Expected an array with minimum length 1, but "
                "got an empty array instead.",
                "input",
                "empty_array",
            )
        items = [_normalize_item(item, i) for i, item in enumerate(raw_input)]
    elif raw_input is None:
        raise _missing("input")
    else:
        raise _wrong_type("input", "a string or an array")
    include = body.get("include") or []
    if not isinstance(include, list) or not all(isinstance(x, str) for x in include):
        raise _wrong_type("include", "an array of strings")
    reasoning = body.get("reasoning") or {}
    if not isinstance(reasoning, dict):
        raise _wrong_type("reasoning", "an object")
    effort = reasoning.get("effort")
    if effort is not None and effort not in EFFORTS:
        raise _invalid_value(effort, "reasoning.effort", EFFORTS)
    summary = reasoning.get("summary")
    if summary is not None and summary not in SUMMARIES:
        raise _invalid_value(summary, "reasoning.summary", SUMMARIES[:3])
    thinks = is_reasoning_model(model)
    if effort is not None and not thinks:
        raise Refusal(
            "Unsupported parameter: 'reasoning.effort' is not supported with this model.",
            "reasoning.effort",
            "unsupported_parameter",
        )
    max_output = _positive(body, "max_output_tokens", dialect.min_output_tokens)
    text_format = _obj(_obj(body.get("text")).get("format")) or {"type": "text"}
    kind = text_format.get("type")
    if kind not in ("text", "json_object", "json_schema"):
        raise _invalid_value(kind, "text.format.type", ("text", "json_object", "json_schema"))
    if kind == "json_schema":
        for required in ("name", "schema"):
            if required not in text_format:
                raise _missing(f"text.format.{required}")
    tools = _parse_tools(dialect, body.get("tools"))
    tool_choice = _parse_tool_choice(body.get("tool_choice"), tools)
    cache_key = body.get("prompt_cache_key")
    if cache_key is not None and not isinstance(cache_key, str):
        raise _wrong_type("prompt_cache_key", "a string")
    account = State.account_id(key)
    context = _resolve_context(dialect, state, account, body, items)
    _check_context(context, strict, state)
    if (
        kind == "json_object"
        and not any(_JSON_WORD.search(_item_text(i)) for i in context if i.get("type") == "message")
        and not _JSON_WORD.search(instructions or "")
    ):
        raise Refusal(
            "Response input messages must contain the word 'json' in some form to use "
            "'text.format' of type 'json_object'.",
            "input",
        )
    options = _obj(body.get("stream_options"))
    parallel = body.get("parallel_tool_calls")
    return Request(
        model=model,
        account=account,
        stream=stream is True,
        store=dialect.stateful and store is not False,
        instructions=instructions,
        context=context,
        previous_response_id=body.get("previous_response_id"),
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel is not False,
        reasoning={"effort": effort or ("medium" if thinks else None), "summary": summary},
        reasoning_on=thinks and effort != "none",
        encrypted=dialect.encrypted and ENCRYPTED in include,
        summary=summary is not None,
        max_output_tokens=max_output,
        text_format=text_format,
        verbosity=str(_obj(body.get("text")).get("verbosity") or "medium"),
        prompt_cache_key=cache_key,
        obfuscate=dialect.obfuscation and options.get("include_obfuscation") is not False,
        body=body,
    )


# --- what the fake says --------------------------------------------------------------------------


def sample_json(schema: object, text: str, depth: int = 0) -> Any:
    """A value that satisfies a simple JSON schema; strings get ``text``."""
    s = _obj(schema)
    if depth > 8:
        return text
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = s.get(combinator)
        if isinstance(options, list) and options:
            return sample_json(options[0], text, depth + 1)
    if "const" in s:
        return s["const"]
    enum = s.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = s.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in s:
        props = _obj(s.get("properties"))
        required = s.get("required")
        keys: list[Any] = required if isinstance(required, list) else list(props)
        return {k: sample_json(props.get(k), text, depth + 1) for k in keys if isinstance(k, str)}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return text


def _fragments(text: str, parts: int = 3) -> list[str]:
    step = max(1, len(text) // parts)
    cuts = [text[i : i + step] for i in range(0, len(text), step)] or [""]
    return cuts


@dataclass(slots=True)
class Plan:
    """The whole answer, decided before any byte is sent."""

    reasoning_text: str  # "" = no reasoning item
    reasoning_tokens: int
    call: ToolCall | None
    namespace: str | None
    pieces: list[str]  # visible text, as streamed
    text_tokens: int
    incomplete: bool

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def output_tokens(self) -> int:
        if self.call is not None:
            visible = count_tokens(self.call.name) + count_tokens(self.call.arguments)
        else:
            visible = self.text_tokens
        return self.reasoning_tokens + visible


def _prompt_text(context: list[dict[str, Any]], answering_tool: bool) -> str:
    for item in reversed(context):
        if answering_tool and item.get("type") in (
            "function_call_output",
            "custom_tool_call_output",
        ):
            return content_text(item.get("output"))
        if item.get("type") == "message" and item.get("role") == "user":
            return content_text(item.get("content"))
    return ""


def _chosen_function(
    req: Request, prompt: str, answering_tool: bool
) -> tuple[str | None, str, dict[str, Any]] | None:
    """(namespace, name, parameters) of the function to call, or None to answer in text.

    A forced choice (``required``, a named function, ``allowed_tools`` in ``required`` mode)
    always calls; otherwise the fake answers a ``function_call_output`` in text. Among the
    candidates: the named one, else one whose name appears as a word in the prompt, else the
    first top-level function, else the first one inside a namespace.
    """
    choice = req.tool_choice
    functions = req.tools.functions
    if not functions or choice == "none":
        return None
    forced = choice == "required"
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "function":
            return next(f for f in functions if f[1] == choice.get("name"))
        if kind != "allowed_tools":
            return None  # a hosted or custom tool: the fake answers in text
        allowed = {_obj(t).get("name") for t in choice.get("tools") or ()}
        functions = [f for f in functions if f[1] in allowed]
        forced = choice.get("mode") == "required"
        if not functions:
            return None
    if answering_tool and not forced:
        return None
    words = set(_WORDS.findall(prompt))
    named = [f for f in functions if f[1] in words]
    top_level = [f for f in functions if f[0] is None]
    return (named or top_level or functions)[0]


def plan(req: Request, chunks: int | None) -> Plan:
    last = req.context[-1] if req.context else {}
    answering_tool = last.get("type") in ("function_call_output", "custom_tool_call_output")
    prompt = _prompt_text(req.context, answering_tool)
    budget = req.max_output_tokens
    reasoning_text, reasoning_tokens = "", 0
    if req.reasoning_on:
        reasoning_tokens = REASONING_TOKENS
        if budget is not None and budget <= REASONING_TOKENS:
            reasoning_tokens = budget
        reasoning_text = " ".join(reply_words(prompt, reasoning_tokens)).replace(
            "Echo:", "Thinking:", 1
        )
        if budget is not None and budget <= REASONING_TOKENS:
            return Plan(reasoning_text, reasoning_tokens, None, None, [], 0, True)
        if budget is not None:
            budget -= reasoning_tokens
    function = _chosen_function(req, prompt, answering_tool)
    if function is not None:
        namespace, name, parameters = function
        call = ToolCall(new_id("call_"), name, tools.arguments(parameters, prompt))
        return Plan(reasoning_text, reasoning_tokens, call, namespace, [], 0, False)
    fmt = req.text_format.get("type")
    if fmt in ("json_object", "json_schema"):
        echo = " ".join(reply_words(prompt, chunks or DEFAULT_REPLY_TOKENS))
        if fmt == "json_schema":
            value = sample_json(req.text_format.get("schema"), echo)
        else:
            value = {"echo": echo}
        text = orjson.dumps(value).decode()
        return Plan(
            reasoning_text,
            reasoning_tokens,
            None,
            None,
            _fragments(text),
            count_tokens(text),
            False,
        )
    natural = min(chunks if chunks is not None else DEFAULT_REPLY_TOKENS, MAX_REPLY_TOKENS)
    capped = budget is not None and natural > budget
    length = budget if capped and budget is not None else natural
    words = reply_words(prompt, length)
    pieces = [w if i == len(words) - 1 else w + " " for i, w in enumerate(words)]
    return Plan(reasoning_text, reasoning_tokens, None, None, pieces, len(words), capped)


# --- rendering --------------------------------------------------------------------------------


def usage(req: Request, prompt: int, output: int, reasoning: int) -> dict[str, Any]:
    cached = cached_prompt_tokens(prompt) if req.prompt_cache_key else 0
    details: dict[str, Any] = {"cached_tokens": cached}
    if reports_cache_writes(req.model):
        written = prompt - cached if cached else 0
        details["cache_write_tokens"] = written
        details["cache_write_tokens_details"] = {"ttl_30m_tokens": written, "ttl_12h_tokens": 0}
    return {
        "input_tokens": prompt,
        "input_tokens_details": details,
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + output,
    }


@dataclass(slots=True)
class Rendered:
    """The output items of a plan, with the ids the stream and the final body share."""

    reasoning: dict[str, Any] | None
    main: dict[str, Any] | None  # the function_call or message item, completed

    @property
    def items(self) -> list[dict[str, Any]]:
        return [i for i in (self.reasoning, self.main) if i is not None]


def render(fl: Flavor, req: Request, p: Plan, state: State) -> Rendered:
    dialect = DIALECTS[fl.name]
    reasoning: dict[str, Any] | None = None
    if p.reasoning_text:
        rs_id = new_id("rs_")
        reasoning = {"id": rs_id, "type": "reasoning", "summary": []}
        if dialect.raw_reasoning:
            reasoning["content"] = [{"type": "reasoning_text", "text": p.reasoning_text}]
        elif req.summary:
            reasoning["summary"] = [{"type": "summary_text", "text": p.reasoning_text}]
        if req.encrypted:
            reasoning["encrypted_content"] = state.seal(req.account, rs_id, p.reasoning_text)
    main: dict[str, Any] | None = None
    if p.call is not None:
        main = {
            "id": new_id("fc_"),
            "type": "function_call",
            "status": "completed",
            "arguments": p.call.arguments,
            "call_id": p.call.id,
            "name": p.call.name,
        }
        if p.namespace is not None:
            main["namespace"] = p.namespace
        if reasoning is not None:
            state.pair(main["id"], reasoning["id"])
    elif p.pieces or not p.incomplete:
        main = {
            "id": new_id("msg_"),
            "type": "message",
            "status": "incomplete" if p.incomplete else "completed",
            "content": [_output_text(p.text)],
            "role": "assistant",
        }
        if has_phase(req.model):
            main["phase"] = "final_answer"
    return Rendered(reasoning, main)


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def response_object(
    req: Request,
    response_id: str,
    created: int,
    *,
    status: str,
    output: list[dict[str, Any]],
    usage_obj: dict[str, Any] | None,
    incomplete: bool = False,
    error_obj: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body = req.body
    out: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": error_obj,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": req.instructions,
        "max_output_tokens": req.max_output_tokens,
        "max_tool_calls": body.get("max_tool_calls"),
        "model": req.model,
        "output": output,
        "parallel_tool_calls": req.parallel_tool_calls,
        "previous_response_id": req.previous_response_id,
        "prompt_cache_key": req.prompt_cache_key,
        "reasoning": req.reasoning,
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": body.get("service_tier") or "default",
        "store": req.store,
        "temperature": body.get("temperature", 1.0),
        "text": {"format": req.text_format, "verbosity": req.verbosity},
        "tool_choice": req.tool_choice,
        "tools": req.tools.echo,
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation") or "disabled",
        "usage": usage_obj,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }
    if status in ("completed", "incomplete"):
        out["completed_at"] = int(time.time())
    return out


def body(fl: Flavor, req: Request, p: Plan, state: State) -> tuple[bytes, int]:
    """The non-streamed ``response`` object and its output token count (for pacing)."""
    rendered = render(fl, req, p, state)
    response_id = new_id("resp_")
    prompt = input_tokens(req.instructions, req.context)
    usage_obj = usage(req, prompt, p.output_tokens, p.reasoning_tokens)
    status = "incomplete" if p.incomplete else "completed"
    out = response_object(
        req,
        response_id,
        int(time.time()),
        status=status,
        output=rendered.items,
        usage_obj=usage_obj,
        incomplete=p.incomplete,
    )
    if req.store:
        state.save(req.account, response_id, [*req.context, *rendered.items], out)
    return orjson.dumps(out), p.output_tokens


def _frame(event: dict[str, Any]) -> bytes:
    kind: str = event["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


class Stream:
    """The SSE events of one streamed response; ``fail`` ends it early with an error."""

    def __init__(self, fl: Flavor, req: Request, p: Plan, state: State) -> None:
        self.req = req
        self.plan = p
        self.state = state
        self.rendered = render(fl, req, p, state)
        self.response_id = new_id("resp_")
        self.created = int(time.time())
        self.prompt = input_tokens(req.instructions, req.context)
        self.sequence = 0
        self.tokens_out = 0
        self.reasoning_out = 0
        self.done_items: list[dict[str, Any]] = []

    def _event(self, kind: str, **fields: Any) -> bytes:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return _frame(event)

    def _delta(self, kind: str, delta: str, **fields: Any) -> bytes:
        if self.req.obfuscate:
            fields["obfuscation"] = secrets.token_urlsafe(max(1, 12 - len(delta)))[:16]
        return self._event(kind, delta=delta, **fields)

    def _snapshot(self) -> dict[str, Any]:
        return response_object(
            self.req,
            self.response_id,
            self.created,
            status="in_progress",
            output=[],
            usage_obj=None,
        )

    def __iter__(self) -> Iterator[Event]:
        yield self._event("response.created", response=self._snapshot()), False
        yield self._event("response.in_progress", response=self._snapshot()), False
        index = 0
        if self.rendered.reasoning is not None:
            yield from self._reasoning(index, self.rendered.reasoning)
            index += 1
        main = self.rendered.main
        if main is not None and main["type"] == "function_call":
            yield from self._function_call(index, main)
        elif main is not None:
            yield from self._message(index, main)
        p = self.plan
        usage_obj = usage(self.req, self.prompt, p.output_tokens, p.reasoning_tokens)
        status = "incomplete" if p.incomplete else "completed"
        final = response_object(
            self.req,
            self.response_id,
            self.created,
            status=status,
            output=self.rendered.items,
            usage_obj=usage_obj,
            incomplete=p.incomplete,
        )
        if self.req.store:
            self.state.save(
                self.req.account,
                self.response_id,
                [*self.req.context, *self.rendered.items],
                final,
            )
        yield self._event(f"response.{status}", response=final), False

    def _reasoning(self, index: int, item: dict[str, Any]) -> Iterator[Event]:
        rs_id = item["id"]
        text = self.plan.reasoning_text
        words = text.split(" ")
        pieces = [w if i == len(words) - 1 else w + " " for i, w in enumerate(words)]
        added = {"id": rs_id, "type": "reasoning", "summary": []}
        yield self._event("response.output_item.added", output_index=index, item=added), False
        where = {"item_id": rs_id, "output_index": index}
        if item.get("content"):
            part = {"type": "reasoning_text", "text": ""}
            yield (
                self._event("response.content_part.added", **where, content_index=0, part=part),
                False,
            )
            for piece in pieces:
                self.reasoning_out += 1
                self.tokens_out += 1
                yield (
                    self._delta("response.reasoning_text.delta", piece, **where, content_index=0),
                    True,
                )
            yield (
                self._event("response.reasoning_text.done", **where, content_index=0, text=text),
                False,
            )
            part = {"type": "reasoning_text", "text": text}
            yield (
                self._event("response.content_part.done", **where, content_index=0, part=part),
                False,
            )
        elif item["summary"]:
            part = {"type": "summary_text", "text": ""}
            yield (
                self._event(
                    "response.reasoning_summary_part.added", **where, summary_index=0, part=part
                ),
                False,
            )
            for piece in pieces:
                self.reasoning_out += 1
                self.tokens_out += 1
                yield (
                    self._delta(
                        "response.reasoning_summary_text.delta", piece, **where, summary_index=0
                    ),
                    True,
                )
            yield (
                self._event(
                    "response.reasoning_summary_text.done", **where, summary_index=0, text=text
                ),
                False,
            )
            part = {"type": "summary_text", "text": text}
            yield (
                self._event(
                    "response.reasoning_summary_part.done", **where, summary_index=0, part=part
                ),
                False,
            )
        else:
            # Hidden reasoning: its tokens are spent before anything else is sent.
            self.reasoning_out += self.plan.reasoning_tokens
            self.tokens_out += self.plan.reasoning_tokens
        self.done_items.append(item)
        yield self._event("response.output_item.done", output_index=index, item=item), False

    def _function_call(self, index: int, item: dict[str, Any]) -> Iterator[Event]:
        added = {**item, "status": "in_progress", "arguments": ""}
        yield self._event("response.output_item.added", output_index=index, item=added), False
        where = {"item_id": item["id"], "output_index": index}
        call = self.plan.call
        assert call is not None
        for fragment in call.fragments():
            yield self._delta("response.function_call_arguments.delta", fragment, **where), True
        self.tokens_out += count_tokens(call.name) + count_tokens(call.arguments)
        yield (
            self._event(
                "response.function_call_arguments.done",
                **where,
                name=call.name,
                arguments=call.arguments,
            ),
            False,
        )
        self.done_items.append(item)
        yield self._event("response.output_item.done", output_index=index, item=item), False

    def _message(self, index: int, item: dict[str, Any]) -> Iterator[Event]:
        added = {**item, "status": "in_progress", "content": []}
        yield self._event("response.output_item.added", output_index=index, item=added), False
        where = {"item_id": item["id"], "output_index": index, "content_index": 0}
        yield self._event("response.content_part.added", **where, part=_output_text("")), False
        streamed_json = self.req.text_format.get("type") != "text"
        for piece in self.plan.pieces:
            if not streamed_json:
                self.tokens_out += 1
            yield self._delta("response.output_text.delta", piece, **where, logprobs=[]), True
        if streamed_json:
            self.tokens_out += self.plan.text_tokens
        text = self.plan.text
        yield self._event("response.output_text.done", **where, text=text, logprobs=[]), False
        yield self._event("response.content_part.done", **where, part=_output_text(text)), False
        self.done_items.append(item)
        yield self._event("response.output_item.done", output_index=index, item=item), False

    def fail(self, message: str | None) -> bytes:
        """An ``error`` event then ``response.failed`` with what was produced so far."""
        text = message or "The server had an error while processing your request. Sorry about that!"
        error_event = self._event("error", code="server_error", message=text, param=None)
        usage_obj = usage(self.req, self.prompt, self.tokens_out, self.reasoning_out)
        failed = response_object(
            self.req,
            self.response_id,
            self.created,
            status="failed",
            output=self.done_items,
            usage_obj=usage_obj,
            error_obj={"code": "server_error", "message": text},
        )
        return error_event + self._event("response.failed", response=failed)


def handle(
    fl: Flavor,
    body_obj: dict[str, Any],
    key: str,
    *,
    strict: bool,
    chunks: int | None,
    state: State,
) -> tuple[int, bytes, int] | Stream:
    """A ``/responses`` request: (status, JSON body, output tokens) or a Stream of events."""
    try:
        req = parse(fl, body_obj, key, strict, state)
    except Refusal as refusal:
        status, payload = error(
            error_flavor(fl),
            refusal.status,
            refusal.message,
            code=refusal.code,
            param=refusal.param,
        )
        return status, payload, 0
    p = plan(req, chunks)
    if req.stream:
        return Stream(fl, req, p, state)
    payload, tokens = body(fl, req, p, state)
    return 200, payload, tokens


def stored(
    fl: Flavor, method: str, response_id: str, suffix: str, key: str, state: State
) -> tuple[int, bytes]:
    """``GET``/``DELETE {base}/responses/{id}`` and ``GET .../input_items`` on a stateful flavor:
    the response as stored, its deletion, or its input items (developers.openai.com/api/
    reference/resources/responses); another account's, an unknown or a stateless flavor's id
    is OpenAI's 404 "Response with id '…' not found."."""
    account = State.account_id(key)
    found = state.stored(account, response_id) if DIALECTS[fl.name].stateful else None
    if found is None or suffix not in ("", "input_items") or (suffix and method != "GET"):
        return error(error_flavor(fl), 404, f"Response with id '{response_id}' not found.")
    if method == "DELETE":
        state.delete(account, response_id)
        return 200, orjson.dumps({"id": response_id, "object": "response", "deleted": True})
    if suffix:
        context = state.context(account, response_id) or []
        produced = {item.get("id") for item in found.get("output") or ()}
        data = [item for item in context if item.get("id") not in produced or not item.get("id")]
        ids = [item.get("id") for item in data]
        return 200, orjson.dumps(
            {
                "object": "list",
                "data": data,
                "first_id": ids[0] if ids else None,
                "last_id": ids[-1] if ids else None,
                "has_more": False,
            }
        )
    return 200, orjson.dumps(found)
