"""Real tokenizers, offline: the files in ``files/`` (where each comes from: files/README.md),
loaded by the libraries made for them (tiktoken, Hugging Face tokenizers, sentencepiece).

``tokenizers()`` lists them with the fake upstream's own counting rule first. Each counts a
text the way a provider counts the text of a prompt: special-token strings in it are
ordinary text (tiktoken's ``disallowed_special=()``), and the tokenizer's own normaliser
applies (Qwen 2 and later normalise to NFC; Anthropic's legacy tokenizer to NFKC).
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

FILES = Path(__file__).resolve().parent / "files"

# SHA-256 of each file's decompressed content. The two OpenAI files are the ones tiktoken
# itself checks when it downloads them (tiktoken_ext/openai_public.py, expected_hash).
SHA256 = {
    "o200k_base.tiktoken.gz": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base.tiktoken.gz": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "qwen.tiktoken.gz": "b2b1b8dfb5cc5f024bafc373121c6aba3f66f9a5a0269e243470a1de16a33186",
}

# Qwen's split rule (dashscope/tokenizers/qwen_tokenizer.py, PAT_STR; the same in Qwen 2's
# tokenizer.json).
QWEN_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
# Tekken's split rule (mistral_common/data/tekken_240911.json, config.pattern).
TEKKEN_PATTERN = (
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"""
    r"""|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"""
    r"""|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


@dataclass(frozen=True)
class Tokenizer:
    name: str  # a short column name
    serves: str  # the models that use it
    count: Callable[[str], int]


def read(name: str) -> bytes:
    return gzip.decompress((FILES / name).read_bytes())


def sha256(name: str) -> str:
    return hashlib.sha256(read(name)).hexdigest()


def _ranks(name: str) -> dict[bytes, int]:
    ranks = {}
    for line in read(name).splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _tiktoken(name: str, file: str, pattern: str) -> Callable[[str], int]:
    import tiktoken

    encoding = tiktoken.Encoding(
        name, pat_str=pattern, mergeable_ranks=_ranks(file), special_tokens={}
    )
    return lambda text: len(encoding.encode_ordinary(text))


def _openai(name: str) -> Callable[[str], int]:
    """tiktoken's own definition of an OpenAI encoding (split rule, special tokens), with the
    vendored ranks instead of the download."""
    import tiktoken
    from tiktoken_ext import openai_public

    original = openai_public.load_tiktoken_bpe
    openai_public.load_tiktoken_bpe = lambda *args, **kwargs: _ranks(f"{name}.tiktoken.gz")
    try:
        definition = getattr(openai_public, name)()
    finally:
        openai_public.load_tiktoken_bpe = original
    encoding = tiktoken.Encoding(**definition)
    return lambda text: len(encoding.encode(text, disallowed_special=()))


def _hugging_face(file: str) -> Callable[[str], int]:
    from tokenizers import Tokenizer as HFTokenizer

    tokenizer = HFTokenizer.from_str(read(file).decode())
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


def _sentencepiece(file: str) -> Callable[[str], int]:
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_proto=read(file))
    return lambda text: len(processor.encode(text))


def _fake() -> Callable[[str], int]:
    from fake_upstream.tokens import count_tokens

    return count_tokens


@functools.cache
def tokenizers() -> tuple[Tokenizer, ...]:
    qwen = _tiktoken("qwen", "qwen.tiktoken.gz", QWEN_PATTERN)
    return (
        Tokenizer("fake", "Baton's fake upstream (the tests' provider)", _fake()),
        Tokenizer("o200k", "OpenAI GPT-4o, GPT-4.1, GPT-5, o-series", _openai("o200k_base")),
        Tokenizer("cl100k", "OpenAI GPT-4, GPT-3.5, embeddings v3", _openai("cl100k_base")),
        Tokenizer(
            "qwen",
            "Qwen 2, 2.5, 3 (NFC, then the Qwen vocabulary)",
            lambda text: qwen(unicodedata.normalize("NFC", text)),
        ),
        Tokenizer("deepseek", "DeepSeek V4", _hugging_face("deepseek_v4_tokenizer.json.gz")),
        Tokenizer(
            "tekken",
            "Mistral NeMo, Large 2, Small 3, Pixtral (Tekken)",
            _tiktoken("tekken", "mistral_tekken_240911.tiktoken.gz", TEKKEN_PATTERN),
        ),
        Tokenizer(
            "mistral-sp",
            "Mistral 7B, Mixtral (SentencePiece with byte fallback, like Llama 2)",
            _sentencepiece("mistral_tokenizer.model.v1.gz"),
        ),
        Tokenizer(
            "claude-legacy",
            "Anthropic's published tokenizer (Claude 2 era; NFKC)",
            _hugging_face("claude_legacy_tokenizer.json.gz"),
        ),
    )
