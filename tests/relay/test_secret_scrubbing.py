"""A provider that echoes the key it was sent never makes Baton pass the team's secret on.

The fake upstream's ``echo_key`` fault puts the presented key (whole, its first 12
characters, or URL-encoded) into its error messages; whatever reaches the client, the
usage ledger, the metrics or the logs must not contain it in any of those forms.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from prometheus_client import REGISTRY

from tests.relay.conftest import Relay, make_credential, make_route
from tests.relay.test_relay_sdk import usage_events

# Reserved characters, so that the URL-encoded form differs from the secret itself.
SECRET = "sk-Echo+Fake/Key=7c41d9a2e85f03b6"
MESSAGES: Any = [{"role": "user", "content": "echo test"}]
FORMS = ["full", "prefix", "url"]


def leaks(text: str) -> list[str]:
    """The forms of SECRET found in ``text`` (its first 12 characters catch every form)."""
    found = [form for form in (SECRET[:12], quote(SECRET, safe="")[:12]) if form in text]
    return found + (["url-encoded"] if quote(SECRET, safe="")[9:21] in text else [])


def post(relay: Relay, model: str, *, stream: bool) -> httpx.Response:
    return httpx.post(
        relay.base_url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {relay.key}"},
        json={"model": model, "messages": MESSAGES, "stream": stream},
        timeout=10,
    )


def echoing_route(relay: Relay, fake: Any, directive: str, base: str = "/v1", **kw: Any) -> str:
    credential = make_credential(
        relay.team, "echoing", f"{fake.base_url}/_f/{directive}{base}", secret=SECRET, **kw
    )
    make_route(relay.team, "echoing", (credential, kw.pop("model", "demo-chat"), 0))
    return "echoing"


@pytest.mark.parametrize("form", FORMS)
def test_a_rejected_key_echoed_by_the_provider_is_not_passed_on(
    relay: Relay, fake: Any, redis_client: Any, form: str
) -> None:
    model = echoing_route(relay, fake, f"status=401,echo_key={form}")
    response = post(relay, model, stream=False)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "upstream_auth_failed"
    assert "'echoing'" in error["message"]  # still names the credential
    assert "The key used was" in error["message"]  # and keeps the provider's words
    assert leaks(response.text) == [], response.text
    # The provider did see the whole key (the test would prove nothing otherwise).
    assert fake.requests()[-1]["key_last4"] == SECRET[-4:]
    [event] = usage_events(redis_client, 1)
    assert leaks(repr(event)) == []


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    ("base", "provider", "upstream_model"),
    [("/v1", "openai", "demo-chat"), ("/anthropic/v1", "anthropic", "claude-sonnet-4-5")],
)
def test_an_in_stream_error_echoing_the_key_is_scrubbed(
    relay: Relay, fake: Any, form: str, base: str, provider: str, upstream_model: str
) -> None:
    credential = make_credential(
        relay.team,
        "echoing",
        f"{fake.base_url}/_f/error_after=2,echo_key={form}{base}",
        provider=provider,
        secret=SECRET,
    )
    make_route(relay.team, "echoing", (credential, upstream_model, 0))
    response = post(relay, "echoing", stream=True)
    assert response.status_code == 200
    assert '"error"' in response.text and "The key used was" in response.text
    assert leaks(response.text) == [], response.text


def test_an_error_inside_a_200_body_is_scrubbed(relay: Relay, fake: Any) -> None:
    # MiniMax answers HTTP 200 with the error in base_resp.
    credential = make_credential(
        relay.team,
        "echoing",
        f"{fake.base_url}/_f/status=401,echo_key=prefix/minimax/v1",
        provider="minimax",
        secret=SECRET,
    )
    make_route(relay.team, "echoing", (credential, "MiniMax-M2", 0))
    response = post(relay, "echoing", stream=False)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "upstream_auth_failed" and "The key used was" in error["message"]
    assert leaks(response.text) == [], response.text


def test_logs_and_metrics_never_hold_the_echoed_key(
    relay: Relay, fake: Any, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.BATON_REQUEST_LOG = "all"
    caplog.set_level(logging.DEBUG)
    statuses = []
    for form in FORMS:
        model = f"echo-{form}"
        for directive in (f"status=401,echo_key={form}", f"error_after=2,echo_key={form}"):
            credential = make_credential(
                relay.team,
                f"{model}-{directive[:6]}",
                f"{fake.base_url}/_f/{directive}/v1",
                secret=SECRET,
            )
            make_route(relay.team, f"{model}-{directive[:6]}", (credential, "demo-chat", 0))
            response = post(relay, f"{model}-{directive[:6]}", stream="error_after" in directive)
            statuses.append(response.status_code)
    assert statuses == [502, 200] * 3
    records = caplog.records
    assert any(r.name == "baton.requests" for r in records)
    for record in records:
        assert leaks(record.getMessage()) == [], record.getMessage()
        assert leaks(repr(vars(record))) == [], vars(record)
    metrics = "".join(
        f"{sample.labels}\n" for metric in REGISTRY.collect() for sample in metric.samples
    )
    assert leaks(metrics) == []


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("stream", [False, True])
def test_native_messages_never_pass_on_an_echoed_key(
    relay: Relay, fake: Any, form: str, stream: bool
) -> None:
    """/v1/messages to an Anthropic credential goes natively (bytes through): a refusal
    echoing the key, and an error event mid-stream echoing it, are scrubbed there too."""
    directive = "error_after=2" if stream else "status=401"
    credential = make_credential(
        relay.team,
        "echoing",
        f"{fake.base_url}/_f/{directive},echo_key={form}/anthropic/v1",
        provider="anthropic",
        secret=SECRET,
    )
    make_route(relay.team, "echoing", (credential, "claude-sonnet-4-5", 0))
    response = httpx.post(
        relay.base_url + "/v1/messages",
        headers={"x-api-key": relay.key, "anthropic-version": "2023-06-01"},
        json={"model": "echoing", "max_tokens": 64, "messages": MESSAGES, "stream": stream},
        timeout=10,
    )
    assert fake.requests()[-1]["key_last4"] == SECRET[-4:]  # the provider saw the whole key
    assert "The key used was" in response.text  # the provider's words are passed on
    assert leaks(response.text) == [], response.text
    if stream:
        assert response.status_code == 200 and "event: error" in response.text
    else:
        assert response.status_code == 502
        assert response.json()["type"] == "error"  # Anthropic's shape on this route
