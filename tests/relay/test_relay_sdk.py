"""The relay driven by the official openai SDK, end to end."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import openai
import orjson
import pytest

from accounts.models import ApiKey
from billing.events import STREAM_KEY, UsageEvent
from scripts.services import free_port
from tests.ops.test_metrics import scrape, total
from tests.polling import until
from tests.relay.conftest import Relay, make_credential, make_key, make_route

# Typed loosely: the SDK's TypedDicts add nothing to these tests.
MESSAGES: Any = [{"role": "user", "content": "Say hello to the relay"}]


def usage_events(redis_client: Any, expected: int, timeout: float = 3.0) -> list[UsageEvent]:
    deadline = time.monotonic() + timeout
    while True:
        entries = redis_client.xrange(STREAM_KEY)
        if len(entries) >= expected or time.monotonic() > deadline:
            return [UsageEvent.from_json(fields[b"event"]) for _, fields in entries]
        time.sleep(0.02)


def test_chat_completion_non_streaming(relay: Relay, redis_client: Any) -> None:
    raw = relay.client().chat.completions.with_raw_response.create(
        model="gpt-4o", messages=MESSAGES, max_tokens=5
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens == 5
    assert raw.headers["x-baton-provider"] == "openai"
    assert raw.headers["x-baton-model"] == "demo-chat"
    assert raw.headers["x-request-id"].startswith("req_")
    assert float(raw.headers["x-baton-overhead-ms"]) >= 0
    [event] = usage_events(redis_client, 1)
    assert event.request_id == raw.headers["x-request-id"]
    assert (event.status, event.alias, event.upstream_model) == (200, "gpt-4o", "demo-chat")
    assert event.completion_tokens == 5 and event.prompt_tokens == completion.usage.prompt_tokens
    assert not event.estimated and not event.streamed


def test_streaming_with_usage(relay: Relay, redis_client: Any) -> None:
    stream = relay.client().chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        max_tokens=7,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text.split()) == 7
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7
    [event] = usage_events(redis_client, 1)
    assert event.streamed and event.completion_tokens == 7 and not event.estimated
    assert event.ttfb_ms is not None


def test_streaming_without_usage_hides_it_but_still_meters(
    relay: Relay, redis_client: Any, fake: Any
) -> None:
    chunks = list(
        relay.client().chat.completions.create(
            model="gpt-4o", messages=MESSAGES, max_tokens=4, stream=True
        )
    )
    assert all(c.usage is None for c in chunks)
    # Baton asked the upstream for usage anyway.
    assert fake.requests()[-1]["body"]["stream_options"] == {"include_usage": True}
    [event] = usage_events(redis_client, 1)
    assert event.completion_tokens == 4 and not event.estimated


def test_tool_calls_stream(relay: Relay) -> None:
    tools: Any = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
            },
        }
    ]
    chunks = list(
        relay.client().chat.completions.create(
            model="gpt-4o", messages=MESSAGES, tools=tools, stream=True
        )
    )
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].function is not None and calls[0].function.name == "lookup"
    arguments = "".join(tc.function.arguments or "" for tc in calls if tc.function)
    assert orjson.loads(arguments) == {"q": "Say"}
    assert [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ] == ["tool_calls"]


def test_embeddings_and_models(relay: Relay) -> None:
    client = relay.client()
    credential_model = "text-embedding-3-small"  # offered by the openai provider entry
    result = client.embeddings.create(model=credential_model, input=["one", "two"])
    assert len(result.data) == 2 and result.usage.prompt_tokens > 0
    ids = {m.id for m in client.models.list()}
    assert {"gpt-4o", "text-embedding-3-small"} <= ids
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_models_requests_are_counted_and_logged_with_their_status(
    relay: Relay, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.BATON_REQUEST_LOG = "all"
    caplog.set_level(logging.INFO, logger="baton.requests")
    before = scrape(relay.base_url)
    client = relay.client()
    assert {m.id for m in client.models.list()} >= {"gpt-4o"}
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")
    forged = httpx.get(
        relay.base_url + "/v1/models/x%0Amodels%20gpt-4o%20-%3E%20-%20200",
        headers={"authorization": f"Bearer {relay.key}"},
    )
    assert forged.status_code == 404

    def counted(after: dict[Any, float], status: str, **labels: str) -> float:
        # The registry is the process's: other tests' requests are in it too.
        return total(after, "baton_requests_total", status=status, **labels) - total(
            before, "baton_requests_total", status=status, **labels
        )

    def lines() -> list[tuple[str, int]]:
        return [
            (r.getMessage(), vars(r)["status"])
            for r in caplog.records
            if r.name == "baton.requests"
        ]

    # A request is counted and logged once its response is out: the client can be first.
    def settled() -> dict[Any, float] | None:
        scraped = scrape(relay.base_url)
        done = counted(scraped, "404", endpoint="models") >= 2 and len(lines()) >= 4
        return scraped if done else None

    after = until(settled, "the last request counted and logged")
    assert (
        counted(after, "200", endpoint="models"),
        counted(after, "404", endpoint="models"),
    ) == (2, 2)
    assert counted(after, "500") == 0
    assert lines() == [
        ("models  -> - 200", 200),
        ("models gpt-4o -> - 200", 200),
        ("models nope -> - 404", 404),
        ("models  -> - 404", 404),  # a name that could forge a log line is not logged
    ]


def test_key_may_arrive_in_other_headers(relay: Relay, redis_client: Any) -> None:
    other = make_key(relay.team, name="other key")
    sent = [
        ({"api-key": relay.key}, relay.key),
        ({"x-api-key": other}, other),
        # Bearer wins over the others, whichever comes first.
        ({"x-api-key": relay.key, "authorization": f"Bearer {other}"}, other),
        ({"authorization": f"bearer {relay.key}", "api-key": other}, relay.key),
    ]
    key_ids = {}
    for headers, key in sent:
        response = httpx.post(
            relay.base_url + "/v1/chat/completions",
            headers=headers,
            json={"model": "gpt-4o", "messages": MESSAGES, "max_tokens": 3},
        )
        assert response.status_code == 200, response.text
        completion = response.json()
        assert completion["choices"][0]["message"]["content"]
        assert completion["usage"]["completion_tokens"] == 3
        key_ids[response.headers["x-request-id"]] = key
    events = usage_events(redis_client, len(sent))
    assert len(events) == len(sent)
    ids = dict(ApiKey.objects.filter(team=relay.team).values_list("name", "pk"))
    by_token = {relay.key: str(ids["test key"]), other: str(ids["other key"])}
    assert {e.request_id: e.api_key_id for e in events} == {
        request_id: by_token[key] for request_id, key in key_ids.items()
    }
    assert all(e.completion_tokens == 3 for e in events)
    # A wrong key in any of the headers is refused.
    for name in ("authorization", "api-key", "x-api-key"):
        wrong = "sk-baton-" + "W" * 32
        value = f"Bearer {wrong}" if name == "authorization" else wrong
        response = httpx.post(
            relay.base_url + "/v1/chat/completions",
            headers={name: value},
            json={"model": "gpt-4o", "messages": MESSAGES},
        )
        assert response.status_code == 401 and response.json()["error"]["code"] == (
            "invalid_api_key"
        )


def test_error_shapes(relay: Relay, settings: Any) -> None:
    with pytest.raises(openai.AuthenticationError) as bad_key:
        relay.client(key="sk-baton-" + "x" * 32).chat.completions.create(
            model="gpt-4o", messages=MESSAGES
        )
    assert bad_key.value.code == "invalid_api_key"
    with pytest.raises(openai.NotFoundError) as unknown:
        relay.client().chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert unknown.value.code == "model_not_found"
    invalid = httpx.post(
        relay.base_url + "/v1/chat/completions",
        content=b"{nope",
        headers={"authorization": f"Bearer {relay.key}"},
    )
    assert invalid.status_code == 400 and invalid.json()["error"]["code"] == "invalid_json"
    huge = httpx.post(
        relay.base_url + "/v1/chat/completions",
        content=b"x" * (settings.BATON_MAX_BODY_BYTES + 1),
        headers={"authorization": f"Bearer {relay.key}"},
    )
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "request_too_large"


def test_key_limited_to_models(relay: Relay) -> None:
    limited = make_key(relay.team, name="limited", allowed_models=["gpt-4o"])
    client = relay.client(key=limited)
    assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="text-embedding-3-small", messages=MESSAGES)
    assert {m.id for m in client.models.list()} == {"gpt-4o"}


def test_rejected_provider_credential_is_an_upstream_failure(relay: Relay, fake: Any) -> None:
    bad = make_credential(
        relay.team, "revoked upstream", fake.base_url + "/v1", secret="bad-upstream-key-9999"
    )
    make_route(relay.team, "only-bad", (bad, "demo-chat", 0))
    with pytest.raises(openai.APIStatusError) as failure:
        relay.client().chat.completions.create(model="only-bad", messages=MESSAGES)
    assert failure.value.status_code == 502
    assert "revoked upstream" in failure.value.message
    assert "bad-upstream-key" not in failure.value.message


@pytest.mark.parametrize("directive", ["status=500", "status=429,retry_after=1", "latency_ms=5000"])
def test_falls_over_to_the_next_target(
    relay: Relay, fake: Any, redis_client: Any, directive: str
) -> None:
    broken = make_credential(relay.team, "broken", f"{fake.base_url}/_f/{directive}/v1")
    healthy = make_credential(relay.team, "healthy", fake.base_url + "/v1")
    make_route(relay.team, "resilient", (broken, "demo-chat", 0), (healthy, "demo-fast", 1))
    raw = relay.client().chat.completions.with_raw_response.create(
        model="resilient", messages=MESSAGES
    )
    assert raw.http_response.status_code == 200
    assert raw.headers["x-baton-model"] == "demo-fast"
    [event] = usage_events(redis_client, 1)
    assert event.attempts == 2 and event.credential_id == str(healthy.pk)


def test_an_unreachable_target_falls_over_and_the_log_says_why(
    relay: Relay, fake: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens on the first target's port: the request goes to the next, and the
    operator's log names the cause (refused, not reset or timed out), not the URL, which
    for some providers carries the key."""
    closed = free_port()
    dead = make_credential(relay.team, "dead", f"http://127.0.0.1:{closed}/v1?key=sk-in-url-9")
    healthy = make_credential(relay.team, "healthy", fake.base_url + "/v1")
    make_route(relay.team, "resilient", (dead, "demo-chat", 0), (healthy, "demo-fast", 1))
    with caplog.at_level(logging.WARNING, logger="baton.relay"):
        raw = relay.client().chat.completions.with_raw_response.create(
            model="resilient", messages=MESSAGES
        )
    assert raw.http_response.status_code == 200
    assert raw.headers["x-baton-model"] == "demo-fast"
    [line] = [
        r.getMessage() for r in caplog.records if "failed before its response" in r.getMessage()
    ]
    assert "(dead)" in line and "ECONNREFUSED" in line, line
    assert "sk-in-url-9" not in caplog.text and str(closed) not in line


def test_no_retry_on_a_request_error(relay: Relay, fake: Any) -> None:
    broken = make_credential(relay.team, "picky", f"{fake.base_url}/_f/status=400/v1")
    healthy = make_credential(relay.team, "healthy", fake.base_url + "/v1")
    make_route(relay.team, "strict", (broken, "demo-chat", 0), (healthy, "demo-fast", 1))
    with pytest.raises(openai.BadRequestError):
        relay.client().chat.completions.create(model="strict", messages=MESSAGES)
    assert [r["path"] for r in fake.requests()].count("/v1/chat/completions") == 0


def test_client_disconnect_cancels_upstream_and_meters_estimate(
    relay: Relay, fake: Any, redis_client: Any
) -> None:
    slow = make_credential(relay.team, "slow", f"{fake.base_url}/_f/chunk_ms=200,chunks=50/v1")
    make_route(relay.team, "slow", (slow, "demo-chat", 0))
    with httpx.stream(
        "POST",
        relay.base_url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {relay.key}"},
        json={"model": "slow", "messages": MESSAGES, "stream": True},
    ) as response:
        received = 0
        for line in response.iter_lines():
            if line.startswith("data: "):
                received += 1
            if received >= 3:
                break
    history = fake.wait_for(lambda h: any(r.get("cancelled") for r in h), timeout=1.5)
    assert any(r.get("cancelled") for r in history), history
    [event] = usage_events(redis_client, 1)
    assert event.status == 499 and event.estimated and event.completion_tokens >= 1
