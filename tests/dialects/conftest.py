"""The relay fixtures (a running Baton and the fake upstream) for the dialect tests, and a
team with two ways to answer a Messages client: ``claude-native`` (Anthropic's own Messages,
passed through) and ``claude-translated`` (a chat-only provider, through the chat pivot)."""

from typing import Any

import anthropic
import pytest

from tests.relay import conftest as relay_fixtures
from tests.relay.conftest import Relay, make_credential, make_route

# The relay tests' fixtures: a running Baton, the fake upstream and a flushed test Redis.
fake_upstream = relay_fixtures.fake_upstream
fake = relay_fixtures.fake
redis_client = relay_fixtures.redis_client
relay = relay_fixtures.relay

NATIVE_MODEL = "claude-sonnet-4-5"  # what claude-native resolves to (priced in the catalog)
TRANSLATED_MODEL = "gpt-4o"  # what claude-translated resolves to
# The fake's chat flavors take max_tokens as the reply length, which a Messages client always
# sends: chunks=20 makes a natural 20-token answer that ends with end_turn.
TRANSLATED_BASE = "/_f/chunks=20/v1"


@pytest.fixture
def messages(relay: Relay, fake: Any) -> Relay:
    native = make_credential(
        relay.team, "anthropic", fake.base_url + "/anthropic/v1", provider="anthropic"
    )
    chat_only = make_credential(relay.team, "chat-only", fake.base_url + TRANSLATED_BASE)
    make_route(relay.team, "claude-native", (native, NATIVE_MODEL, 0))
    make_route(relay.team, "claude-translated", (chat_only, TRANSLATED_MODEL, 0))
    return relay


def client(relay: Relay, api_key: str | None = None, **kwargs: Any) -> anthropic.Anthropic:
    """The official SDK at Baton's root, without retries (one request per call)."""
    kwargs.setdefault("max_retries", 0)
    return anthropic.Anthropic(base_url=relay.base_url, api_key=api_key or relay.key, **kwargs)
