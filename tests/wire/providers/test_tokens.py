"""Offline token estimates for English, Chinese and request bodies."""

from __future__ import annotations

import time

from wire.tokens import estimate_prompt_tokens, estimate_text_tokens, text_token_units


def test_empty_text_is_zero_and_any_text_at_least_one() -> None:
    assert estimate_text_tokens("") == 0
    assert estimate_text_tokens("a") == 1


def test_english_is_about_four_characters_per_token() -> None:
    text = "The quick brown fox jumps over the lazy dog."  # 44 characters

    assert estimate_text_tokens(text) == 11


def test_chinese_is_one_token_per_character() -> None:
    # The fullwidth comma is a wide character too.
    assert estimate_text_tokens("你好，世界") == 5  # noqa: RUF001


def test_mixed_scripts_are_counted_by_class() -> None:
    # 5 ASCII (1 unit each) + 2 CJK (4) + 6 Cyrillic (2) + 1 emoji (8) = 33 units.
    text = "GPT-4模型привет😀"  # noqa: RUF001 - Cyrillic on purpose

    assert text_token_units(text) == 5 + 2 * 4 + 6 * 2 + 8
    assert estimate_text_tokens(text) == 9


def test_lone_surrogates_do_not_raise() -> None:
    assert estimate_text_tokens("a\ud800b") == 2


def test_prompt_estimate_of_a_chat_body() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "Be brief."},  # 9 units
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "你好"},  # 8 units
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"function": {"name": "f", "arguments": '{"a":1}'}}],  # 8 units
            },
        ]
    }

    # 3 priming + 3 x 4 per message + 765 per image + ceil(25 / 4).
    assert estimate_prompt_tokens(body) == 3 + 12 + 765 + 7


def test_prompt_estimate_of_completions_and_embeddings_bodies() -> None:
    assert estimate_prompt_tokens({"prompt": "abcdefgh"}) == 2
    assert estimate_prompt_tokens({"prompt": ["abcd", "efgh"]}) == 2
    assert estimate_prompt_tokens({"input": [[1, 2, 3], [4, 5]]}) == 5
    assert estimate_prompt_tokens({"input": [1, 2, 3]}) == 3
    assert estimate_prompt_tokens({"input": "中文"}) == 2


def test_tools_count_towards_the_prompt() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]  # 46 bytes of JSON
    assert estimate_prompt_tokens({"messages": [], "tools": tools}) == 3 + 12


def test_a_large_input_is_estimated_quickly() -> None:
    text = ("Hello, 世界! " * 100_000)[:1_000_000]
    started = time.perf_counter()
    estimate_text_tokens(text)
    # Generous bound: a regression to a per-character Python loop takes ~50x longer.
    assert time.perf_counter() - started < 0.5
