"""/v1/responses through a running Baton with the official openai SDK's ``responses``: a native
target (a provider's own Responses endpoint, passed through) and a translated one (a chat-only
provider through the chat pivot)."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import orjson
import pytest

from accounts.models import Team
from relay.models import ProviderCredential
from tests.relay.conftest import Relay, make_credential, make_route
from tests.relay.test_relay_sdk import usage_events

TOOL: Any = {
    "type": "function",
    "name": "read_file",
    "description": "Read a file",
    "parameters": {
        "type": "object",
        "properties": {"path": {"type": "string"}},
        "required": ["path"],
    },
}
ASK = "Please read_file `notes.txt` for me"


def user(text: str) -> Any:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def dump(items: list[Any]) -> list[Any]:
    """Output items as a client passes them back as input."""
    return [item.model_dump(exclude_none=True) for item in items]


def answered(output: list[Any], result: str = "hello from notes") -> list[Any]:
    """The turn's output items and an output for its function call, as the next input."""
    call = next(item for item in output if item.type == "function_call")
    return [
        *dump(output),
        {"type": "function_call_output", "call_id": call.call_id, "output": result},
    ]


def native(
    team: Team, fake: Any, name: str, base: str, provider: str = "openai", **extra: Any
) -> ProviderCredential:
    """A credential whose base URL serves Responses natively (declared, as a custom URL must)."""
    url = fake.base_url + base
    return make_credential(
        team, name, url, provider=provider, extras={"dialects": {"responses": url}}, **extra
    )


def sse(raw: bytes) -> list[dict[str, Any]]:
    """The data of each event of a Responses stream, with its ``event:`` name checked."""
    events = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = block.split("\n")
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        payload = orjson.loads(lines[1][6:])
        assert payload["type"] == lines[0][7:], block
        events.append(payload)
    return events


@pytest.fixture
def responses(relay: Relay, fake: Any) -> Relay:
    openai_native = native(relay.team, fake, "openai-native", "/v1")
    # chunks=20: the fake's chat flavors take max_tokens (max_output_tokens here) as the
    # length wanted; a natural 20-token answer ends with finish_reason "stop".
    chat_only = make_credential(
        relay.team, "glm", fake.base_url + "/_f/chunks=20/zhipu/v1", provider="zhipu"
    )
    make_route(relay.team, "gpt-native", (openai_native, "gpt-5.5", 0))
    make_route(relay.team, "glm", (chat_only, "glm-4.5", 0))
    return relay


@pytest.mark.parametrize(
    ("alias", "path", "egress"),
    [("gpt-native", "/v1/responses", "responses"), ("glm", "/zhipu/v1/chat/completions", "chat")],
)
def test_create_and_stream(
    responses: Relay, fake: Any, redis_client: Any, alias: str, path: str, egress: str
) -> None:
    sdk = responses.client()
    reply = sdk.responses.create(model=alias, input="Hello there", max_output_tokens=64)
    assert reply.status == "completed" and reply.output_text.startswith("Echo: Hello there")
    assert reply.usage is not None and reply.usage.input_tokens > 0
    assert reply.usage.output_tokens > 0
    assert fake.requests()[-1]["path"].endswith(path)

    with sdk.responses.stream(model=alias, input=[user("Hello again")]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text and final.output_text == text
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert final.usage is not None and final.usage.output_tokens > 0
    recorded = usage_events(redis_client, 2)
    assert [(e.dialect, e.egress) for e in recorded] == [("responses", egress)] * 2
    assert recorded[1].streamed and not recorded[1].estimated
    assert recorded[1].completion_tokens == final.usage.output_tokens
    assert recorded[1].prompt_tokens == final.usage.input_tokens


def test_a_translated_stream_is_the_full_event_sequence(responses: Relay) -> None:
    raw = httpx.post(
        responses.base_url + "/v1/responses",
        headers={"authorization": f"Bearer {responses.key}"},
        json={"model": "glm", "input": "Hello there", "stream": True},
    )
    assert raw.status_code == 200 and raw.headers["content-type"] == "text/event-stream"
    assert b"[DONE]" not in raw.content
    kinds = [e["type"] for e in sse(raw.content)]
    deltas = kinds.count("response.output_text.delta")
    assert deltas > 1
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]


def test_errors_are_openai_shaped(responses: Relay) -> None:
    with pytest.raises(openai.AuthenticationError) as denied:
        responses.client(key="sk-baton-wrong").responses.create(model="glm", input="x")
    assert denied.value.code == "invalid_api_key"
    with pytest.raises(openai.NotFoundError) as unknown:
        responses.client().responses.create(model="no-such-model", input="x")
    assert unknown.value.code == "model_not_found"
    missing = httpx.post(
        responses.base_url + "/v1/responses",
        headers={"authorization": f"Bearer {responses.key}"},
        json={"model": "glm"},
    )
    assert missing.status_code == 400
    assert missing.json() == {
        "error": {
            "message": "Missing required parameter: 'input'.",
            "type": "invalid_request_error",
            "param": "input",
            "code": "missing_required_parameter",
        }
    }
    with pytest.raises(openai.BadRequestError) as referenced:
        responses.client().responses.create(
            model="glm", input=[{"type": "item_reference", "id": "msg_123"}]
        )
    assert "item_reference needs the stateful Responses endpoint" in referenced.value.message
