"""A warm /v1 request makes no database query at all, on any endpoint."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.db.backends import utils

from accounts.invalidation import VERSION_KEY
from tests.polling import relay_app, until, wait_idle
from tests.relay.conftest import Relay, make_credential, make_route

# Typed loosely: the SDK's TypedDicts add nothing to these tests.
MESSAGES: Any = [{"role": "user", "content": "warm"}]


class QueryCounter:
    """Counts SQL statements from every thread (the relay runs in its own)."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def wrap(self, original: Any) -> Any:
        def counted(cursor: Any, *args: Any, **kwargs: Any) -> Any:
            with self.lock:
                self.count += 1
            return original(cursor, *args, **kwargs)

        return counted


@pytest.fixture
def queries(monkeypatch: pytest.MonkeyPatch) -> Iterator[QueryCounter]:
    counter = QueryCounter()
    monkeypatch.setattr(utils.CursorWrapper, "execute", counter.wrap(utils.CursorWrapper.execute))
    monkeypatch.setattr(
        utils.CursorWrapper, "executemany", counter.wrap(utils.CursorWrapper.executemany)
    )
    yield counter


ANTHROPIC = {"anthropic-version": "2023-06-01"}


def messages_body(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 16, "messages": MESSAGES, **extra}


@pytest.fixture
def messages_routes(relay: Relay, fake: Any) -> None:
    """Messages targets: Anthropic's own (native) and the chat-only primary (translated)."""
    native = make_credential(
        relay.team, "anthropic", fake.base_url + "/anthropic/v1", provider="anthropic"
    )
    chat_only = make_credential(relay.team, "chat-only", fake.base_url + "/_f/chunks=5/v1")
    make_route(relay.team, "claude-native", (native, "claude-sonnet-4-5", 0))
    make_route(relay.team, "claude-translated", (chat_only, "gpt-4o", 0))


def calls(relay: Relay) -> list[tuple[str, str, dict[str, Any] | None, dict[str, str]]]:
    return [
        ("POST", "/v1/chat/completions", {"model": "gpt-4o", "messages": MESSAGES}, {}),
        (
            "POST",
            "/v1/chat/completions",
            {"model": "gpt-4o", "messages": MESSAGES, "stream": True},
            {},
        ),
        ("POST", "/v1/completions", {"model": "gpt-4o", "prompt": "warm"}, {}),
        ("POST", "/v1/embeddings", {"model": "text-embedding-3-small", "input": "warm"}, {}),
        ("GET", "/v1/models", None, {}),
        ("GET", "/v1/models/gpt-4o", None, {}),
        # Messages: native and translated, streamed and not, counting (the upstream's and
        # Baton's own estimate), and the model list in Anthropic's shape.
        ("POST", "/v1/messages?beta=true", messages_body("claude-native"), ANTHROPIC),
        ("POST", "/v1/messages", messages_body("claude-native", stream=True), ANTHROPIC),
        ("POST", "/v1/messages", messages_body("claude-translated"), ANTHROPIC),
        ("POST", "/v1/messages", messages_body("claude-translated", stream=True), ANTHROPIC),
        (
            "POST",
            "/v1/messages/count_tokens",
            {"model": "claude-native", "messages": MESSAGES},
            ANTHROPIC,
        ),
        (
            "POST",
            "/v1/messages/count_tokens",
            {"model": "claude-translated", "messages": MESSAGES},
            ANTHROPIC,
        ),
        ("GET", "/v1/models", None, ANTHROPIC),
        # Responses, translated (gpt-4o's target has no Responses endpoint) and native.
        ("POST", "/v1/responses", {"model": "gpt-4o", "input": "warm"}, {}),
        (
            "POST",
            "/v1/responses",
            {"model": "responses-native", "input": "warm", "stream": True},
            {},
        ),
    ]


@pytest.fixture
def warm_routes(relay: Relay, fake: Any, redis_client: Any, messages_routes: None) -> None:
    """Every route ``calls`` names, with a target serving Responses natively; the relay has
    seen every route change before the test counts (else its cache could evict the team in the middle of the warm requests)."""
    url = fake.base_url + "/v1"
    credential = make_credential(
        relay.team, "responses", url, extras={"dialects": {"responses": url}}
    )
    make_route(relay.team, "responses-native", (credential, "gpt-4o", 0))
    version = int(redis_client.get(VERSION_KEY) or 0)
    cache = relay_app(relay.server).cache
    until(lambda: (cache.version or 0) >= version, "the relay to see the new routes")


def carries_error(response: httpx.Response) -> bool:
    """A 200 that still reports a failure: an error object, or an error event mid-stream.
    (A Response object's ``"error": null`` is no failure.)"""
    if response.headers["content-type"].startswith("application/json"):
        body = response.json()
        return isinstance(body, dict) and (
            body.get("error") is not None or body.get("type") == "error"
        )
    return b"event: error" in response.content or b'"error":{' in response.content


def test_warm_requests_make_zero_queries(
    relay: Relay, warm_routes: None, queries: QueryCounter
) -> None:
    headers = {"authorization": f"Bearer {relay.key}"}
    with httpx.Client(base_url=relay.base_url, headers=headers, timeout=10) as client:
        # Cold: loads key and team, writes last_used_at.
        for method, path, body, extra in calls(relay):
            response = client.request(method, path, json=body, headers=extra)
            assert response.status_code == 200, (path, response.text)
        wait_idle(relay.server)  # the cold requests' bookkeeping (last_used_at) is written
        cold = queries.count
        assert cold > 0  # proves the counter sees the relay thread's queries
        for _ in range(3):
            for method, path, body, extra in calls(relay):
                response = client.request(method, path, json=body, headers=extra)
                assert response.status_code == 200, (path, response.text)
                assert not carries_error(response), (path, response.text)
        wait_idle(relay.server)  # anything the warm requests started off the response path
    assert queries.count == cold, f"{queries.count - cold} queries on the warm path"
