"""Adapters are looked up by family."""

from __future__ import annotations

import pytest

from wire.providers import FAMILIES, get_adapter
from wire.providers.anthropic import AnthropicAdapter
from wire.providers.azure import AzureAdapter
from wire.providers.openai_compat import OpenAICompatAdapter


def test_each_family_has_one_shared_adapter() -> None:
    assert FAMILIES == ("openai", "azure", "anthropic")
    assert isinstance(get_adapter("openai"), OpenAICompatAdapter)
    assert isinstance(get_adapter("azure"), AzureAdapter)
    assert isinstance(get_adapter("anthropic"), AnthropicAdapter)
    assert get_adapter("openai") is get_adapter("openai")


def test_an_unknown_family_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match="gemini-native"):
        get_adapter("gemini-native")
