"""Which tool the fake "calls", with which arguments, and when it answers instead.

One rule for chat and Messages alike, so an agent loop through any dialect behaves the same:

- A request whose last message is a tool result (chat ``role: "tool"``, or a Messages user
  turn holding a ``tool_result`` block) gets a text answer, so a loop ends after one round
  trip: first turn ``tool_use``, second turn text. A forced ``tool_choice`` still calls.
- Otherwise, when tools are offered and ``tool_choice`` is not ``none``: the named tool if
  ``tool_choice`` names one, else the tool named last (as a word) in the last
  user text, else the first tool.
- Arguments: each string property the tool's schema requires (or, with no ``required``,
  each string property) gets the text between the last pair of backticks in the prompt,
  else the prompt's first word; a schema with no string property gets ``{"q": <first
  word>}``. So ``Use Bash to run `echo hi``` makes a Claude Code ``Bash`` call with
  ``{"command": "echo hi"}``.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from fake_upstream.tokens import split_tokens

_BACKTICKS = re.compile(r"`([^`]+)`")


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def after_tool_result(messages: list[Any]) -> bool:
    """The conversation's last message returns a tool's result."""
    last = _obj(messages[-1]) if messages else {}
    if last.get("role") == "tool":
        return True
    content = last.get("content")
    return (
        last.get("role") == "user"
        and isinstance(content, list)
        and any(_obj(block).get("type") == "tool_result" for block in content)
    )


def _named_in(prompt: str, names: list[str]) -> str | None:
    """The tool named last in the prompt: the user's own words come after whatever context
    a client puts first in the turn (Claude Code's reminders name other tools)."""
    last: dict[str, int] = {}
    for match in re.finditer(r"[\w.-]+", prompt):
        last[match.group()] = match.start()
    named = [(last[name], name) for name in names if name in last]
    return max(named)[1] if named else None


def pick(
    tools: object, choice: object, prompt: str, messages: list[Any], *, dialect: str
) -> tuple[str, dict[str, Any]] | None:
    """The tool to call and its schema, or None when the fake should answer in text.

    ``dialect`` is ``"chat"`` (OpenAI tools and ``tool_choice``) or ``"messages"``.
    """
    if not isinstance(tools, list) or not tools:
        return None
    if dialect == "chat":
        forced_name = _obj(_obj(choice).get("function")).get("name")
        forced = choice == "required" or isinstance(forced_name, str)
        if choice == "none":
            return None
    else:
        kind = _obj(choice).get("type")
        forced_name = _obj(choice).get("name") if kind == "tool" else None
        forced = kind in ("any", "tool")
        if kind == "none":
            return None
    if not forced and after_tool_result(messages):
        return None
    specs: list[tuple[str, dict[str, Any]]] = []
    for tool in tools:
        entry = _obj(tool)
        function = _obj(entry.get("function"))
        name = function.get("name") or entry.get("name")
        schema = _obj(function.get("parameters") or entry.get("input_schema"))
        specs.append((name if isinstance(name, str) else "tool", schema))
    if isinstance(forced_name, str):
        return forced_name, next((s for n, s in specs if n == forced_name), {})
    named = _named_in(prompt, [n for n, _ in specs])
    return next(((n, s) for n, s in specs if n == named), specs[0])


def arguments(schema: dict[str, Any], prompt: str) -> str:
    """The call's arguments as JSON text, filled from the prompt (see the module docstring)."""
    words = split_tokens(prompt)
    # The last quoted span: the user's own words come after a client's context.
    quoted = _BACKTICKS.findall(prompt)
    value = quoted[-1] if quoted else (words[0] if words else "")
    properties = _obj(schema.get("properties"))
    required = schema.get("required")
    names = required if isinstance(required, list) and required else list(properties)
    strings = [
        n for n in names if isinstance(n, str) and _obj(properties.get(n)).get("type") == "string"
    ]
    if not strings:
        return orjson.dumps({"q": words[0] if words else ""}).decode()
    return orjson.dumps(dict.fromkeys(strings, value)).decode()
