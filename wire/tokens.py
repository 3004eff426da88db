"""Offline token estimates.

Used when a provider reports no usage (billing then marks the usage
``estimated``) and to size a quota hold before a request runs. Tokenizer files
cannot be downloaded, so this is a heuristic that is fast and errs slightly
high, which is the safe side for holds:

- ASCII: 4 characters per token (English prose and code average 3.5 to 4.5
  in the cl100k/o200k vocabularies).
- U+0080 to U+07FF (accented Latin, Greek, Cyrillic, Hebrew, Arabic):
  2 characters per token.
- U+0800 to U+FFFF (CJK ideographs, kana, Hangul, Thai, Indic scripts,
  fullwidth forms, typographic punctuation): 1 token each. Chinese costs
  between 0.6 and 1.5 tokens per character depending on the vocabulary.
- Astral characters (emoji, rare ideographs): 2 tokens each.

The four classes are counted from the lengths of three C-level encodings (the
UTF-8 byte length tells the classes apart) instead of a Python loop or a
regex: a megabyte of text costs about a millisecond and no input can trigger
backtracking. Counts are kept in quarter tokens ("units") so that estimates
accumulated over many small stream fragments are rounded only once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

MESSAGE_OVERHEAD = 4  # role marker and separators around each chat message
REPLY_PRIMING = 3  # tokens that open the assistant's reply
IMAGE_TOKENS = 765  # a 1024x1024 high-detail image in OpenAI's accounting


def text_token_units(text: str) -> int:
    """Estimated tokens of ``text`` times four."""
    n = len(text)
    if text.isascii():
        return n
    n_ascii = len(text.encode("ascii", "ignore"))
    utf8_bytes = len(text.encode("utf-8", "surrogatepass"))
    astral = len(text.encode("utf-16-le", "surrogatepass")) // 2 - n
    # The remaining characters take two (narrow) or three (wide) UTF-8 bytes:
    # narrow + wide = rest and 2 * narrow + 3 * wide = their byte count.
    rest = n - n_ascii - astral
    wide = (utf8_bytes - n_ascii - 4 * astral) - 2 * rest
    narrow = rest - wide
    return n_ascii + 2 * narrow + 4 * wide + 8 * astral


def units_to_tokens(units: int) -> int:
    return (units + 3) // 4


def estimate_text_tokens(text: str) -> int:
    """Estimated tokens of ``text``: 0 for "", at least 1 otherwise."""
    return units_to_tokens(text_token_units(text)) if text else 0


def estimate_prompt_tokens(body: Mapping[str, Any]) -> int:
    """Estimated prompt tokens of a chat, completions or embeddings request body."""
    units = 0
    tokens = 0
    messages = body.get("messages")
    if isinstance(messages, list):
        tokens += REPLY_PRIMING
        for message in messages:
            if not isinstance(message, dict):
                continue
            tokens += MESSAGE_OVERHEAD
            units += _content_units(message.get("content"))
            for key in ("name", "reasoning_content"):
                value = message.get(key)
                if isinstance(value, str):
                    units += text_token_units(value)
            tool_calls = message.get("tool_calls")
            if isinstance(tool_calls, list):
                units += _tool_calls_units(tool_calls)
    tools = body.get("tools")
    if tools:
        # Tool schemas reach the model as JSON text; their UTF-8 length is a
        # close enough proxy (schemas are overwhelmingly ASCII).
        units += len(orjson.dumps(tools))
    for key in ("prompt", "input"):
        value = body.get(key)
        if value is not None:
            text_units, token_count = _prompt_units(value)
            units += text_units
            tokens += token_count
    return tokens + units_to_tokens(units)


def _content_units(content: Any) -> int:
    if isinstance(content, str):
        return text_token_units(content)
    if not isinstance(content, list):
        return 0
    units = 0
    for part in content:
        if not isinstance(part, dict):
            continue
        text = part.get("text")
        if isinstance(text, str):
            units += text_token_units(text)
        elif part.get("type") in ("image_url", "image", "input_image"):
            units += IMAGE_TOKENS * 4
    return units


def _tool_calls_units(tool_calls: list[Any]) -> int:
    units = 0
    for call in tool_calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        for key in ("name", "arguments"):
            value = function.get(key)
            if isinstance(value, str):
                units += text_token_units(value)
    return units


def _prompt_units(value: Any) -> tuple[int, int]:
    """(text units, literal token count) of a ``prompt`` or embeddings ``input``.

    Both accept a string, a list of strings, a token array or a list of token
    arrays; token arrays are counted exactly.
    """
    if isinstance(value, str):
        return text_token_units(value), 0
    if not isinstance(value, list):
        return 0, 0
    units = 0
    tokens = 0
    for item in value:
        if isinstance(item, str):
            units += text_token_units(item)
        elif isinstance(item, int):
            tokens += 1
        elif isinstance(item, list):
            tokens += len(item)
    return units, tokens


def estimate_structured_tokens(value: Any) -> int:
    """Estimated tokens of a structured prompt (Messages and Responses bodies): every
    string in it counts as text, images as ``IMAGE_TOKENS``, and each object a few tokens
    for its markers. Base64 payloads are counted as images, never as text."""
    units, tokens = _structured(value, 0)
    return tokens + units_to_tokens(units)


_MEDIA_TYPES = frozenset({"image", "image_url", "input_image", "document", "input_file", "file"})
_SKIP_KEYS = frozenset({"type", "signature", "encrypted_content", "id", "cache_control"})


def _structured(value: Any, depth: int) -> tuple[int, int]:
    if isinstance(value, str):
        return text_token_units(value), 0
    if depth > 64:
        return 0, 0
    units = tokens = 0
    if isinstance(value, dict):
        if value.get("type") in _MEDIA_TYPES:
            return 0, IMAGE_TOKENS
        tokens += 1
        for key, item in value.items():
            if key in _SKIP_KEYS:
                continue
            more_units, more_tokens = _structured(item, depth + 1)
            units += more_units
            tokens += more_tokens
    elif isinstance(value, list):
        for item in value:
            more_units, more_tokens = _structured(item, depth + 1)
            units += more_units
            tokens += more_tokens
    return units, tokens
