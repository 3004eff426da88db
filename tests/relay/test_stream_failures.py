"""Failures during a stream: after the first byte there is no fallback, so the
client gets an OpenAI-style error event and a clean end; before it, Baton
falls over to the next target."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from django.core.asgi import get_asgi_application

from config.routing import build_application
from tests.fake_upstream.conftest import ServerThread, sse_data
from tests.polling import relay_app, until
from tests.relay.conftest import Relay, make_credential, make_route
from tests.relay.test_relay_sdk import usage_events

# Typed loosely: the SDK's TypedDicts add nothing to these tests.
MESSAGES: Any = [{"role": "user", "content": "stream please"}]


def stream_raw(relay: Relay, model: str) -> list[Any]:
    with httpx.stream(
        "POST",
        relay.base_url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {relay.key}"},
        json={"model": model, "messages": MESSAGES, "stream": True},
        timeout=10,
    ) as response:
        assert response.status_code == 200
        return sse_data(response.read().decode())


@pytest.mark.parametrize(
    ("directive", "code"),
    [
        ("error_after=3", None),
        # chunk_ms: the first events must reach Baton before the connection drops,
        # or the drop happens before the first byte and Baton falls over instead.
        ("drop_after=3,chunk_ms=50", "upstream_stream_broken"),
        ("malformed_at=3", "upstream_malformed_chunk"),
    ],
)
def test_mid_stream_failure_becomes_an_error_event(
    relay: Relay, fake: Any, redis_client: Any, directive: str, code: str | None
) -> None:
    credential = make_credential(relay.team, "flaky", f"{fake.base_url}/_f/{directive}/v1")
    make_route(relay.team, "flaky", (credential, "demo-chat", 0))
    events = stream_raw(relay, "flaky")
    errors = [e for e in events if isinstance(e, dict) and "error" in e]
    assert len(errors) == 1 and errors[0]["error"]["message"]
    if code:
        assert errors[0]["error"]["code"] == code
    assert events[-1] == errors[0] or events[-1] == "[DONE]"
    [event] = usage_events(redis_client, 1)
    assert event.error_class and event.streamed


def test_the_sdk_raises_on_an_error_event(relay: Relay, fake: Any) -> None:
    credential = make_credential(relay.team, "flaky", f"{fake.base_url}/_f/error_after=3/v1")
    make_route(relay.team, "flaky", (credential, "demo-chat", 0))
    with pytest.raises(openai.APIError):
        list(relay.client().chat.completions.create(model="flaky", messages=MESSAGES, stream=True))


def test_slow_first_byte_falls_over_before_anything_was_sent(relay: Relay, fake: Any) -> None:
    slow = make_credential(relay.team, "slow", f"{fake.base_url}/_f/first_byte_ms=5000/v1")
    healthy = make_credential(relay.team, "healthy", fake.base_url + "/v1")
    make_route(relay.team, "resilient", (slow, "demo-chat", 0), (healthy, "demo-fast", 1))
    raw = relay.client().chat.completions.with_raw_response.create(
        model="resilient", messages=MESSAGES, stream=True
    )
    assert raw.headers["x-baton-model"] == "demo-fast"
    assert list(raw.parse())


def test_cooldown_is_shared_between_processes(relay: Relay, fake: Any) -> None:
    broken = make_credential(relay.team, "broken", f"{fake.base_url}/_f/status=503/v1")
    healthy = make_credential(relay.team, "healthy", fake.base_url + "/v1")
    make_route(relay.team, "shared", (broken, "demo-chat", 0), (healthy, "demo-fast", 1))
    client = relay.client()
    for _ in range(3):  # three failures out of three: the first relay cools the target down
        client.chat.completions.create(model="shared", messages=MESSAGES)
    with ServerThread(build_application(get_asgi_application())) as other:
        other_client = openai.OpenAI(
            base_url=other.base_url + "/v1", api_key=relay.key, max_retries=0
        )
        # Its watcher reads the cooldowns the first relay shared (a few times a second).
        cooldowns = relay_app(other).cooldowns
        until(lambda: any(map(cooldowns.cooling, list(cooldowns.until))), "the shared cooldown")
        fake.http.delete("/_fake/requests")
        for _ in range(3):
            raw = other_client.chat.completions.with_raw_response.create(
                model="shared", messages=MESSAGES
            )
            assert raw.headers["x-baton-model"] == "demo-fast"
        paths = [r["path"] for r in fake.requests()]
        assert not any(p.startswith("/_f/") for p in paths), paths
