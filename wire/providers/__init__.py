"""Provider adapters: how Baton speaks each upstream's wire format.

``get_adapter(upstream.family)`` returns the module-level adapter of a family.
Adding a family is one module plus one line in ``_ADAPTERS``; adding an
OpenAI-compatible provider with request quirks is one entry in
:data:`wire.providers.quirks.QUIRKS` (see README.md in this package, and
ARCHITECTURE.md at the repository root, "Where to add: a provider").
"""

from __future__ import annotations

from wire.base import (
    Adapter,
    Endpoint,
    StreamTranslator,
    Upstream,
    UpstreamError,
    UpstreamRequest,
    Usage,
)

from .anthropic import AnthropicAdapter
from .azure import AzureAdapter
from .openai_compat import OpenAICompatAdapter

__all__ = [
    "FAMILIES",
    "Adapter",
    "Endpoint",
    "StreamTranslator",
    "Upstream",
    "UpstreamError",
    "UpstreamRequest",
    "Usage",
    "get_adapter",
]

_ADAPTERS: dict[str, Adapter] = {
    "openai": OpenAICompatAdapter(),
    "azure": AzureAdapter(),
    "anthropic": AnthropicAdapter(),
}

FAMILIES: tuple[str, ...] = tuple(_ADAPTERS)


def get_adapter(family: str) -> Adapter:
    try:
        return _ADAPTERS[family]
    except KeyError:
        raise LookupError(f"unknown provider family {family!r}") from None
