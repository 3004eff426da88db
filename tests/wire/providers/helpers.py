"""Shared helpers for the provider protocol tests: fixtures, upstreams, SSE feeding."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson

from wire.base import StreamTranslator
from wire.providers import Upstream

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def upstream(provider: str = "openai", family: str = "openai", **overrides: Any) -> Upstream:
    fields: dict[str, Any] = {
        "provider": provider,
        "family": family,
        "base_url": "https://api.example.com/v1",
        "api_key": "sk-test",
        "model": "gpt-4o",
    }
    fields.update(overrides)
    return Upstream(**fields)


def sse_events(data: bytes) -> list[bytes]:
    """Raw events of a well-formed "\\n\\n"-separated stream, terminators kept."""
    return [part + b"\n\n" for part in data.split(b"\n\n") if part]


def translate(translator: StreamTranslator, pieces: list[bytes]) -> bytes:
    out = b"".join(translator.feed(piece) for piece in pieces)
    return out + translator.finish()


def random_pieces(data: bytes, rng: random.Random, max_size: int = 40) -> list[bytes]:
    pieces = []
    i = 0
    while i < len(data):
        size = rng.randint(1, max_size)
        pieces.append(data[i : i + size])
        i += size
    return pieces


def payloads(out: bytes) -> list[Any]:
    """The data of each event in a translated stream: parsed JSON, or "[DONE]"."""
    result: list[Any] = []
    for event in sse_events(out):
        assert event.startswith(b"data: "), event
        data = event[len(b"data: ") : -2]
        result.append("[DONE]" if data == b"[DONE]" else orjson.loads(data))
    return result


def body_of(request_body: bytes | None) -> dict[str, Any]:
    assert request_body is not None
    parsed = orjson.loads(request_body)
    assert isinstance(parsed, dict)
    return parsed
