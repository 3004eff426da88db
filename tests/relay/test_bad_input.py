"""Malformed requests never produce a 500, on any provider family.

What Baton validates itself (the body, ``model``) is a 400 from Baton. The
rest of an OpenAI request is the provider's to judge on pass-through
providers, so there the upstream's answer comes back; where Baton converts
the request (Anthropic), what it cannot convert is a 400 from Baton.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

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
