"""Deterministic tokens, reply text and embeddings for the fake upstream.

Real tokenizers are model-specific, slow and change between releases; tests need counts they
can work out by hand. The rule used everywhere (prompt and completion alike):

    a token is one CJK character (ideograph, kana, hangul, CJK or full-width punctuation),
    or a maximal run of other non-whitespace characters.

So ``"hello world"`` is 2 tokens, ``"你好"`` is 2 and ``"ok,你好 x"`` is 4. Because every reply
word is a single token and words are joined by single spaces, re-counting the reply text gives
back exactly the advertised ``completion_tokens``.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass

_CJK = (
    "\u2e80-\u2fdf\u3001-\u303f\u3040-\u30ff\u3100-\u31ff\u3200-\u32ff\u3400-\u4dbf"
    "\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
    "\U00020000-\U0003134f"
)
_TOKEN_RE = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")

PER_MESSAGE_TOKENS = 3  # role and separators, like OpenAI's chat overhead
DEFAULT_REPLY_TOKENS = 20
MAX_REPLY_TOKENS = 4096
CACHE_MIN_PROMPT = 8  # prompts shorter than this never report cache hits

_LOREM = (
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
)


def split_tokens(text: str) -> list[str]:
    """The tokens of ``text`` under the rule in the module docstring."""
    if text.isascii():  # fast path: no CJK possible, whitespace split is the same rule
        return text.split()
    return _TOKEN_RE.findall(text)


def count_tokens(text: str) -> int:
    if text.isascii():
        return len(text.split())
    return len(_TOKEN_RE.findall(text))


def content_text(content: object) -> str:
    """The countable text of a message ``content`` in OpenAI or Anthropic form.

    Strings count as-is; in part/block lists only text parts and tool results count, since
    images and tool-call inputs have no stable token cost worth faking.
    """
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts: list[str] = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict):
            text = part.get("text")
            if isinstance(text, str):
                texts.append(text)
            elif part.get("type") == "tool_result":
                texts.append(content_text(part.get("content")))
    return " ".join(texts)


def prompt_tokens(messages: Sequence[object], system: str = "") -> int:
    """Sum of message content tokens plus a fixed overhead per message (and per system prompt)."""
    total = count_tokens(system) + PER_MESSAGE_TOKENS if system else 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        total += count_tokens(content_text(content)) + PER_MESSAGE_TOKENS
    return total


def last_user_text(messages: Sequence[object]) -> str:
    """Text of the last user message (the one the fake "answers"), else of the last message."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    last = messages[-1] if messages else None
    return content_text(last.get("content")) if isinstance(last, dict) else ""


def cached_prompt_tokens(prompt: int) -> int:
    """Deterministic prompt-cache hits where a flavor reports them: half a long-enough prompt."""
    return prompt // 2 if prompt >= CACHE_MIN_PROMPT else 0


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as OpenAI sends it

    def fragments(self) -> list[str]:
        """The argument JSON cut into three non-empty pieces, to exercise delta reassembly."""
        step = len(self.arguments) // 3
        return [self.arguments[:step], self.arguments[step : 2 * step], self.arguments[2 * step :]]


@dataclass(frozen=True, slots=True)
class Reply:
    """What the fake will say, decided once and then rendered in any flavor's shape."""

    words: tuple[str, ...]
    capped: bool  # the request's token cap cut the reply (finish_reason "length")
    tool: ToolCall | None = None
    reasoning: str = ""  # thinking text shown before the answer ("" = not thinking)

    @property
    def text(self) -> str:
        return " ".join(self.words)

    @property
    def pieces(self) -> list[str]:
        """Streamed content: one token per chunk, each word keeping its trailing space."""
        last = len(self.words) - 1
        return [w if i == last else w + " " for i, w in enumerate(self.words)]

    @property
    def reasoning_tokens(self) -> int:
        return count_tokens(self.reasoning) if self.reasoning else 0

    @property
    def reasoning_pieces(self) -> list[str]:
        """Streamed reasoning, cut like ``pieces``: one token per chunk."""
        words = split_tokens(self.reasoning)
        last = len(words) - 1
        return [w if i == last else w + " " for i, w in enumerate(words)]

    @property
    def completion_tokens(self) -> int:
        """Everything generated, reasoning included (it is billed as output)."""
        if self.tool is not None:
            answer = count_tokens(self.tool.name) + count_tokens(self.tool.arguments)
        else:
            answer = len(self.words)
        return answer + self.reasoning_tokens

    @property
    def finish_reason(self) -> str:
        if self.tool is not None:
            return "tool_calls"
        return "length" if self.capped else "stop"


def reply_length(cap: int | None, chunks: int | None, *, cap_is_target: bool) -> tuple[int, bool]:
    """Number of reply tokens and whether the request's cap cut the reply.

    OpenAI-shaped flavors treat ``max_tokens`` as the wanted length (so benchmarks can ask for
    long replies); Anthropic requires ``max_tokens`` on every call, so there it is only a cap on
    the 20-token default. A ``chunks`` fault directive overrides the natural length.
    """
    if chunks is not None:
        natural = chunks
    elif cap is not None and cap_is_target:
        natural = cap
    else:
        natural = DEFAULT_REPLY_TOKENS
    natural = min(natural, MAX_REPLY_TOKENS)
    if cap is not None and natural >= cap:
        return cap, True
    return natural, False


def reply_words(prompt: str, n: int) -> tuple[str, ...]:
    """``Echo:`` then the prompt's tokens, padded with lorem words, exactly ``n`` tokens long."""
    if n <= 0:
        return ()
    words = ["Echo:", *split_tokens(prompt)[: n - 1]]
    i = 0
    while len(words) < n:
        words.append(_LOREM[i % len(_LOREM)])
        i += 1
    return tuple(words)


def embedding(text: str, dims: int) -> list[float]:
    """A unit-length vector derived from a hash of ``text``: same text, same vector."""
    raw = b""
    counter = 0
    seed = text.encode()
    while len(raw) < dims * 4:
        raw += hashlib.blake2b(seed + counter.to_bytes(4, "little"), digest_size=64).digest()
        counter += 1
    ints = struct.unpack(f"<{dims}I", raw[: dims * 4])
    vec = [x / 2147483647.5 - 1.0 for x in ints]
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [round(v / norm, 6) for v in vec]


def embedding_base64(vec: list[float]) -> str:
    """OpenAI's ``encoding_format=base64``: little-endian float32 bytes, base64-encoded."""
    return base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
