"""Offline token counts: a realistic estimate, and an upper bound for money holds.

Tokenizer files are not downloaded at run time, and a request may reach any of several
providers, each with its own tokenizer, so Baton computes two numbers from a request body.

**The bound** (``prompt_token_bound``) is what the money hold prices: the admission script
guarantees spent + held + hold <= cap, so a cap can be overrun only by a request that costs
more than its hold, and with ``max_tokens`` set only its prompt can. The bound therefore must
never be below what the provider counts.

*The text.* Every byte-level BPE tokenizer (OpenAI's o200k and cl100k, Llama 3 and 4, Qwen,
DeepSeek, Mistral's Tekken, Anthropic's published legacy tokenizer) and every SentencePiece
tokenizer with byte fallback (Llama 2, Mistral v1-v3, Gemma) emits at most one token per
UTF-8 byte of the text it tokenizes, plus one for SentencePiece's dummy prefix. Proof: a
byte-level BPE starts each pre-token from one symbol per byte and each merge replaces two
symbols by one; pre-tokenization only splits, so the count never exceeds the starting
symbols. SentencePiece starts from one symbol per character and replaces a character
missing from its vocabulary by its UTF-8 bytes (at most one token per byte); its merges, or
its unigram segmentation, make pieces of one or more symbols; a space becomes U+2581, one
symbol for one byte; the dummy prefix adds one U+2581 in front. Special-token strings in
the text either stay text or become one token, never more. The text a tokenizer reads is
the text after its normaliser: none (OpenAI, Llama, DeepSeek, Mistral), NFC (Qwen) or NFKC
(Anthropic's legacy tokenizer). NFKC can lengthen text (U+FDFA: 3 bytes become 33, and the
legacy tokenizer then counts 15 tokens for it), so ``text_token_bound`` adds what the
characters that can lengthen a string under NFC or NFKC can add (``wire/unicode_growth.py``
states the rule and why it suffices). So for any text ``t`` and any of these tokenizers:
tokens(t) <= text_token_bound(t) + 1.

This cannot be tightened for every tokenizer at once: Mistral's SentencePiece model reaches
it exactly on digits, emoji, rare ideographs and private-use characters (BENCHMARKS.md).
What is tightened is everything around the text: the bound counts each string's text, not
its JSON escapes; ASCII strings cost their length with no further work; only the characters
that can lengthen under normalisation add anything (so Chinese, Korean, Thai or Arabic text
costs exactly its bytes); images and files are not counted by their base64 size.

*The request.* A provider renders a request into one text with a template: role markers,
separators, tool definitions. ``prompt_token_bound`` walks the whole body (every string,
keys included, every number) and adds ``ITEM_TOKENS`` for every object entry and array
element, which covers the one token of a dummy prefix and the markers a template puts around
a message, a content block, a schema property or a tool argument (ChatML and Harmony use
3 to 4 tokens per message, Llama 3 five, DeepSeek's and Mistral's templates fewer; a
message object has at least two entries, so 16 tokens, and its keys' bytes on top;
Anthropic's rendering is not public). Then ``REQUEST_TOKENS`` once (the reply's opening and
a template's default system text: Qwen's and Llama 3.1's add about 25 tokens, Harmony's
about 50), ``TOOLS_TOKENS`` when tools are offered (Anthropic documents a tool-use system
prompt of up to 530 tokens), ``BUILTIN_TOOL_TOKENS`` per provider-defined tool (Anthropic's
computer use adds about 1,200 tokens of system prompt and definition). Tool-call arguments
sent as a JSON string are re-rendered by some providers per argument, so each ``:`` in them
counts as one more entry. This part rests on the templates, not on a proof: it holds for
the templates above with room to spare, and tests/wire/tokens/test_bound.py checks whole
requests against OpenAI's documented chat rule and the fake upstream's.

*Outside the bound*, and so outside the zero-overrun promise: images, documents and files
(``MEDIA_BOUND_TOKENS`` each, an allowance above OpenAI's and Anthropic's documented
per-image maximums for their current models, not a proof); what the provider adds from its
own side (``previous_response_id`` and stored conversations, server-side tool results such as
web search, MCP tool lists); encrypted reasoning carried back, counted by its ciphertext
length; and a provider whose template is longer than the allowances above.

**The estimate** (``estimate_prompt_tokens``, each dialect's ``estimate_prompt_tokens``) is
what must not be inflated: the tokens-per-minute reservation (the bound, up to 5 times the
real count on prose, would refuse legitimate traffic; the bucket is corrected at settle
anyway), the usage
Baton bills when a provider reports none (flagged ``estimated``), and the count a client gets
from Messages' counting endpoint when no upstream counts. It is a heuristic that errs
slightly high on ordinary text and low on adversarial text:

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

BENCHMARKS.md ("Prompt tokens: the bound and the estimate", generated by bench/tokens.py)
compares both with real tokenizers on a corpus of adversarial texts
(tests/wire/tokens/corpus.json); tests/wire/tokens/test_bound.py fails if any tokenizer
there ever counts more than the bound.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from wire import unicode_growth

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


# --- the bound -----------------------------------------------------------------------------

ITEM_TOKENS = 8  # per object entry and array element: template markers, a dummy prefix
REQUEST_TOKENS = 128  # once: the reply's opening, a template's default system text
TOOLS_TOKENS = 600  # once when tools are offered: a provider's tool-use system prompt
BUILTIN_TOOL_TOKENS = 1_300  # per provider-defined tool (computer use, text editor, bash...)
MEDIA_BOUND_TOKENS = 2_500  # per image, document or file: an allowance, not a proof
# Body fields that never reach the model as text.
_NOT_PROMPT = frozenset({"metadata", "logit_bias"})
# Tool types that are functions the request itself describes (their schema is in the body).
_DESCRIBED_TOOLS = frozenset({"function", "custom"})


def _scanner(astral: bool) -> re.Pattern[str]:
    """Finds what lengthens a string under normalisation (wire/unicode_growth.py): a growing
    character (captured), or a decomposing letter right before a mark (captures "")."""
    growth, decomposed = unicode_growth.RUNS, unicode_growth.DECOMPOSED_RUNS
    either = unicode_growth.char_class(tuple(sorted(growth + decomposed)), astral=astral)
    growing = unicode_growth.char_class(growth, astral=astral)
    letters = unicode_growth.char_class(decomposed, astral=astral)
    marks = [unicode_growth.char_class(unicode_growth.MARK_RUNS, astral=a) for a in (False, True)]
    # One class lookup rejects every other character before the alternatives are tried.
    # Above U+FFFF a class is a list of ranges: one range around them all goes first there,
    # so that emoji (nearly all above it) fail on one comparison.
    around = ""
    if astral:
        spans = [span for span in growth + decomposed if span[0] > 0xFFFF]
        low, high = chr(min(s[0] for s in spans)), chr(max(s[1] for s in spans))
        around = f"(?=[{re.escape(low)}-{re.escape(high)}])"
    return re.compile(f"{around}(?={either})(?:({growing})|{letters}(?={marks[0]}|{marks[1]}))")


_SCAN = _scanner(astral=False)
_SCAN_ASTRAL = _scanner(astral=True)
_EXTRA = {**unicode_growth.growth(), "": unicode_growth.MARK_SLACK}


@dataclass(frozen=True, slots=True)
class PromptTokens:
    """A request's prompt, counted both ways (the module docstring says which is for what)."""

    estimate: int  # realistic: tokens-per-minute reservations, estimated usage
    bound: int  # never below the provider's count: money holds


def text_token_bound(text: str) -> int:
    """The UTF-8 length of ``text`` after the most lengthening normalisation a tokenizer
    applies (NFC or NFKC): no tokenizer in the module docstring counts more than this + 1."""
    if text.isascii():
        return len(text)  # ASCII is the same under every normalisation
    data = text.encode("utf-8", "surrogatepass")
    found = _SCAN.findall(text)
    if b"\xf0" in data:  # characters above U+FFFF (those in the tables start with 0xF0)
        found += _SCAN_ASTRAL.findall(text)
    return len(data) + sum(map(_EXTRA.__getitem__, found)) if found else len(data)


def prompt_token_bound(body: Mapping[str, Any]) -> int:
    """An upper bound on the prompt tokens of any dialect's request body (module docstring)."""
    tokens = REQUEST_TOKENS
    for key, value in body.items():
        if key in _NOT_PROMPT:
            continue
        tokens += ITEM_TOKENS + text_token_bound(key) + _bound(value)
        if key == "tools" and isinstance(value, list) and value:
            tokens += TOOLS_TOKENS
            for tool in value:
                kind = tool.get("type") if isinstance(tool, dict) else None
                if isinstance(kind, str) and kind not in _DESCRIBED_TOOLS:
                    tokens += BUILTIN_TOOL_TOKENS
    return tokens


def _bound(value: Any) -> int:
    # Recursion depth: the relay refuses bodies nested deeper than MAX_JSON_DEPTH before
    # admission (RelayApp.parse_body), and nothing is skipped for depth: all of it counts.
    if isinstance(value, str):
        return text_token_bound(value)
    if isinstance(value, dict):
        if value.get("type") in _MEDIA_TYPES and not _text_source(value):
            return MEDIA_BOUND_TOKENS
        tokens = 0
        for key, item in value.items():
            tokens += ITEM_TOKENS + text_token_bound(key) + _bound(item)
            if key == "arguments" and isinstance(item, str):
                tokens += ITEM_TOKENS * item.count(":")
        return tokens
    if isinstance(value, list):
        tokens = ITEM_TOKENS * len(value)
        for item in value:
            tokens += _bound(item)
        return tokens
    # Numbers, true, false, null: their JSON text.
    return len(orjson.dumps(value))


def _text_source(block: Mapping[str, Any]) -> bool:
    """A Messages document whose source is plain text or content blocks: read as text."""
    source = block.get("source")
    return isinstance(source, dict) and source.get("type") in ("text", "content")
