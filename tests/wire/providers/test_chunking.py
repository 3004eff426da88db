"""Network reads cut streams anywhere: the output must not depend on where."""

from __future__ import annotations

import random

import pytest

from wire.providers import get_adapter

from .helpers import fixture, random_pieces, translate, upstream

STREAMS = [
    ("openai", "openai", "openai_stream_usage.sse"),
    ("openai", "openai", "openai_stream_tools.sse"),
    ("moonshot", "openai", "moonshot_stream.sse"),
    ("siliconflow", "openai", "siliconflow_stream.sse"),
    ("deepseek", "openai", "deepseek_stream.sse"),
    ("zhipu", "openai", "zhipu_stream.sse"),
    ("gemini", "openai", "gemini_stream.sse"),
    ("minimax", "openai", "minimax_stream.sse"),
    ("azure", "azure", "azure_stream.sse"),
    ("anthropic", "anthropic", "anthropic_stream.sse"),
    ("anthropic", "anthropic", "anthropic_stream_error.sse"),
]


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Converted streams carry a ``created`` time: runs a second apart must still compare."""
    monkeypatch.setattr("wire.providers.anthropic._now", lambda: 1_700_000_000.0)


def _run(provider: str, family: str, pieces: list[bytes], wants_usage: bool) -> tuple[object, ...]:
    target = upstream(provider, family)
    translator = get_adapter(family).stream_translator(
        "chat", target, client_wants_usage=wants_usage
    )
    out = translate(translator, pieces)
    error = translator.error and translator.error.openai_body()
    return out, translator.usage, translator.completion_chars, error, translator.saw_done


@pytest.mark.parametrize(("provider", "family", "name"), STREAMS)
@pytest.mark.parametrize("wants_usage", [True, False])
def test_byte_by_byte_and_random_splits_match_a_single_read(
    provider: str, family: str, name: str, wants_usage: bool
) -> None:
    data = fixture(name)
    whole = _run(provider, family, [data], wants_usage)

    byte_by_byte = [data[i : i + 1] for i in range(len(data))]
    assert _run(provider, family, byte_by_byte, wants_usage) == whole

    rng = random.Random(f"{name}-{wants_usage}")
    for _ in range(25):
        assert _run(provider, family, random_pieces(data, rng), wants_usage) == whole


@pytest.mark.parametrize(("provider", "family", "name"), STREAMS)
def test_crlf_framing_gives_the_same_usage_and_text_counts(
    provider: str, family: str, name: str
) -> None:
    data = fixture(name)
    crlf = data.replace(b"\n", b"\r\n")
    _, usage, chars, error, done = _run(provider, family, [data], True)
    _, crlf_usage, crlf_chars, crlf_error, crlf_done = _run(provider, family, [crlf], True)

    assert (crlf_usage, crlf_chars, crlf_error, crlf_done) == (usage, chars, error, done)
