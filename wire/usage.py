"""Reading provider usage objects into :class:`Usage`.

OpenAI-compatible providers agree on ``prompt_tokens``/``completion_tokens``
and disagree on everything else (each provider's API page; docs/providers.md
lists them): cache hits are ``prompt_tokens_details.cached_tokens`` (OpenAI,
Zhipu, DeepSeek), a top-level ``cached_tokens`` (Moonshot, StepFun) or
``prompt_cache_hit_tokens`` (DeepSeek); some send only ``total_tokens``; Gemini has been seen without
``completion_tokens`` and leaves thinking tokens out of it (they are only in
``total_tokens``). Anthropic reports input *excluding* cache reads and
writes, so its prompt total is the sum of the three.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wire.base import Usage


def usage_from_openai(raw: Mapping[str, Any]) -> tuple[Usage, bool]:
    """(usage, whether the completion count was reported) of an OpenAI-style usage object."""
    prompt = _int(raw.get("prompt_tokens"))
    completion_known = True
    if _is_int(raw.get("completion_tokens")):
        completion = _int(raw.get("completion_tokens"))
    elif _is_int(raw.get("total_tokens")):
        completion = max(0, _int(raw.get("total_tokens")) - prompt)
    else:
        completion = 0
        completion_known = False

    prompt_details = _dict(raw.get("prompt_tokens_details"))
    cached = max(
        _int(prompt_details.get("cached_tokens")),
        _int(raw.get("cached_tokens")),
        _int(raw.get("prompt_cache_hit_tokens")),
    )
    cache_write = max(
        _int(prompt_details.get("cache_write_tokens")),
        _int(raw.get("cache_creation_input_tokens")),
    )
    reasoning = _int(_dict(raw.get("completion_tokens_details")).get("reasoning_tokens"))

    # A subset larger than its whole means the provider counted it separately
    # (gateways that relay Anthropic or Gemini counts verbatim); add it rather
    # than clamp, so nothing billed upstream goes unbilled here.
    if cached + cache_write > prompt:
        prompt += cached + cache_write
    # Gemini reports thinking tokens in total_tokens but not in
    # completion_tokens; the provider bills them as output, so does Baton.
    total = _int(raw.get("total_tokens"))
    if total > prompt + completion:
        completion = total - prompt
    if reasoning > completion:
        completion += reasoning
    usage = Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        cache_write_tokens=cache_write,
        reasoning_tokens=reasoning,
    )
    return usage, completion_known


def usage_from_anthropic(raw: Mapping[str, Any]) -> Usage:
    """A Messages usage object: input excludes cache reads and writes; writes may be split
    by lifetime in ``cache_creation`` (five minutes and one hour, priced differently)."""
    cache_read = _int(raw.get("cache_read_input_tokens"))
    split = _dict(raw.get("cache_creation"))
    written_1h = _int(split.get("ephemeral_1h_input_tokens"))
    cache_write = max(
        _int(raw.get("cache_creation_input_tokens")),
        _int(split.get("ephemeral_5m_input_tokens")) + written_1h,
    )
    return Usage(
        prompt_tokens=_int(raw.get("input_tokens")) + cache_read + cache_write,
        completion_tokens=_int(raw.get("output_tokens")),
        cached_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=min(written_1h, cache_write),
    )


def usage_from_responses(raw: Mapping[str, Any]) -> Usage:
    """A Responses API usage object (developers.openai.com/api/docs/guides/prompt-caching):
    ``input_tokens`` includes ``input_tokens_details.cached_tokens`` and, from GPT-5.6 on,
    ``cache_write_tokens``; ``output_tokens`` includes ``output_tokens_details.reasoning_tokens``.
    A subset larger than its whole was counted apart and is added, as for chat."""
    prompt = _int(raw.get("input_tokens"))
    completion = _int(raw.get("output_tokens"))
    details = _dict(raw.get("input_tokens_details"))
    cached = _int(details.get("cached_tokens"))
    cache_write = _int(details.get("cache_write_tokens"))
    reasoning = _int(_dict(raw.get("output_tokens_details")).get("reasoning_tokens"))
    if cached + cache_write > prompt:
        prompt += cached + cache_write
    if reasoning > completion:
        completion += reasoning
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        cache_write_tokens=cache_write,
        reasoning_tokens=reasoning,
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int(value: Any) -> int:
    return int(value) if _is_int(value) and value > 0 else 0


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


class MessagesUsage:
    """Usage of a Messages stream as it arrives: ``message_start`` has the input counts,
    ``message_delta`` the cumulative output (and, from some gateways, the real input counts
    that ``message_start`` sent as 0). Each field keeps the largest value seen."""

    __slots__ = ("_fields", "usage")

    _NAMES = (
        "input_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "output_tokens",
    )

    def __init__(self) -> None:
        self._fields: dict[str, int] = {}
        self.usage = Usage()

    def take(self, raw: Mapping[str, Any]) -> Usage:
        fields = self._fields
        for name in self._NAMES:
            fields[name] = max(fields.get(name, 0), _int(raw.get(name)))
        split = _dict(raw.get("cache_creation"))
        for name in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"):
            fields[name] = max(fields.get(name, 0), _int(split.get(name)))
        self.usage = usage_from_anthropic(
            {
                **{name: fields[name] for name in self._NAMES},
                "cache_creation": {
                    "ephemeral_5m_input_tokens": fields["ephemeral_5m_input_tokens"],
                    "ephemeral_1h_input_tokens": fields["ephemeral_1h_input_tokens"],
                },
            }
        )
        return self.usage
