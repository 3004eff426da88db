"""A client's own request id: echoed beside Baton's, stored on the usage record, and findable
on the request log page and through the API, so a client that lost a response can reconcile."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import openai
import pytest
from django.urls import reverse

from accounts.models import Membership
from billing.consumer import Consumer
from billing.events import STREAM_KEY, UsageEvent
from billing.models import UsageRecord
from gateway.asgi import MAX_CLIENT_REQUEST_ID, client_request_id
from tests.conftest import client_for
from tests.polling import until
from tests.relay.conftest import Relay, relay

__all__ = ["relay"]

MESSAGES: Any = [{"role": "user", "content": "who am I?"}]


def ledger_row(relay: Relay, redis_client: Any, request_id: str) -> UsageRecord:
    """The request's usage event, once the relay has flushed it, read into the ledger."""

    def streamed() -> bool:
        entries = redis_client.xrange(STREAM_KEY)
        return any(UsageEvent.from_json(f[b"event"]).request_id == request_id for _, f in entries)

    until(streamed, "the usage event in the stream")
    Consumer(redis_client, name="test").drain(seconds=10)
    return UsageRecord.objects.get(request_id=request_id)


def test_the_client_id_is_echoed_stored_and_found(relay: Relay, redis_client: Any) -> None:
    raw = relay.client().chat.completions.with_raw_response.create(
        model="gpt-4o", messages=MESSAGES, extra_headers={"x-request-id": "order-42/attempt-1"}
    )
    own = raw.headers["x-request-id"]
    assert own.startswith("req_") and raw.headers["request-id"] == own
    assert raw.headers["x-client-request-id"] == "order-42/attempt-1"
    assert raw.parse()._request_id == own  # what the OpenAI SDK shows is Baton's id

    row = ledger_row(relay, redis_client, own)
    assert row.client_request_id == "order-42/attempt-1"

    owner = Membership.objects.get(team=relay.team).user
    browser = client_for(owner)
    api = browser.get(
        f"/api/teams/{relay.team.pk}/requests/", {"client_request_id": "order-42/attempt-1"}
    )
    assert api.status_code == 200, api.content
    assert [(r["request_id"], r["client_request_id"]) for r in api.json()["results"]] == [
        (own, "order-42/attempt-1")
    ]
    assert (
        len(
            browser.get(f"/api/teams/{relay.team.pk}/requests/", {"request_id": own}).json()[
                "results"
            ]
        )
        == 1
    )
    bad = browser.get(f"/api/teams/{relay.team.pk}/requests/", {"client_request_id": "x" * 129})
    assert bad.status_code == 400
    page = browser.get(
        reverse("team_requests", kwargs={"team_id": relay.team.pk}), {"id": "order-42/attempt-1"}
    )
    assert page.status_code == 200
    assert [record.request_id for record, _ in page.context["records"]] == [own]
    assert b'data-test="client-request-id">order-42/attempt-1<' in page.content


def test_the_anthropic_sdk_reads_batons_id_and_errors_carry_both(
    relay: Relay, redis_client: Any
) -> None:
    client = anthropic.Anthropic(
        base_url=relay.base_url,
        api_key=relay.key,
        max_retries=0,
        default_headers={"x-client-request-id": "msg-7", "x-request-id": "ignored"},
    )
    raw = client.messages.with_raw_response.create(model="gpt-4o", max_tokens=16, messages=MESSAGES)
    assert raw.headers["x-client-request-id"] == "msg-7"  # OpenAI's header name wins
    assert raw.parse()._request_id == raw.headers["x-request-id"]
    assert ledger_row(relay, redis_client, raw.headers["x-request-id"]).client_request_id == "msg-7"

    with pytest.raises(openai.NotFoundError) as refused:
        relay.client().chat.completions.create(
            model="nope", messages=MESSAGES, extra_headers={"x-request-id": "lost-1"}
        )
    assert refused.value.response.headers["x-client-request-id"] == "lost-1"
    assert refused.value.request_id == refused.value.response.headers["request-id"]


@pytest.mark.parametrize(
    "value",
    [
        b"x" * (MAX_CLIENT_REQUEST_ID + 1),
        "caf\u00e9".encode(),
        b"tab\there",
    ],
)
def test_an_invalid_client_id_is_ignored(relay: Relay, redis_client: Any, value: bytes) -> None:
    response = httpx.post(
        relay.base_url + "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": MESSAGES},
        headers={b"authorization": f"Bearer {relay.key}".encode(), b"x-request-id": value},
    )
    assert response.status_code == 200
    assert "x-client-request-id" not in response.headers
    assert ledger_row(relay, redis_client, response.headers["x-request-id"]).client_request_id == ""


def test_which_client_ids_are_kept() -> None:
    assert client_request_id([(b"x-request-id", b"a b-c_1:2")]) == "a b-c_1:2"
    assert client_request_id([(b"x-request-id", b"x" * MAX_CLIENT_REQUEST_ID)]) != ""
    assert client_request_id([(b"x-request-id", b"a"), (b"x-client-request-id", b"b")]) == "b"
    assert client_request_id([(b"x-client-request-id", b"b"), (b"x-request-id", b"a")]) == "b"
    assert client_request_id([(b"x-request-id", b"")]) == ""
    assert client_request_id([(b"x-request-id", b"new\nline")]) == ""
    assert client_request_id([]) == ""
