"""The prompt bound (wire/tokens.py) against real tokenizers, and the facts its proof uses.

Every tokenizer in real.py counts every text of the adversarial corpus; none may count more
than the bound. The Unicode facts behind the normalisation part of the bound are checked
for every code point of this Python's Unicode data.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fake_upstream.tokens import prompt_tokens as fake_prompt_tokens
from wire import unicode_growth
from wire.dialects import CHAT, MESSAGES
from wire.tokens import (
    BUILTIN_TOOL_TOKENS,
    ITEM_TOKENS,
    MEDIA_BOUND_TOKENS,
    REQUEST_TOKENS,
    TOOLS_TOKENS,
    estimate_prompt_tokens,
    estimate_text_tokens,
    prompt_token_bound,
    text_token_bound,
)

from .corpus import load
from .real import SHA256, Tokenizer, sha256, tokenizers

CORPUS = load()
TOKENIZERS = tokenizers()


def utf8(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def test_the_corpus_and_the_tokenizers_are_all_there() -> None:
    assert len(CORPUS) >= 40
    assert all(CORPUS.values())
    assert [t.name for t in TOKENIZERS] == [
        "fake",
        "o200k",
        "cl100k",
        "qwen",
        "deepseek",
        "tekken",
        "mistral-sp",
        "claude-legacy",
    ]


@pytest.mark.parametrize("name", sorted(SHA256))
def test_the_vendored_files_are_the_published_ones(name: str) -> None:
    assert sha256(name) == SHA256[name]


@pytest.mark.parametrize(
    ("tokenizer", "expected"),
    [
        # Counts anyone can check with the official libraries online.
        ("o200k", {"hello world": 2, "你好，世界": 3, "<|endoftext|>": 7}),  # noqa: RUF001
        ("cl100k", {"hello world": 2, "<|endoftext|>": 7}),
        ("claude-legacy", {"hello world": 2, "\ufdfa": 15}),
        ("fake", {"hello world": 2, "ok,你好 x": 4}),
    ],
)
def test_each_tokenizer_counts_as_its_library_does(
    tokenizer: str, expected: dict[str, int]
) -> None:
    count = next(t for t in TOKENIZERS if t.name == tokenizer).count
    assert {text: count(text) for text in expected} == expected


@pytest.mark.parametrize("tokenizer", TOKENIZERS, ids=lambda t: t.name)
def test_no_tokenizer_counts_more_than_the_bound(tokenizer: Tokenizer) -> None:
    over = {}
    for name, text in CORPUS.items():
        count = tokenizer.count(text)
        if count > text_token_bound(text) + 1:  # + 1: SentencePiece's dummy prefix
            over[name] = (count, text_token_bound(text) + 1)
    assert not over, f"{tokenizer.name} counts more than the bound: {over}"


def test_normalisation_is_why_the_bound_is_not_just_the_byte_length() -> None:
    claude = next(t for t in TOKENIZERS if t.name == "claude-legacy")
    text = CORPUS["U+FDFA, repeated"]
    assert claude.count(text) > 4 * utf8(text)  # NFKC: 3 bytes become 33
    assert claude.count(text) <= text_token_bound(text)


def test_the_old_estimate_undercounts_what_the_bound_covers() -> None:
    fake = next(t for t in TOKENIZERS if t.name == "fake")
    text = CORPUS["one-letter words"]
    assert estimate_text_tokens(text) * 2 <= fake.count(text) <= text_token_bound(text)


def chat_body(text: str) -> dict[str, Any]:
    return {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": text},
        ],
        "max_tokens": 10,
    }


def openai_chat_count(count: Any, body: dict[str, Any]) -> int:
    """OpenAI's documented rule for a chat prompt: 3 tokens per message plus its role and
    content, 3 for the reply's opening (the OpenAI cookbook's num_tokens_from_messages)."""
    return 3 + sum(3 + count(m["role"]) + count(m["content"]) for m in body["messages"])


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_whole_requests_stay_under_the_bound(name: str) -> None:
    """Per request, with its template: the fake's count, OpenAI's chat rule on o200k, and
    every tokenizer over the message texts plus each one's markers; in chat and Messages."""
    body = chat_body(CORPUS[name])
    bound = prompt_token_bound(body)
    assert fake_prompt_tokens(body["messages"]) <= bound
    o200k = next(t for t in TOKENIZERS if t.name == "o200k").count
    assert openai_chat_count(o200k, body) <= bound
    for tokenizer in TOKENIZERS:
        # Each message: its texts, a dummy prefix per text, and up to 6 marker tokens.
        rendered = sum(
            tokenizer.count(m["role"]) + tokenizer.count(m["content"]) + 2 + 6
            for m in body["messages"]
        )
        assert rendered + 3 <= bound, tokenizer.name
    turns: list[Any] = [{"role": "user", "content": [{"type": "text", "text": CORPUS[name]}]}]
    messages = {"model": "claude-x", "system": "Be brief.", "messages": turns, "max_tokens": 10}
    assert fake_prompt_tokens(turns, "Be brief.") <= prompt_token_bound(messages)
    # The bound is never below the realistic estimate of any dialect.
    assert CHAT.estimate_prompt_tokens(body) <= bound
    assert MESSAGES.estimate_prompt_tokens(messages) <= prompt_token_bound(messages)


def test_what_the_bound_counts_in_a_body() -> None:
    assert prompt_token_bound({}) == REQUEST_TOKENS
    # "input": a key of 5 bytes and a value of 3, one entry.
    assert prompt_token_bound({"input": "abc"}) == REQUEST_TOKENS + ITEM_TOKENS + 5 + 3
    # Numbers and literals count as the JSON text Baton sends on.
    assert prompt_token_bound({"n": 12345}) == REQUEST_TOKENS + ITEM_TOKENS + 1 + 5
    assert prompt_token_bound({"n": [True, None]}) == REQUEST_TOKENS + 3 * ITEM_TOKENS + 1 + 8
    # Metadata and logit bias never reach the model.
    assert prompt_token_bound({"metadata": {"x": "y" * 500}, "logit_bias": {"1": 5}}) == (
        REQUEST_TOKENS
    )


def test_images_documents_and_files_take_the_media_allowance() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 100_000}}
    pdf = {"type": "document", "source": {"type": "base64", "data": "B" * 100_000}}
    body = {"messages": [{"role": "user", "content": [image, pdf]}]}
    media = prompt_token_bound(body) - prompt_token_bound({"messages": [{"role": "user"}]})
    assert media == len("content") + ITEM_TOKENS + 2 * (ITEM_TOKENS + MEDIA_BOUND_TOKENS)
    # A document whose source is text is read as text, every byte of it.
    text_doc = {"type": "document", "source": {"type": "text", "data": "x" * 10_000}}
    assert prompt_token_bound({"messages": [{"content": [text_doc]}]}) > 10_000


def test_tools_add_the_tool_prompt_and_provider_tools_their_definitions() -> None:
    function = {"type": "function", "function": {"name": "f", "parameters": {}}}
    base = prompt_token_bound({"tools": []})
    with_function = prompt_token_bound({"tools": [function]})
    assert with_function - base == TOOLS_TOKENS + prompt_token_bound(
        {"x": [function]}
    ) - prompt_token_bound({"x": []})
    computer = {"type": "computer_20250124", "name": "computer", "display_width_px": 1024}
    assert prompt_token_bound({"tools": [function, computer]}) - with_function >= (
        BUILTIN_TOOL_TOKENS
    )


def test_tool_arguments_count_an_entry_per_colon() -> None:
    call = {"function": {"name": "f", "arguments": '{"a":1,"b":2}'}}
    plain = {"function": {"name": "f", "argumentz": '{"a":1,"b":2}'}}
    assert prompt_token_bound(call) - prompt_token_bound(plain) == 2 * ITEM_TOKENS


# --- the Unicode facts behind text_token_bound --------------------------------------------

HANGUL_SECOND = {chr(c) for c in range(0x1161, 0x1176)} | {chr(c) for c in range(0x11A8, 0x11C3)}


def primary_composites() -> list[tuple[str, str, str]]:
    """(first, second, composite) for every pair canonical composition joins."""
    pairs = []
    for cp in range(0x110000):
        c = chr(cp)
        decomposition = unicodedata.decomposition(c)
        if decomposition and not decomposition.startswith("<"):
            parts = [chr(int(x, 16)) for x in decomposition.split()]
            if len(parts) == 2 and unicodedata.normalize("NFC", "".join(parts)) == c:
                pairs.append((parts[0], parts[1], c))
    return pairs


def test_a_mark_can_unmake_the_precomposed_letter_before_it() -> None:
    # NFC reorders the dot below (class 220) before the grave (230) of "à", composes a + dot
    # below, and leaves the grave alone: 5 bytes from 4. MARK_SLACK on the mark covers it.
    text = "\u00e0\u0323"
    assert utf8(unicodedata.normalize("NFC", text)) == 5 > utf8(text)
    assert text_token_bound(text) >= 5


def test_the_growth_tables_are_this_pythons_unicode() -> None:
    """Fails when Python's Unicode data changes: run `python -m wire.unicode_growth`."""
    slack, growth, decomposed, marks = unicode_growth.compute()
    assert unicodedata.unidata_version == unicode_growth.UNICODE_VERSION
    assert slack == unicode_growth.MARK_SLACK
    assert tuple(unicode_growth.runs(growth)) == unicode_growth.RUNS
    assert tuple(unicode_growth.runs(decomposed)) == unicode_growth.DECOMPOSED_RUNS
    assert tuple(unicode_growth.runs(marks)) == unicode_growth.MARK_RUNS
    # text_token_bound looks for astral entries only where a 0xF0 lead byte is (planes 1-3).
    every = unicode_growth.RUNS + unicode_growth.DECOMPOSED_RUNS + unicode_growth.MARK_RUNS
    assert all(span[1] < 0x40000 for span in every)


def test_the_unicode_facts_the_proof_relies_on() -> None:
    pairs = primary_composites()
    assert len(pairs) > 900
    # 1. Composition never lengthens (Hangul syllables: 3 bytes from two or three jamo).
    assert all(utf8(c) <= utf8(a) + utf8(b) for a, b, c in pairs)
    # 2. A stable character that decomposes starts with a character no composition takes
    #    as its second half, so what precedes it cannot take its first character.
    seconds = {b for _, b, _ in pairs} | HANGUL_SECOND
    for cp in range(0x110000):
        c = chr(cp)
        if 0xD800 <= cp < 0xE000 or not unicodedata.decomposition(c):
            continue
        if unicodedata.normalize("NFC", c) == c and unicodedata.normalize("NFKC", c) == c:
            assert unicodedata.normalize("NFD", c)[0] not in seconds, hex(cp)


def spread(spans: tuple[tuple[int, ...], ...], count: int) -> list[str]:
    points = [cp for span in spans for cp in range(span[0], span[1] + 1)]
    return [chr(cp) for cp in points[:: max(1, len(points) // count)]]


TRICKY = (
    spread(unicode_growth.RUNS, 300)
    + spread(unicode_growth.DECOMPOSED_RUNS, 300)
    + spread(unicode_growth.MARK_RUNS, 300)
    + list("aeiouAEIOUàéîõüứệǖᾏ가각힣ᄀ하ᅡᆨ中ｶﾞกข\u0e48\u0e38بت\u064e\u0651")
    + ["\u0b47", "\u0b3e", "\u0b4b", "\u0dd9", "\u0dcf", "\u1100", "\u1161", "\u11a8"]
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(TRICKY), max_size=12).map("".join))
def test_normalised_text_never_outgrows_the_bound(text: str) -> None:
    longest = max(
        utf8(unicodedata.normalize("NFC", text)), utf8(unicodedata.normalize("NFKC", text))
    )
    assert max(utf8(text), longest) <= text_token_bound(text)


def test_the_bound_of_a_text_is_cheap_on_ordinary_text() -> None:
    # Nothing in ordinary text grows, so the bound is its byte length exactly.
    for name in ("english prose", "Chinese prose", "Korean prose", "Devanagari and Thai"):
        assert text_token_bound(CORPUS[name]) == utf8(CORPUS[name])
    # Thai tone marks and Arabic vowel signs follow letters that do not decompose.
    assert text_token_bound("ก\u0e48ข\u0e38 ب\u064eت\u0651") == utf8(
        "ก\u0e48ข\u0e38 ب\u064eت\u0651"
    )
    assert estimate_prompt_tokens(chat_body("hello")) <= prompt_token_bound(chat_body("hello"))
