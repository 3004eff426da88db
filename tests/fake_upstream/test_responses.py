"""The Responses API of the fake upstream, driven by the official ``openai`` SDK's ``responses``.

Token arithmetic used throughout (see fake_upstream/responses.py): every input item costs 3
tokens plus the tokens of its text, a reasoning model spends 8 reasoning tokens, and a text
reply is ``Echo:`` plus the prompt's words padded to 20 tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
from pydantic import BaseModel

from fake_upstream import faults, responses
from tests.fake_upstream.conftest import AUTH, KEY, Fake, ServerThread, sse_events

OTHER_KEY = "sk-other-5678"
WEATHER_TOOL: Any = {
    "type": "function",
    "name": "lookup",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
PROMPT = "Weather in `Paris` please"  # 4 tokens; the backticked text becomes the argument
ECHO_20 = (
    "Echo: Hello there lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod "
    "tempor incididunt ut labore et dolore"
)
STATEFUL = ["/v1", "/openai/v1", "/azure/openai/v1", "/qwen/v1", "/ark/v1"]
STATELESS = ["/deepseek/v1", "/minimax/v1"]
Client = Callable[..., openai.OpenAI]


@pytest.fixture
def sdk(fake_server: ServerThread) -> Iterator[Client]:
    """``sdk(base, key=KEY)``: an OpenAI client on that base path of the fake."""
    clients: list[openai.OpenAI] = []

    def make(base: str = "/v1", key: str = KEY) -> openai.OpenAI:
        client = openai.OpenAI(base_url=fake_server.base_url + base, api_key=key, max_retries=0)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def dump(items: list[Any]) -> list[Any]:
    """Output items as a client passes them back as input."""
    return [item.model_dump(exclude_none=True) for item in items]


def said(exc: openai.APIStatusError) -> str:
    """The provider's own error message (the SDK prefixes ``Error code: 400 - ``)."""
    body = exc.body
    assert isinstance(body, dict)
    message = body["message"]
    assert isinstance(message, str)
    return message


def user(text: str) -> Any:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def first_turn(client: openai.OpenAI, **extra: Any) -> tuple[list[Any], Any]:
    """A reasoning model's first turn of a tool loop, stateless as Codex runs it."""
    conversation = [user(PROMPT)]
    response = client.responses.create(
        model="gpt-5.5",
        input=conversation,
        tools=[WEATHER_TOOL],
        store=False,
        include=["reasoning.encrypted_content"],
        **extra,
    )
    return conversation, response


def test_text_reply_and_history(sdk: Client, fake: Fake) -> None:
    response = sdk().responses.create(model="gpt-4o", input="Hello there")
    assert response.status == "completed"
    assert response.output_text == ECHO_20
    [message] = response.output
    assert message.type == "message"
    assert message.id.startswith("msg_")
    assert response.id.startswith("resp_")
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (5, 20)
    assert response.usage.total_tokens == 25
    assert response.usage.output_tokens_details.reasoning_tokens == 0
    assert response.usage.input_tokens_details.cached_tokens == 0
    [record] = fake.requests()
    assert (record["flavor"], record["endpoint"], record["key_last4"]) == (
        "openai",
        "responses",
        "1234",
    )
    assert record["body"]["input"] == "Hello there"
    assert record["completed"] and not record["cancelled"]


@pytest.mark.parametrize("base", [*STATEFUL, *STATELESS])
def test_every_native_flavor_answers(sdk: Client, fake: Fake, base: str) -> None:
    response = sdk(base).responses.create(model="plain-model", input="Hello there")
    assert response.output_text == ECHO_20
    assert fake.requests()[0]["endpoint"] == "responses"


@pytest.mark.parametrize(
    "base", ["/moonshot/v1", "/zhipu/v1", "/siliconflow/v1", "/gemini/v1beta/openai"]
)
def test_flavors_without_responses_are_404(sdk: Client, base: str) -> None:
    with pytest.raises(openai.NotFoundError):
        sdk(base).responses.create(model="kimi-k2.6", input="Hello")


def test_stream_event_sequence(sdk: Client, fake: Fake) -> None:
    events = list(
        sdk().responses.create(
            model="gpt-5.5", input="Hello there", reasoning={"summary": "auto"}, stream=True
        )
    )
    types = [e.type for e in events]
    reasoning = [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        *["response.reasoning_summary_text.delta"] * 8,
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
    ]
    message = [
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 20,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert types == [
        "response.created",
        "response.in_progress",
        *reasoning,
        *message,
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    completed = events[-1]
    assert completed.type == "response.completed"
    created: Any = events[0]
    assert completed.response.id == created.response.id
    assert completed.response.output_text == ECHO_20
    summary = completed.response.output[0]
    assert summary.type == "reasoning"
    assert summary.summary[0].text == "Thinking: Hello there lorem ipsum dolor sit amet"
    final = completed.response.output[1]
    assert final.type == "message"
    assert final.phase == "final_answer"  # gpt-5.4 and later label their messages
    assert completed.response.usage is not None
    assert completed.response.usage.output_tokens == 28
    assert completed.response.usage.output_tokens_details.reasoning_tokens == 8
    raw = fake.http.post(
        "/v1/responses", json={"model": "gpt-4o", "input": "Hi", "stream": True}, headers=AUTH
    )
    assert raw.headers["content-type"] == "text/event-stream"
    assert "[DONE]" not in raw.text
    pairs = sse_events(raw.text)
    assert all(name == data["type"] for name, data in pairs)  # event: line = type
    delta = next(data for name, data in pairs if name == "response.output_text.delta")
    assert delta["obfuscation"]  # OpenAI pads deltas unless asked not to


def test_stream_helper_builds_the_final_response(sdk: Client) -> None:
    with sdk().responses.stream(
        model="gpt-5.5",
        input=[user(PROMPT)],
        tools=[WEATHER_TOOL],
        stream_options={"include_obfuscation": False},
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
        final = stream.get_final_response()
    assert len(deltas) >= 3
    assert "".join(deltas) == '{"city":"Paris"}'
    call = final.output[-1]
    assert call.type == "function_call"
    assert (call.name, call.arguments) == ("lookup", '{"city":"Paris"}')
    assert call.call_id.startswith("call_")
    assert call.status == "completed"


def test_tool_loop_with_encrypted_reasoning(sdk: Client, fake: Fake) -> None:
    strict = sdk("/_f/strict_reasoning/v1")
    conversation, first = first_turn(strict)
    reasoning, call = first.output
    assert reasoning.type == "reasoning"
    assert reasoning.id.startswith("rs_")
    assert reasoning.summary == []  # no summary was asked for
    assert reasoning.encrypted_content is not None
    assert reasoning.encrypted_content.startswith("gAAAAA")
    assert PROMPT not in reasoning.encrypted_content
    assert call.type == "function_call"
    assert call.id is not None and call.id.startswith("fc_")
    output: Any = {"type": "function_call_output", "call_id": call.call_id, "output": "sunny 21C"}
    second = strict.responses.create(
        model="gpt-5.5",
        input=[*conversation, *dump(first.output), output],
        tools=[WEATHER_TOOL],
        store=False,
        include=["reasoning.encrypted_content"],
    )
    assert [item.type for item in second.output] == ["reasoning", "message"]
    assert second.output_text.startswith("Echo: sunny 21C lorem")  # it read the tool output
    assert second.usage is not None
    # user 4+3, reasoning 0+3 (its text is encrypted), call "lookup" + args 2+3, output 2+3
    assert second.usage.input_tokens == 20
    assert second.usage.output_tokens == 28
    bodies = [r["body"] for r in fake.requests()]
    assert bodies[1]["input"][1]["encrypted_content"] == reasoning.encrypted_content


def test_strict_mode_refusals(sdk: Client) -> None:
    strict = sdk("/_f/strict_reasoning/v1")
    conversation, first = first_turn(strict)
    reasoning, call = dump(first.output)
    output: Any = {"type": "function_call_output", "call_id": call["call_id"], "output": "ok"}
    cases = [
        (
            [*conversation, call, output],
            f"Item '{call['id']}' of type 'function_call' was provided without its required "
            f"'reasoning' item: '{reasoning['id']}'.",
        ),
        (
            [*conversation, reasoning],
            f"Item '{reasoning['id']}' of type 'reasoning' was provided without its required "
            "following item.",
        ),
        (
            [*conversation, reasoning, user("and now?")],
            f"Item '{reasoning['id']}' of type 'reasoning' was provided without its required "
            "following item.",
        ),
    ]
    for items, message in cases:
        with pytest.raises(openai.BadRequestError) as info:
            strict.responses.create(model="gpt-5.5", input=items, store=False)
        assert said(info.value) == message
        assert info.value.param == "input"
    # Without the directive the same history is accepted.
    relaxed = sdk().responses.create(
        model="gpt-5.5",
        input=[*conversation, call, output],
        store=False,
    )
    assert relaxed.status == "completed"


@pytest.mark.parametrize("strict", ["", "/_f/strict_reasoning"])
def test_encrypted_content_is_bound_to_account_and_item(sdk: Client, strict: str) -> None:
    conversation, first = first_turn(sdk(strict + "/v1"))
    reasoning, call = dump(first.output)
    output: Any = {"type": "function_call_output", "call_id": call["call_id"], "output": "ok"}
    sealed = reasoning["encrypted_content"]
    middle = len(sealed) // 2
    edited = sealed[:middle] + ("A" if sealed[middle] != "A" else "B") + sealed[middle + 1 :]
    moved_id = "rs_" + "0" * 24
    attempts: list[tuple[str, Any, str]] = [
        (OTHER_KEY, reasoning, reasoning["id"]),
        (KEY, {**reasoning, "encrypted_content": edited}, reasoning["id"]),
        (KEY, {**reasoning, "id": moved_id}, moved_id),
    ]
    for key, item, named in attempts:
        with pytest.raises(openai.BadRequestError) as info:
            sdk(strict + "/v1", key).responses.create(
                model="gpt-5.5",
                input=[*conversation, item, call, output],
                store=False,
            )
        assert info.value.code == "invalid_encrypted_content"
        assert said(info.value) == (
            f"The encrypted content for item {named} could not be verified. Reason: Encrypted "
            "content could not be decrypted or parsed."
        )


def test_openai_reasoning_without_encrypted_content_must_be_stored(sdk: Client) -> None:
    client = sdk()
    for store in (False, True):
        first = client.responses.create(
            model="gpt-5.5",
            input=[user(PROMPT)],
            tools=[WEATHER_TOOL],
            store=store,
        )
        reasoning, call = dump(first.output)
        assert "encrypted_content" not in reasoning
        history = [
            user(PROMPT),
            reasoning,
            call,
            {"type": "function_call_output", "call_id": call["call_id"], "output": "ok"},
        ]
        if store:
            assert client.responses.create(model="gpt-5.5", input=history).status == "completed"
            continue
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(model="gpt-5.5", input=history)
        assert said(info.value).startswith(
            f"Item with id '{reasoning['id']}' not found. Items are not persisted when `store` "
            "is set to false."
        )


@pytest.mark.parametrize("base", STATEFUL)
def test_previous_response_id_continues_on_stateful_flavors(sdk: Client, base: str) -> None:
    client = sdk(base)
    first = client.responses.create(
        model="plain-model", input="My name is Ada", instructions="Answer in one word"
    )
    second = client.responses.create(
        model="plain-model", input="What is my name", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id
    assert second.instructions is None  # instructions are not inherited
    assert second.usage is not None
    # first input (4+3) and its 20-token answer (+3), then the new question (4+3)
    assert second.usage.input_tokens == 7 + 23 + 7
    third = client.responses.create(
        model="plain-model", input="And again", previous_response_id=second.id
    )
    assert third.usage is not None
    assert third.usage.input_tokens == 37 + 23 + 2 + 3
    with pytest.raises(openai.BadRequestError) as info:
        sdk(base, OTHER_KEY).responses.create(
            model="plain-model", input="What is my name", previous_response_id=first.id
        )
    assert info.value.code == "previous_response_not_found"
    assert f"Previous response with id '{first.id}' not found." in said(info.value)


@pytest.mark.parametrize("base", ["/v1", "/qwen/v1"])
def test_stored_responses_can_be_read_listed_and_deleted(sdk: Client, base: str) -> None:
    client = sdk(base)
    first = client.responses.create(model="plain-model", input="My name is Ada")
    fetched = client.responses.retrieve(first.id)
    assert (fetched.id, fetched.output_text) == (first.id, first.output_text)
    [item] = client.responses.input_items.list(first.id).data
    assert item.type == "message" and item.role == "user"
    with pytest.raises(openai.NotFoundError):
        sdk(base, OTHER_KEY).responses.retrieve(first.id)  # another account's
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError) as gone:
        client.responses.retrieve(first.id)
    assert said(gone.value) == f"Response with id '{first.id}' not found."
    stateless = sdk("/deepseek/v1").responses.create(model="plain-model", input="Hello")
    with pytest.raises(openai.NotFoundError):
        sdk("/deepseek/v1").responses.retrieve(stateless.id)


def test_unstored_and_unknown_responses_are_not_found(sdk: Client) -> None:
    client = sdk()
    unstored = client.responses.create(model="gpt-4o", input="Hello", store=False)
    for missing in (unstored.id, "resp_doesnotexist"):
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(model="gpt-4o", input="Hi", previous_response_id=missing)
        assert info.value.code == "previous_response_not_found"
        assert info.value.param == "previous_response_id"
        assert said(info.value) == f"Previous response with id '{missing}' not found."


@pytest.mark.parametrize("base", STATELESS)
def test_previous_response_id_is_refused_on_stateless_flavors(sdk: Client, base: str) -> None:
    client = sdk(base)
    first = client.responses.create(model="plain-model", input="Hello", store=True)
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="plain-model", input="Hi", previous_response_id=first.id)
    assert info.value.code == "previous_response_not_found"
    assert said(info.value) == f"Previous response with id '{first.id}' not found."


@pytest.mark.parametrize(
    ("base", "resolves"), [("/v1", True), ("/qwen/v1", True), ("/deepseek/v1", False)]
)
def test_item_reference(sdk: Client, base: str, resolves: bool) -> None:
    client = sdk(base)
    first = client.responses.create(model="plain-model", input="Hello there")
    reference: Any = {"type": "item_reference", "id": first.output[0].id}
    if resolves:
        second = client.responses.create(
            model="plain-model",
            input=[user("Hi"), reference, user("Again")],
        )
        assert second.usage is not None
        assert second.usage.input_tokens == (1 + 3) + (20 + 3) + (1 + 3)
        return
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="plain-model", input=[reference])
    assert f"Item with id '{first.output[0].id}' not found." in said(info.value)


def test_incomplete_at_max_output_tokens(sdk: Client) -> None:
    client = sdk()
    cut = client.responses.create(model="gpt-5.5", input="Hello there", max_output_tokens=16)
    assert cut.status == "incomplete"
    assert cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens"
    assert cut.output_text == "Echo: Hello there lorem ipsum dolor sit amet"  # 16 - 8 reasoning
    last: Any = cut.output[-1]
    assert last.status == "incomplete"
    assert cut.usage is not None
    assert (cut.usage.output_tokens, cut.usage.output_tokens_details.reasoning_tokens) == (16, 8)
    events = list(
        client.responses.create(
            model="gpt-5.5", input="Hello there", max_output_tokens=16, stream=True
        )
    )
    last = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.usage is not None
    assert last.response.usage.output_tokens == 16
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="gpt-5.5", input="Hello", max_output_tokens=5)
    assert info.value.code == "integer_below_min_value"
    assert info.value.param == "max_output_tokens"
    # Where small caps are allowed, the reasoning alone can use the budget up.
    thinking = sdk("/deepseek/v1").responses.create(
        model="deepseek-v4-flash", input="Hello", max_output_tokens=5
    )
    assert thinking.status == "incomplete"
    assert [item.type for item in thinking.output] == ["reasoning"]
    assert thinking.usage is not None
    assert thinking.usage.output_tokens_details.reasoning_tokens == 5


def test_usage_cache_fields(sdk: Client, fake: Fake) -> None:
    client = sdk()
    long = "one two three four five six seven eight"  # 8 + 3 = 11 input tokens
    cold = client.responses.create(model="gpt-5.5", input=long)
    assert cold.usage is not None
    assert cold.usage.input_tokens_details.cached_tokens == 0
    keyed = client.responses.create(model="gpt-5.5", input=long, prompt_cache_key="conv-1")
    assert keyed.usage is not None
    assert keyed.usage.input_tokens == 11
    assert keyed.usage.input_tokens_details.cached_tokens == 5
    assert keyed.prompt_cache_key == "conv-1"
    writes = client.responses.create(model="gpt-5.6", input=long, prompt_cache_key="conv-1")
    assert writes.usage is not None
    assert writes.usage.input_tokens_details.cached_tokens == 5
    assert writes.usage.input_tokens_details.cache_write_tokens == 6
    raw = [r["body"] for r in fake.requests()]
    assert raw[1]["prompt_cache_key"] == "conv-1"
    older = fake.http.post(
        "/v1/responses",
        json={"model": "gpt-5.5", "input": long, "prompt_cache_key": "k"},
        headers=AUTH,
    ).json()
    assert "cache_write_tokens" not in older["usage"]["input_tokens_details"]


def test_errors_map_to_sdk_classes(sdk: Client, fake: Fake) -> None:
    with pytest.raises(openai.AuthenticationError) as auth:
        sdk("/v1", "bad-key-0000").responses.create(model="gpt-4o", input="Hi")
    assert auth.value.code == "invalid_api_key"
    with pytest.raises(openai.RateLimitError):
        sdk("/_f/status=429/v1").responses.create(model="gpt-4o", input="Hi")
    with pytest.raises(openai.InternalServerError):
        sdk("/_f/status=503/qwen/v1").responses.create(model="qwen3-max", input="Hi")
    # MiniMax's chat endpoint answers errors with HTTP 200; its Responses endpoint does not.
    with pytest.raises(openai.RateLimitError):
        sdk("/_f/status=429/minimax/v1").responses.create(model="MiniMax-M3", input="Hi")
    with pytest.raises(openai.AuthenticationError):
        sdk("/minimax/v1", "bad-minimax").responses.create(model="MiniMax-M3", input="Hi")
    with pytest.raises(openai.BadRequestError) as unknown:
        sdk("/minimax/v1").responses.create(
            model="MiniMax-M3", input="Hi", extra_body={"surprise": 1}
        )
    assert unknown.value.param == "surprise"
    accepted = sdk().responses.create(model="gpt-4o", input="Hi", extra_body={"surprise": 1})
    assert accepted.status == "completed"
    missing_model = fake.http.post("/v1/responses", json={"input": "Hi"}, headers=AUTH)
    assert missing_model.status_code == 400
    assert missing_model.json()["error"] == {
        "message": "Missing required parameter: 'model'.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "missing_required_parameter",
    }
    not_json = fake.http.post("/v1/responses", content=b"{", headers=AUTH)
    assert not_json.status_code == 400
    assert fake.http.get("/v1/responses", headers=AUTH).status_code == 405


def test_error_after_sends_error_then_failed(sdk: Client) -> None:
    events = list(
        sdk("/_f/error_after=5/v1").responses.create(
            model="gpt-5.5", input="Hello there", reasoning={"summary": "auto"}, stream=True
        )
    )
    assert [e.type for e in events[-3:]] == [
        "response.reasoning_summary_text.delta",
        "error",
        "response.failed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    error_event, failed = events[-2:]
    assert error_event.type == "error"
    assert error_event.code == "server_error"
    assert failed.type == "response.failed"
    assert failed.response.status == "failed"
    assert failed.response.error is not None
    assert failed.response.error.code == "server_error"
    assert failed.response.usage is not None
    assert failed.response.usage.output_tokens == 1  # one reasoning delta was sent
    assert failed.response.usage.input_tokens == 5


def test_reasoning_text_flavors(sdk: Client, fake: Fake) -> None:
    """DeepSeek and the other Chinese providers show reasoning as ``reasoning_text``."""
    events = list(
        sdk("/deepseek/v1").responses.create(
            model="deepseek-v4-pro",
            input="Hello there",
            include=["reasoning.encrypted_content"],
            stream=True,
        )
    )
    types = [e.type for e in events]
    assert types[2:5] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
    ]
    assert types.count("response.reasoning_text.delta") == 8
    assert "response.reasoning_text.done" in types
    final = events[-1]
    assert final.type == "response.completed"
    reasoning = final.response.output[0]
    assert reasoning.type == "reasoning"
    assert reasoning.content is not None
    assert reasoning.content[0].text == "Thinking: Hello there lorem ipsum dolor sit amet"
    assert reasoning.encrypted_content is None  # DeepSeek returns the text, not a blob
    off = sdk("/deepseek/v1").responses.create(
        model="deepseek-v4-pro", input="Hello", reasoning={"effort": "none"}
    )
    assert [item.type for item in off.output] == ["message"]
    with pytest.raises(openai.BadRequestError) as info:
        sdk().responses.create(model="gpt-4o", input="Hello", reasoning={"effort": "high"})
    assert info.value.code == "unsupported_parameter"


def test_codex_request_runs_on_the_openai_flavor(fake: Fake) -> None:
    """Codex CLI 0.171.0's body and headers as recorded from ``codex exec`` (store false, ids,
    encrypted reasoning), plus the ``namespace`` tool it adds for MCP servers."""
    headers = {
        **AUTH,
        "accept": "text/event-stream",
        "originator": "codex_exec",
        "session-id": "019f0000-0000-7000-8000-000000000000",
    }
    exec_tool = {
        "type": "function",
        "name": "exec_command",
        "description": "Runs a command",
        "strict": False,
        "parameters": {
            "type": "object",
            "properties": {"cmd": {"type": "string"}, "yield_time_ms": {"type": "number"}},
            "required": ["cmd"],
            "additionalProperties": False,
        },
    }
    body: dict[str, Any] = {
        "model": "gpt-5.5",
        "input": [
            {
                "type": "message",
                "id": "msg_dev",
                "role": "developer",
                "content": [{"type": "input_text", "text": "You are Codex."}],
            },
            {**user("<environment_context><cwd>/tmp</cwd></environment_context>"), "id": "msg_env"},
            {**user("Run `echo hi` and report"), "id": "msg_prompt"},
        ],
        "tools": [
            exec_tool,
            {"type": "function", "name": "write_stdin", "parameters": {"type": "object"}},
            {"type": "custom", "name": "apply_patch", "format": {"type": "grammar"}},
            {
                "type": "namespace",
                "name": "mcp__docs",
                "description": "Docs server",
                "tools": [{"type": "function", "name": "search", "parameters": {"type": "object"}}],
            },
            {"type": "tool_search", "execution": "client", "parameters": {"type": "object"}},
            {"type": "web_search", "external_web_access": False},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"effort": "medium"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "019f0000-0000-7000-8000-000000000000",
        "text": {"verbosity": "low"},
        "client_metadata": {"x-codex-turn-metadata": "{}"},
    }
    first = fake.http.post("/_f/strict_reasoning/v1/responses", json=body, headers=headers)
    assert first.status_code == 200, first.text
    events = [data for _, data in sse_events(first.text)]
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert [i["type"] for i in done] == ["reasoning", "function_call"]
    assert done[1]["name"] == "exec_command"
    assert orjson.loads(done[1]["arguments"]) == {"cmd": "echo hi"}
    final = events[-1]
    assert final["type"] == "response.completed"
    assert final["response"]["text"]["verbosity"] == "low"
    assert final["response"]["usage"]["input_tokens_details"]["cached_tokens"] > 0
    # Codex sends the reasoning item back with ``content: null`` and ids on every item.
    reasoning = {**done[0], "content": None}
    output = {
        "type": "function_call_output",
        "id": "fco_1",
        "call_id": done[1]["call_id"],
        "output": "hi",
    }
    followup = {**body, "input": [*body["input"], reasoning, done[1], output]}
    second = fake.http.post("/_f/strict_reasoning/v1/responses", json=followup, headers=headers)
    assert second.status_code == 200, second.text
    final = sse_events(second.text)[-1][1]
    assert final["type"] == "response.completed"
    message = final["response"]["output"][-1]
    assert message["type"] == "message"
    assert message["content"][0]["text"].startswith("Echo: hi lorem")
    # DeepSeek serves Responses natively but runs none of OpenAI's built-in tools.
    refused = fake.http.post("/deepseek/v1/responses", json=body, headers=headers)
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "tools[4].type"
    assert "'tool_search'" in refused.json()["error"]["message"]


def test_namespace_function_is_called_with_its_namespace(sdk: Client) -> None:
    namespace: Any = {
        "type": "namespace",
        "name": "mcp__docs",
        "description": "Docs server",
        "tools": [{"type": "function", "name": "search", "parameters": {"type": "object"}}],
    }
    response = sdk().responses.create(model="gpt-4o", input="Find docs", tools=[namespace])
    [call] = response.output
    assert call.type == "function_call"
    assert (call.name, call.namespace, call.arguments) == ("search", "mcp__docs", '{"q":"Find"}')


def test_tool_choice(sdk: Client) -> None:
    client = sdk()
    other = {**WEATHER_TOOL, "name": "other"}
    tools: Any = [WEATHER_TOOL, other]
    named = client.responses.create(
        model="gpt-4o", input=PROMPT, tools=tools, tool_choice={"type": "function", "name": "other"}
    )
    assert named.output[0].type == "function_call"
    assert named.output[0].name == "other"
    plain = client.responses.create(model="gpt-4o", input=PROMPT, tools=tools, tool_choice="none")
    assert plain.output[0].type == "message"
    # Naming a tool in the prompt picks it; after a tool output "auto" answers, "required" calls.
    mentioned = client.responses.create(model="gpt-4o", input="use other now", tools=tools)
    picked: Any = mentioned.output[0]
    assert picked.name == "other"
    call = dump(mentioned.output)[0]
    history: Any = [
        user("use other now"),
        call,
        {"type": "function_call_output", "call_id": call["call_id"], "output": "done"},
    ]
    answered = client.responses.create(model="gpt-4o", input=history, tools=tools)
    assert answered.output[0].type == "message"
    forced = client.responses.create(
        model="gpt-4o", input=history, tools=tools, tool_choice="required"
    )
    assert forced.output[0].type == "function_call"
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(
            model="gpt-4o",
            input="x",
            tools=tools,
            tool_choice={"type": "function", "name": "missing"},
        )
    assert info.value.param == "tool_choice"


class Forecast(BaseModel):
    city: str
    degrees: int
    sunny: bool


def test_structured_output_with_parse(sdk: Client) -> None:
    parsed = sdk().responses.parse(model="gpt-4o", input="Forecast for Paris", text_format=Forecast)
    forecast = parsed.output_parsed
    assert forecast is not None
    assert (forecast.degrees, forecast.sunny) == (1, False)
    assert forecast.city.startswith("Echo: Forecast for Paris lorem")
    with pytest.raises(openai.BadRequestError) as info:
        sdk().responses.create(
            model="gpt-4o", input="Hello", text={"format": {"type": "json_object"}}
        )
    assert "must contain the word 'json'" in said(info.value)


@pytest.mark.parametrize(
    ("items", "param", "fragment"),
    [
        (
            [
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "input_text", "text": "x"}],
                }
            ],
            "input[0].content[0]",
            "Supported values are: 'output_text' and 'refusal'.",
        ),
        (
            [{"type": "message", "role": "tool", "content": "x"}],
            "input[0].role",
            "Invalid value: 'tool'.",
        ),
        (
            [{"role": "assistant", "content": "x", "phase": "thinking"}, user("hi")],
            "input[0].phase",
            "'commentary' and 'final_answer'",
        ),
        (
            [user("hi"), {"type": "function_call_output", "call_id": "call_x", "output": "1"}],
            "input",
            "No tool call found for function call output with call_id call_x.",
        ),
        (
            [
                user("hi"),
                {"type": "function_call", "call_id": "call_y", "name": "f", "arguments": "{}"},
            ],
            "input",
            "No tool output found for function call call_y.",
        ),
        (
            [{**user("a"), "id": "msg_1"}, {**user("b"), "id": "msg_1"}],
            "input",
            "Duplicate item found with id msg_1.",
        ),
        ([], "input", "empty array"),
    ],
)
def test_input_validation(sdk: Client, items: list[Any], param: str, fragment: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        sdk().responses.create(model="gpt-4o", input=items)
    assert info.value.param == param
    assert fragment in said(info.value)


def test_assistant_phase_is_accepted(sdk: Client) -> None:
    history: Any = [
        user("Hello"),
        {
            "type": "message",
            "role": "assistant",
            "phase": "commentary",
            "content": [{"type": "output_text", "text": "Looking"}],
        },
        user("there"),
    ]
    codex = sdk().responses.create(model="gpt-5.3-codex", input=history)
    answer: Any = codex.output[-1]
    assert answer.phase == "final_answer"
    older = sdk().responses.create(model="gpt-5.2", input=history)
    plain: Any = older.output[-1]
    assert plain.phase is None


def test_chat_shaped_tools_are_refused(sdk: Client) -> None:
    chat_tool: Any = {"type": "function", "function": {"name": "lookup", "parameters": {}}}
    with pytest.raises(openai.BadRequestError) as info:
        sdk().responses.create(model="gpt-4o", input="Hi", tools=[chat_tool])
    assert said(info.value) == "Missing required parameter: 'tools[0].name'."


def test_hosted_tools_per_flavor(sdk: Client) -> None:
    web: Any = [{"type": "web_search"}]
    assert sdk().responses.create(model="gpt-4o", input="Hi", tools=web).status == "completed"
    assert sdk("/azure/openai/v1").responses.create(model="gpt-4o", input="Hi", tools=web)
    for base in ("/qwen/v1", "/ark/v1", "/deepseek/v1", "/minimax/v1"):
        with pytest.raises(openai.BadRequestError) as info:
            sdk(base).responses.create(model="m", input="Hi", tools=web)
        assert "web_search" in said(info.value)


def test_azure_takes_its_api_key_header(fake: Fake) -> None:
    response = fake.http.post(
        "/azure/openai/v1/responses",
        json={"model": "gpt-4o", "input": "Hi"},
        headers={"api-key": KEY},
    )
    assert response.status_code == 200
    missing = fake.http.post(
        "/azure/openai/v1/responses",
        json={"model": "gpt-4o", "input": "Hi", "previous_response_id": "resp_x"},
        headers={"api-key": KEY},
    )
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "previous_response_not_found"


def test_stored_responses_are_bounded() -> None:
    state = responses.State()
    account = state.account_id(KEY)
    for i in range(responses.MAX_RESPONSES_PER_ACCOUNT + 5):
        state.save(account, f"resp_{i}", [{"type": "message", "id": f"msg_{i}"}])
    assert state.context(account, "resp_0") is None
    assert state.context(account, f"resp_{responses.MAX_RESPONSES_PER_ACCOUNT + 4}") is not None
    assert state.context(state.account_id(OTHER_KEY), "resp_10") is None


def test_strict_directive_parses() -> None:
    assert faults.parse("strict_reasoning").strict_reasoning is True
    assert faults.parse("strict_reasoning=0").strict_reasoning is False
    with pytest.raises(faults.FaultSyntaxError):
        faults.parse("strict_reasoning=maybe")


def test_chunks_directive_sets_the_text_length(fake: Fake) -> None:
    """8 reasoning deltas, then the 3 text tokens ``chunks=3`` asks for."""
    response = httpx.post(
        f"{fake.base_url}/_f/chunks=3/deepseek/v1/responses",
        json={"model": "deepseek-v4-flash", "input": "Hello", "stream": True},
        headers=AUTH,
    )
    names = [name for name, _ in sse_events(response.text)]
    assert (
        names.count("response.reasoning_text.delta") + names.count("response.output_text.delta")
        == 11
    )
