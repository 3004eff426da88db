"""/v1/responses billing, failures and tools: every request billed once with the right token
classes (incomplete and failed responses for what they used), failures mid-stream as OpenAI's
``error`` event then ``response.failed``, and the tools each kind of target can take."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.dialects.test_responses_relay import TOOL, answered, native, sse, user
from tests.relay.conftest import UPSTREAM_SECRET, Relay, make_credential, make_route
from tests.relay.test_relay_sdk import usage_events

WEB_SEARCH: Any = {"type": "web_search"}
FORCE_WEB_SEARCH: Any = {"type": "web_search"}


def post(relay: Relay, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        relay.base_url + "/v1/responses",
        headers={"authorization": f"Bearer {relay.key}"},
        json=body,
        timeout=10,
    )


@pytest.mark.parametrize("stream", [False, True])
def test_usage_is_billed_once_with_its_token_classes(
    relay: Relay, fake: Any, redis_client: Any, stream: bool
) -> None:
    make_route(relay.team, "gpt", (native(relay.team, fake, "openai", "/v1"), "gpt-5.6", 0))
    sdk = relay.client()
    kwargs: Any = {
        "model": "gpt",
        "input": "Count the cached and the written tokens of this prompt please",
        "prompt_cache_key": "conversation-1",
    }
    if stream:
        with sdk.responses.stream(**kwargs) as events:
            reply = events.get_final_response()
    else:
        reply = sdk.responses.create(**kwargs)
    usage = reply.usage
    assert usage is not None
    written = usage.input_tokens_details.cache_write_tokens
    cached = usage.input_tokens_details.cached_tokens
    assert cached > 0 and written > 0 and usage.output_tokens_details.reasoning_tokens == 8
    [event] = usage_events(redis_client, 1)
    assert (event.dialect, event.egress, event.streamed, event.estimated) == (
        "responses",
        "responses",
        stream,
        False,
    )
    assert (event.prompt_tokens, event.cached_tokens, event.cache_write_tokens) == (
        usage.input_tokens,
        cached,
        written,
    )
    assert (event.completion_tokens, event.reasoning_tokens) == (usage.output_tokens, 8)


def test_incomplete_responses_are_billed_for_what_they_used(
    relay: Relay, fake: Any, redis_client: Any
) -> None:
    make_route(relay.team, "gpt", (native(relay.team, fake, "openai", "/v1"), "gpt-5.5", 0))
    glm = make_credential(relay.team, "glm", fake.base_url + "/zhipu/v1", provider="zhipu")
    make_route(relay.team, "glm", (glm, "glm-4.5", 0))
    sdk = relay.client()
    with sdk.responses.stream(model="gpt", input="Hello there", max_output_tokens=16) as events:
        kinds = [e.type for e in events]
    assert kinds[-1] == "response.incomplete"
    # The fake's chat flavors stop at max_tokens: finish_reason "length".
    translated = sdk.responses.create(model="glm", input="Hello there", max_output_tokens=5)
    assert translated.status == "incomplete"
    assert translated.incomplete_details is not None
    assert translated.incomplete_details.reason == "max_output_tokens"
    assert translated.output[0].type == "message" and translated.output[0].status == "incomplete"
    native_event, translated_event = usage_events(redis_client, 2)
    assert (native_event.completion_tokens, native_event.reasoning_tokens) == (16, 8)
    assert not native_event.estimated and native_event.status == 200
    assert translated_event.completion_tokens == 5 and not translated_event.estimated


@pytest.mark.parametrize(
    ("base", "provider", "model"),
    [
        ("/_f/error_after=6;echo_key/v1", "native", "gpt-4o"),
        ("/_f/error_after=5;echo_key;chunks=20/zhipu/v1", "zhipu", "glm-4.5"),
    ],
)
def test_a_failure_mid_stream_is_an_error_event_then_response_failed(
    relay: Relay, fake: Any, redis_client: Any, base: str, provider: str, model: str
) -> None:
    credential = (
        native(relay.team, fake, "upstream", base)
        if provider == "native"
        else make_credential(relay.team, "upstream", fake.base_url + base, provider=provider)
    )
    make_route(relay.team, "model", (credential, model, 0))
    raw = post(relay, {"model": "model", "input": "Hello there", "stream": True})
    assert raw.status_code == 200
    assert UPSTREAM_SECRET not in raw.text and UPSTREAM_SECRET[:12] not in raw.text
    events = sse(raw.content)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    error, failed = events[-2:]
    assert error["type"] == "error" and error["message"]
    assert failed["type"] == "response.failed"
    assert failed["response"]["id"] == events[0]["response"]["id"]  # the same response
    assert failed["response"]["status"] == "failed" and failed["response"]["error"]["message"]
    [event] = usage_events(redis_client, 1)
    assert event.status == 200 and event.error_class
    assert event.completion_tokens > 0  # what was generated before the failure

    # The SDK reads the same stream to its end, failed.
    with relay.client().responses.stream(model="model", input="Hello there") as stream:
        kinds = [e.type for e in stream]
    assert kinds[-2:] == ["error", "response.failed"]


def test_an_upstream_that_breaks_off_ends_as_a_failed_response(relay: Relay, fake: Any) -> None:
    make_route(
        relay.team, "gpt", (native(relay.team, fake, "broken", "/_f/drop_after=5/v1"), "gpt-4o", 0)
    )
    events = sse(post(relay, {"model": "gpt", "input": "Hello there", "stream": True}).content)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-2]["code"] == "upstream_stream_broken"
    assert events[-1]["response"]["id"] == events[0]["response"]["id"]


def test_hosted_tools_go_only_where_they_run(relay: Relay, fake: Any) -> None:
    make_route(relay.team, "gpt", (native(relay.team, fake, "openai", "/v1"), "gpt-4o", 0))
    deepseek = native(relay.team, fake, "deepseek", "/deepseek/v1", provider="deepseek")
    make_route(relay.team, "ds", (deepseek, "deepseek-v4-flash", 0))
    glm = make_credential(
        relay.team, "glm", fake.base_url + "/_f/chunks=20/zhipu/v1", provider="zhipu"
    )
    make_route(relay.team, "glm", (glm, "glm-4.5", 0))
    sdk = relay.client()
    sent_tools = {}
    for model in ("gpt", "ds", "glm"):
        reply = sdk.responses.create(model=model, input="Hello there", tools=[TOOL, WEB_SEARCH])
        assert reply.status == "completed", model
        body = fake.requests()[-1]["body"]
        sent_tools[model] = [t.get("type") for t in body["tools"]]
    assert sent_tools == {
        "gpt": ["function", "web_search"],  # OpenAI runs it
        "ds": ["function"],  # DeepSeek would refuse it: left out
        "glm": ["function"],  # chat has no hosted tools
    }
    with pytest.raises(openai.BadRequestError) as forced:
        sdk.responses.create(
            model="ds", input="Hello", tools=[TOOL, WEB_SEARCH], tool_choice=FORCE_WEB_SEARCH
        )
    assert "forces the hosted tool 'web_search', which deepseek does not run" in (
        forced.value.message
    )


CUSTOM: Any = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Apply a patch",
    "format": {"type": "grammar", "syntax": "lark", "definition": 'start: "*** Begin Patch"'},
}
NAMESPACE: Any = {
    "type": "namespace",
    "name": "files",
    "description": "File tools",
    "tools": [
        {
            "type": "function",
            "name": "lookup",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
            },
        }
    ],
}


@pytest.fixture
def glm(relay: Relay, fake: Any) -> Relay:
    credential = make_credential(
        relay.team, "glm", fake.base_url + "/_f/chunks=20/zhipu/v1", provider="zhipu"
    )
    make_route(relay.team, "glm", (credential, "glm-4.5", 0))
    return relay


def test_custom_and_namespace_tools_through_the_chat_pivot(glm: Relay, fake: Any) -> None:
    sdk = glm.client()
    tools = [TOOL, CUSTOM, NAMESPACE]
    ask = [user("Use apply_patch with `*** Begin Patch`")]
    first = sdk.responses.create(model="glm", input=ask, tools=tools)
    [call] = first.output
    assert call.type == "custom_tool_call"
    assert (call.name, call.input) == ("apply_patch", "*** Begin Patch")
    sent = fake.requests()[-1]["body"]
    assert [t["function"]["name"] for t in sent["tools"]] == [
        "read_file",
        "apply_patch",
        "files__lookup",
    ]
    assert (
        "lark grammar"
        in sent["tools"][1]["function"]["parameters"]["properties"]["input"]["description"]
    )
    history = [
        *ask,
        call.model_dump(exclude_none=True),
        {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "Done!"},
    ]
    done = sdk.responses.create(model="glm", input=history, tools=tools)
    assert done.output_text.startswith("Echo: Done!")
    messages = fake.requests()[-1]["body"]["messages"]
    assert messages[1]["tool_calls"][0]["function"] == {
        "name": "apply_patch",
        "arguments": '{"input":"*** Begin Patch"}',
    }
    assert messages[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "Done!"}

    with sdk.responses.stream(
        model="glm", input=[user("Please files__lookup `a.txt`")], tools=tools
    ) as stream:
        looked = stream.get_final_response()
    [lookup] = looked.output
    assert lookup.type == "function_call"
    assert (lookup.name, lookup.namespace, lookup.arguments) == (
        "lookup",
        "files",
        '{"path":"a.txt"}',
    )
    done = sdk.responses.create(
        model="glm",
        input=[user("Please files__lookup `a.txt`"), *answered(looked.output)],
        tools=tools,
    )
    assert done.status == "completed"
    assert fake.requests()[-1]["body"]["messages"][1]["tool_calls"][0]["function"]["name"] == (
        "files__lookup"
    )


def test_what_chat_cannot_carry_is_left_out_or_refused(glm: Relay, fake: Any) -> None:
    sdk = glm.client()
    history: Any = [
        {"type": "message", "role": "developer", "content": "Be brief."},
        user("Hello"),
        {
            "type": "message",
            "role": "assistant",
            "phase": "final_answer",
            "content": [{"type": "output_text", "text": "Hi!"}],
        },
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        user("Again"),
    ]
    reply = sdk.responses.create(model="glm", input=history, instructions="You are terse.")
    assert reply.status == "completed"
    assert fake.requests()[-1]["body"]["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi!"},  # no phase: chat has none
        {"role": "user", "content": "Again"},
    ]
    cases: Any = (
        ({"type": "compaction", "encrypted_content": "x"}, "compaction item"),
        (
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_image", "file_id": "f"}],
            },
            "file_id cannot reach another provider",
        ),
        ({"type": "function_call_output", "call_id": "nope", "output": "x"}, "No tool call found"),
    )
    for item, said in cases:
        with pytest.raises(openai.BadRequestError) as refused:
            sdk.responses.create(model="glm", input=[user("Hello"), item])
        assert said in refused.value.message
