"""Malformed requests never produce a 500, on any provider family.

What Baton validates itself (the body, ``model``) is a 400 from Baton. The
rest of an OpenAI request is the provider's to judge on pass-through
providers, so there the upstream's answer comes back; where Baton converts
the request (Anthropic), what it cannot convert is a 400 from Baton.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import httpx
import orjson
import pytest

from gateway.asgi import header_value
from tests.relay.conftest import Relay, make_credential, make_route

BAD_BODIES: list[Any] = [
    {"model": 5, "messages": []},
    {"model": "", "messages": []},
    {"messages": [{"role": "user", "content": "hi"}]},
    {"model": "MODEL", "messages": "hi"},
    {"model": "MODEL", "messages": [{"role": "user", "content": {"odd": 1}}]},
    {"model": "MODEL", "messages": [{"role": "user"}]},
    {"model": "MODEL", "messages": [None]},
    {"model": "MODEL", "messages": [{"role": "user", "content": "hi"}], "tools": "nope"},
    {"model": "MODEL", "messages": [{"role": "user", "content": "hi"}], "max_tokens": "many"},
    {
        "model": "MODEL",
        "messages": [{"role": "user", "content": "hi"}],
        "stream_options": "x",
        "stream": True,
    },
    {"model": "MODEL", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"},
    [1, 2, 3],
    "just a string",
]


@pytest.fixture
def claude_too(relay: Relay, fake: Any) -> Relay:
    credential = make_credential(
        relay.team, "anthropic", fake.base_url + "/anthropic/v1", provider="anthropic"
    )
    make_route(relay.team, "claude", (credential, "claude-sonnet-4-5", 0))
    return relay


@pytest.mark.parametrize("model", ["gpt-4o", "claude"])
def test_malformed_bodies_are_client_errors(claude_too: Relay, model: str) -> None:
    headers = {"authorization": f"Bearer {claude_too.key}"}
    for body in BAD_BODIES:
        if isinstance(body, dict) and body.get("model") == "MODEL":
            body = {**body, "model": model}
        response = httpx.post(
            claude_too.base_url + "/v1/chat/completions", json=body, headers=headers, timeout=10
        )
        assert response.status_code < 500, (body, response.status_code, response.text)
        baton_validates = (
            not isinstance(body, dict)
            or not isinstance(body.get("model"), str)
            or not body["model"]
            or not isinstance(body.get("stream", False), bool)
            or not isinstance(body.get("stream_options", {}), dict)
        )
        if baton_validates or model == "claude":
            assert response.status_code == 400, (body, response.status_code, response.text)
        if response.status_code >= 400:
            error = response.json()["error"]
            assert error["message"] and "type" in error, body


def post(relay: Relay, body: Any) -> httpx.Response:
    return httpx.post(
        relay.base_url + "/v1/chat/completions",
        content=orjson.dumps(body) if not isinstance(body, bytes) else body,
        headers={"authorization": f"Bearer {relay.key}", "content-type": "application/json"},
        timeout=10,
    )


CHAT: dict[str, Any] = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def deep_json(depth: int, shape: str = "list", field: str = "metadata") -> bytes:
    """A chat body whose ``field`` makes the whole body ``depth`` levels deep, written by
    hand: orjson refuses to write what it refuses to re-encode."""
    opener, closer = (b"[", b"]") if shape == "list" else (b'{"a":', b"}")
    inner = opener * (depth - 1) + b"1" + closer * (depth - 1)
    rest = {k: v for k, v in CHAT.items() if k != field}
    return orjson.dumps(rest)[:-1] + b',"' + field.encode() + b'":' + inner + b"}"


@pytest.mark.parametrize("shape", ["list", "dict"])
@pytest.mark.parametrize("depth", [255, 300, 1023, 1024])
def test_json_nested_deeper_than_baton_can_forward_is_a_400(
    relay: Relay, fake: Any, depth: int, shape: str
) -> None:
    response = post(relay, deep_json(depth, shape))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_json" and "deep" in error["message"]
    assert fake.requests() == []  # refused before any upstream call


@pytest.mark.parametrize("field", ["messages", "tools", "stream_options", "max_tokens", "model"])
def test_depth_is_refused_in_any_field(relay: Relay, fake: Any, field: str) -> None:
    response = post(relay, deep_json(400, field=field))
    assert response.status_code == 400, response.text
    assert fake.requests() == []


def test_the_deepest_body_baton_can_forward_is_forwarded(relay: Relay, fake: Any) -> None:
    response = post(relay, deep_json(254, "dict"))
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]
    # (The fake's history cannot be read back: it nests the body deeper still.)


@pytest.mark.parametrize(
    "model",
    [
        "openai/demo\nchat",
        "openai/demo-chat\r\nx-injected: 1",
        "openai/demo\x00chat",
        "openai/demo\x7fchat",
        "openai/demo\tchat",
        "openai/demo\u2028chat",  # a Unicode line separator
        "gpt-4o\n",
        "openai/" + "x" * 300,
    ],
)
def test_model_names_are_validated_before_routing(
    relay: Relay, fake: Any, redis_client: Any, model: str
) -> None:
    for stream in (False, True):
        response = post(relay, {**CHAT, "model": model, "stream": stream})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert (error["code"], error["param"]) == ("invalid_model", "model")
    assert fake.requests() == []  # no upstream call was made (or billed)


def test_a_printable_non_ascii_model_name_reaches_the_header_percent_encoded(
    relay: Relay, fake: Any
) -> None:
    response = post(relay, {**CHAT, "model": "openai/модель-1"})
    assert response.status_code == 200, response.text
    raw = dict(response.headers.raw)[b"x-baton-model"]
    assert raw.isascii() and unquote(raw.decode()) == "модель-1"
    assert fake.requests()[-1]["body"]["model"] == "модель-1"


@pytest.mark.parametrize(
    "text", ["demo-chat", "a\r\nx-injected: 1", "nul\x00", "del\x7f", "tab\t", "модель", "50%"]
)
def test_header_values_are_visible_ascii(text: str) -> None:
    value = header_value(text)
    assert all(0x20 <= byte < 0x7F for byte in value), value
    if text.isascii() and text.isprintable():
        assert value == text.encode()
    else:
        assert unquote(value.decode()) == text
