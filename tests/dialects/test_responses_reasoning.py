"""Responses agent loops through Baton against the fake's strict flavors: reasoning items and
their ``encrypted_content`` passed back natively, reasoning restored for strict chat providers
through the pivot, a conversation kept on the account its reasoning is bound to, and
``previous_response_id`` continued natively or refused with the reason."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from accounts import actions
from accounts.models import Team, User
from relay.models import ProviderCredential
from tests.dialects.test_responses_relay import ASK, TOOL, answered, dump, native, user
from tests.fake_upstream.test_chat_reasoning import THINKERS
from tests.relay.conftest import Relay, make_credential, make_key, make_route
from tests.relay.test_relay_sdk import usage_events

ENCRYPTED: Any = ["reasoning.encrypted_content"]
FAKE_SEALED = "gAAAAA"  # the fake seals reasoning as Fernet tokens, as OpenAI's look


def first_turn(sdk: openai.OpenAI, model: str, *, stream: bool = False, **extra: Any) -> Any:
    """A Codex-style first turn: stateless, encrypted reasoning asked for."""
    kwargs: Any = {
        "model": model,
        "input": [user(ASK)],
        "tools": [TOOL],
        "store": False,
        "include": ENCRYPTED,
        **extra,
    }
    if not stream:
        return sdk.responses.create(**kwargs)
    with sdk.responses.stream(**kwargs) as events:
        return events.get_final_response()


@pytest.mark.parametrize("stream", [False, True])
def test_native_strict_openai_gets_its_reasoning_items_back(
    relay: Relay, fake: Any, redis_client: Any, stream: bool
) -> None:
    strict = native(relay.team, fake, "openai-strict", "/_f/strict_reasoning/v1")
    make_route(relay.team, "gpt", (strict, "gpt-5.5", 0))
    sdk = relay.client()
    first = first_turn(sdk, "gpt", stream=stream)
    assert [item.type for item in first.output] == ["reasoning", "function_call"]
    reasoning = first.output[0]
    assert reasoning.encrypted_content.startswith(FAKE_SEALED)
    history = [user(ASK), *answered(first.output)]
    done = sdk.responses.create(
        model="gpt", input=history, tools=[TOOL], store=False, include=ENCRYPTED, stream=False
    )
    assert done.status == "completed" and done.output[-1].type == "message"
    sent = fake.requests()[-1]["body"]["input"]
    assert sent[1] == dump(first.output)[0]  # the reasoning item, byte for byte
    # Without it the strict upstream refuses, with OpenAI's words, in OpenAI's shape.
    call = first.output[1]
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.responses.create(model="gpt", input=[user(ASK), *answered([call])], tools=[TOOL])
    assert f"Item '{call.id}' of type 'function_call' was provided without its required " in (
        refused.value.message
    )
    events = usage_events(redis_client, 3)
    assert [(e.dialect, e.egress, e.reasoning) for e in events[:2]] == [
        ("responses", "responses", "")
    ] * 2
    assert events[0].reasoning_tokens == 8 and events[0].streamed == stream


@pytest.fixture
def strict_chat(relay: Relay, fake: Any) -> ProviderCredential:
    """DeepSeek V4 behind a chat-only credential (no Responses endpoint declared): translated,
    strict about reasoning_content on tool-call turns."""
    base, model, _ = THINKERS["deepseek"]
    credential = make_credential(
        relay.team,
        "deepseek-chat",
        fake.base_url + "/_f/strict_reasoning;chunks=20" + base,
        provider="openai",
    )
    make_route(relay.team, "coder", (credential, model, 0))
    return credential


@pytest.mark.parametrize("stream", [False, True])
def test_translated_strict_chat_gets_reasoning_content_back_from_reasoning_items(
    relay: Relay, fake: Any, redis_client: Any, strict_chat: Any, stream: bool
) -> None:
    sdk = relay.client()
    first = first_turn(sdk, "coder", stream=stream)
    assert [item.type for item in first.output] == ["reasoning", "function_call"]
    assert fake.requests()[-1]["path"].endswith("/chat/completions")
    reasoning, call = first.output
    [summary] = reasoning.summary
    assert summary.text.startswith("The user asks about")
    assert reasoning.encrypted_content.startswith("baton:")  # Baton's own, under the team key
    assert summary.text not in reasoning.encrypted_content
    assert call.call_id.startswith("call_")

    # Passed back as it came: the summary and Baton's encrypted_content.
    done = sdk.responses.create(model="coder", input=[user(ASK), *answered(first.output)])
    assert done.status == "completed"
    sent = fake.requests()[-1]["body"]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.call_id
    assert sent[1]["reasoning_content"] == summary.text  # byte for byte

    # A client that keeps only encrypted_content: Baton opens it.
    sealed_only = [{**dump([reasoning])[0], "summary": []}, *answered(first.output)[1:]]
    done = sdk.responses.create(model="coder", input=[user(ASK), *sealed_only])
    assert done.status == "completed"
    assert fake.requests()[-1]["body"]["messages"][1]["reasoning_content"] == summary.text

    # A client that drops the reasoning item: the strict provider says what is missing.
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.responses.create(model="coder", input=[user(ASK), *answered([call])])
    assert "reasoning_content" in refused.value.message
    events = usage_events(redis_client, 4)
    assert [(e.egress, e.status) for e in events] == [("chat", 200)] * 3 + [("chat", 400)]


def test_a_team_that_keeps_no_reasoning_gets_summaries_only(
    relay: Relay, fake: Any, strict_chat: Any
) -> None:
    Team.objects.filter(pk=relay.team.pk).update(remember_reasoning=False)
    sdk = relay.client()
    first = first_turn(sdk, "coder")
    reasoning = first.output[0]
    assert reasoning.type == "reasoning" and reasoning.encrypted_content is None
    done = sdk.responses.create(model="coder", input=[user(ASK), *answered(first.output)])
    assert done.status == "completed"
    sent = fake.requests()[-1]["body"]["messages"][1]
    assert sent["reasoning_content"] == reasoning.summary[0].text


def test_a_conversation_stays_on_the_account_its_reasoning_is_bound_to(
    relay: Relay, fake: Any, redis_client: Any
) -> None:
    first_account = native(relay.team, fake, "openai-a", "/v1", secret="sk-openai-account-a-0001")
    second_account = native(relay.team, fake, "openai-b", "/v1", secret="sk-openai-account-b-0002")
    # Equal priority and weight: a new conversation may start on either account.
    make_route(relay.team, "gpt", (first_account, "gpt-5.5", 0), (second_account, "gpt-5.5", 0))
    sdk = relay.client()

    def start() -> tuple[str, list[Any]]:
        first = first_turn(sdk, "gpt")
        return fake.requests()[-1]["key_last4"], [user(ASK), *answered(first.output)]

    for _ in range(6):  # another account could not verify the encrypted_content
        served, history = start()
        sdk.responses.create(model="gpt", input=history, tools=[TOOL], store=False)
        assert fake.requests()[-1]["key_last4"] == served

    # The account that served it fails: the conversation moves without the reasoning the
    # other account cannot read, rather than failing.
    served, history = start()
    failing = first_account if served == "0001" else second_account
    failing.base_url = fake.base_url + "/_f/status=503/v1"
    failing.extras = {"dialects": {"responses": failing.base_url}}
    failing.save()
    done = sdk.responses.create(model="gpt", input=history, tools=[TOOL], store=False)
    assert done.status == "completed"
    moved = fake.requests()[-1]
    assert moved["key_last4"] != served
    assert [item["type"] for item in moved["body"]["input"]] == [
        "message",
        "function_call",
        "function_call_output",
    ]
    assert usage_events(redis_client, 14)[-1].reasoning == "dropped"


@pytest.fixture
def stateful(relay: Relay, fake: Any) -> Relay:
    make_route(relay.team, "gpt", (native(relay.team, fake, "openai-native", "/v1"), "gpt-5.5", 0))
    glm = make_credential(
        relay.team, "glm", fake.base_url + "/_f/chunks=20/zhipu/v1", provider="zhipu"
    )
    make_route(relay.team, "glm", (glm, "glm-4.5", 0))
    deepseek = native(relay.team, fake, "deepseek-native", "/deepseek/v1", provider="deepseek")
    make_route(relay.team, "ds", (deepseek, "deepseek-v4-flash", 0))
    return relay


@pytest.mark.parametrize("stream", [False, True])
def test_previous_response_id_continues_natively_on_the_target_that_stored_it(
    stateful: Relay, fake: Any, stream: bool
) -> None:
    sdk = stateful.client()
    first: Any
    if stream:
        with sdk.responses.stream(model="gpt", input="My name is Ada") as events:
            first = events.get_final_response()
    else:
        first = sdk.responses.create(model="gpt", input="My name is Ada")
    follow = sdk.responses.create(
        model="gpt", input="What is my name", previous_response_id=first.id
    )
    assert follow.status == "completed" and follow.previous_response_id == first.id
    sent = fake.requests()[-1]
    assert sent["path"] == "/v1/responses" and sent["body"]["previous_response_id"] == first.id

    # The stored response itself, asked of the target that stored it; deleted there too.
    assert sdk.responses.retrieve(first.id).output_text == first.output_text
    assert sdk.responses.input_items.list(first.id).data[0].type == "message"
    listed = httpx.get(
        stateful.base_url + f"/v1/responses/{first.id}/input_items?limit=5&stream=true&x=%0d",
        headers={"authorization": f"Bearer {stateful.key}"},
    )
    assert listed.status_code == 200
    assert fake.requests()[-1]["query"] == "limit=5"  # only what OpenAI documents passes on
    sdk.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError) as gone:
        sdk.responses.retrieve(first.id)
    assert gone.value.body == {  # OpenAI's shape
        "message": f"Response with id {first.id!r} not found.",
        "type": "invalid_request_error",
        "param": "response_id",
        "code": None,
    }


def test_previous_response_id_that_baton_cannot_place_is_refused_with_the_reason(
    stateful: Relay, fake: Any
) -> None:
    sdk = stateful.client()

    def refusal(model: str, previous: str) -> str:
        before = len(fake.requests())
        with pytest.raises(openai.BadRequestError) as refused:
            sdk.responses.create(model=model, input="and then?", previous_response_id=previous)
        assert refused.value.code == "previous_response_not_found"
        assert refused.value.param == "previous_response_id"
        assert len(fake.requests()) == before  # never silently sent anywhere
        body: Any = refused.value.body
        message = str(body["message"])
        assert message.startswith(f"Previous response with id {previous!r} not found: ")
        return message

    translated = sdk.responses.create(model="glm", input="Hello")
    assert "keeps no responses" in refusal("glm", translated.id)
    stateless = sdk.responses.create(model="ds", input="Hello")
    assert "stateless and translated targets keep none" in refusal("ds", stateless.id)
    stored = sdk.responses.create(model="gpt", input="Hello")
    assert "credential 'openai-native' that does not serve this model" in refusal("glm", stored.id)
    assert "Baton has no record" in refusal("gpt", "resp_unknown")
    # And by id, no stored response of a translated target to read.
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(translated.id)
    assert (
        httpx.delete(
            stateful.base_url + f"/v1/responses/{stored.id}/input_items",
            headers={"authorization": f"Bearer {stateful.key}"},
        ).status_code
        == 405
    )


def test_another_team_cannot_continue_or_read_a_stored_response(stateful: Relay, fake: Any) -> None:
    stored = stateful.client().responses.create(model="gpt", input="Hello")
    owner = User.objects.create_user("other-owner@example.com", "x-sturdy-passphrase-2")
    other = actions.create_team(owner, name="Other team")
    make_route(other, "gpt", (native(other, fake, "theirs", "/v1"), "gpt-5.5", 0))
    outsider = stateful.client(key=make_key(other))
    with pytest.raises(openai.BadRequestError) as refused:
        outsider.responses.create(model="gpt", input="and then?", previous_response_id=stored.id)
    assert refused.value.code == "previous_response_not_found"
    with pytest.raises(openai.NotFoundError):
        outsider.responses.retrieve(stored.id)
