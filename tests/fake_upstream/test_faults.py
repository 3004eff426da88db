"""Fault directives in the URL, timing defaults, introspection and disconnect detection."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from fake_upstream import create_app
from tests.fake_upstream.conftest import (
    ANTHROPIC_AUTH,
    AUTH,
    Fake,
    ServerThread,
    chat,
    sse_data,
    sse_events,
)

CHAT = "/v1/chat/completions"


def f(directives: str, path: str = CHAT) -> str:
    return f"/_f/{directives}{path}"


@pytest.mark.parametrize(
    ("base", "status", "http_status", "check"),
    [
        ("/v1", 503, 503, lambda b: b["error"]["type"] == "server_error"),
        ("/v1", 400, 400, lambda b: b["error"]["type"] == "invalid_request_error"),
        ("/anthropic/v1", 529, 529, lambda b: b["error"]["type"] == "overloaded_error"),
        (
            "/gemini/v1beta/openai",
            429,
            429,
            lambda b: b[0]["error"]["status"] == "RESOURCE_EXHAUSTED",
        ),
        ("/moonshot/v1", 429, 429, lambda b: b["error"]["type"] == "rate_limit_reached_error"),
        ("/zhipu/v1", 429, 429, lambda b: b["error"]["code"] == "1302"),
        ("/minimax/v1", 429, 200, lambda b: b["base_resp"]["status_code"] == 1002),
        ("/deepseek/v1", 402, 402, lambda b: "balance" in b["error"]["message"].lower()),
        ("/vllm/v1", 500, 500, lambda b: b["error"]["code"] == 500),
    ],
)
def test_status(fake: Fake, base: str, status: int, http_status: int, check: object) -> None:
    path = "/messages" if base.startswith("/anthropic") else "/chat/completions"
    response = fake.http.post(
        f(f"status={status}", base + path), json=chat(), headers={**AUTH, **ANTHROPIC_AUTH}
    )
    assert response.status_code == http_status
    assert callable(check) and check(response.json())


def test_429_retry_after_and_code(fake: Fake) -> None:
    response = fake.http.post(f("status=429"), json=chat(), headers=AUTH)
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    quota = fake.http.post(
        f("status=429;retry_after=7;code=insufficient_quota"), json=chat(), headers=AUTH
    )
    assert quota.headers["retry-after"] == "7"
    assert quota.json()["error"]["type"] == "insufficient_quota"


def test_latency(fake: Fake) -> None:
    started = time.monotonic()
    response = fake.http.post(f("latency_ms=200"), json=chat(), headers=AUTH)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.2


def test_first_byte_and_chunk_delays(fake: Fake) -> None:
    body = chat(stream=True, max_tokens=3)
    started = time.monotonic()
    with fake.http.stream("POST", f("first_byte_ms=300"), json=body, headers=AUTH) as response:
        headers_at = time.monotonic() - started
        first_line = next(response.iter_lines())
        first_at = time.monotonic() - started
    assert headers_at < 0.25
    assert first_at >= 0.3
    assert first_line.startswith("data: ")
    started = time.monotonic()
    text = fake.http.post(f("chunk_ms=50"), json=body, headers=AUTH).text
    events = sse_data(text)
    assert len(events) == 6  # role, 3 tokens, finish, [DONE]
    assert time.monotonic() - started >= 5 * 0.05


def test_tps_paces_streams_and_non_streams(fake: Fake) -> None:
    started = time.monotonic()
    fake.http.post(f("tps=100;chunks=21"), json=chat(stream=True), headers=AUTH)
    assert 0.2 <= time.monotonic() - started < 1.0  # 20 gaps at 10 ms
    started = time.monotonic()
    fake.http.post(f("tps=100;chunks=20"), json=chat(), headers=AUTH)
    assert 0.2 <= time.monotonic() - started < 1.0


def test_chunks(fake: Fake) -> None:
    body = fake.http.post(f("chunks=3"), json=chat(), headers=AUTH).json()
    assert body["choices"][0]["message"]["content"] == "Echo: Hello there"
    assert body["choices"][0]["finish_reason"] == "stop"
    capped = fake.http.post(f("chunks=30"), json=chat(max_tokens=4), headers=AUTH).json()
    assert capped["usage"]["completion_tokens"] == 4
    assert capped["choices"][0]["finish_reason"] == "length"


def test_drop_after_breaks_the_connection(fake: Fake) -> None:
    received: list[str] = []
    # The failure happens while reading the body, so the read loop sits inside raises().
    with (
        pytest.raises(httpx.RemoteProtocolError),
        fake.http.stream("POST", f("drop_after=3"), json=chat(stream=True), headers=AUTH) as resp,
    ):
        for line in resp.iter_lines():
            if line:
                received.append(line)
    assert len(received) == 3
    assert "data: [DONE]" not in received
    [record] = fake.wait_for(lambda h: h[-1]["ended_at"] is not None)
    assert (record["completed"], record["cancelled"]) == (False, False)


def test_error_after(fake: Fake) -> None:
    events = sse_data(fake.http.post(f("error_after=2"), json=chat(stream=True), headers=AUTH).text)
    assert len(events) == 3
    assert events[-1]["error"]["type"] == "server_error"
    text = fake.http.post(
        f("error_after=3", "/anthropic/v1/messages"),
        json={
            "model": "c",
            "max_tokens": 9,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers=ANTHROPIC_AUTH,
    ).text
    name, data = sse_events(text)[-1]
    assert name == "error"
    assert data["error"]["type"] == "api_error"
    zhipu = sse_data(
        fake.http.post(
            f("error_after=1", "/zhipu/v1/chat/completions"), json=chat(stream=True), headers=AUTH
        ).text
    )
    assert zhipu[-1] == {"error": {"code": "500", "message": zhipu[-1]["error"]["message"]}}


def test_malformed_at(fake: Fake) -> None:
    text = fake.http.post(f("malformed_at=2"), json=chat(stream=True), headers=AUTH).text
    events = sse_data(text)
    assert events[1] == "{not json"
    assert events[-1] == "[DONE]"
    anthropic = fake.http.post(
        f("malformed_at=1", "/anthropic/v1/messages"),
        json={
            "model": "c",
            "max_tokens": 9,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers=ANTHROPIC_AUTH,
    ).text
    assert anthropic.startswith("event: message_start\ndata: {not json\n\n")


def test_hang_until_client_gives_up(fake: Fake) -> None:
    with pytest.raises(httpx.ReadTimeout):
        fake.http.post(f("hang"), json=chat(), headers=AUTH, timeout=0.3)
    [record] = fake.wait_for(lambda h: bool(h and h[-1]["cancelled"]))
    assert record["cancelled"] is True
    assert record["completed"] is False
    assert record["ended_at"] - record["started_at"] < 1.0


def test_cancellation_mid_stream_stops_generation(fake: Fake) -> None:
    with fake.http.stream(
        "POST", f("tps=20;chunks=200"), json=chat(stream=True), headers=AUTH
    ) as response:
        lines = response.iter_lines()
        data = [line for line in (next(lines) for _ in range(6)) if line]
    assert len(data) == 3
    closed_at = time.time()
    [record] = fake.wait_for(lambda h: bool(h and h[-1]["cancelled"]))
    assert record["cancelled"] is True
    assert record["completed"] is False
    assert record["ended_at"] - closed_at < 0.3  # noticed promptly, not after 10 s of tokens


def test_cancellation_during_latency(fake: Fake) -> None:
    with pytest.raises(httpx.ReadTimeout):
        fake.http.post(f("latency_ms=5000"), json=chat(), headers=AUTH, timeout=0.2)
    [record] = fake.wait_for(lambda h: bool(h and h[-1]["cancelled"]))
    assert record["ended_at"] - record["started_at"] < 1.0


def test_directives_apply_to_every_flavor_path(fake: Fake) -> None:
    response = fake.http.post(
        f("status=503", "/azure/openai/deployments/d/chat/completions"),
        params={"api-version": "2024-10-21"},
        json=chat(),
        headers={"api-key": "k"},
    )
    assert response.status_code == 503
    assert response.json() == {
        "error": {"code": "503", "message": response.json()["error"]["message"]}
    }
    assert (
        fake.requests()[-1]["path"] == "/_f/status=503/azure/openai/deployments/d/chat/completions"
    )


def test_unknown_directive_is_a_loud_400(fake: Fake) -> None:
    response = fake.http.post(f("stauts=500"), json=chat(), headers=AUTH)
    assert response.status_code == 400
    assert "stauts" in response.json()["error"]["message"]


def test_introspection(fake: Fake) -> None:
    assert fake.http.get("/_fake/health").status_code == 200
    fake.http.post(CHAT, json=chat(), headers=AUTH)
    assert len(fake.requests()) == 1
    assert fake.http.delete("/_fake/requests").json() == {"cleared": 1}
    assert fake.requests() == []


@pytest.fixture(scope="module")
def slow_server() -> Iterator[ServerThread]:
    with ServerThread(create_app(default_latency_ms=150, default_tps=200)) as server:
        yield server


def test_server_defaults_and_directive_overrides(slow_server: ServerThread) -> None:
    with httpx.Client(base_url=slow_server.base_url, timeout=5) as client:
        started = time.monotonic()
        client.post(CHAT, json=chat(max_tokens=20), headers=AUTH)
        assert time.monotonic() - started >= 0.15 + 0.1  # latency + 20 tokens at 200/s
        started = time.monotonic()
        client.post(f("latency_ms=0;tps=100000"), json=chat(max_tokens=20), headers=AUTH)
        assert time.monotonic() - started < 0.1


@pytest.mark.parametrize(
    ("form", "shown"),
    [("", "sk-test-1234"), ("full", "sk-test-1234"), ("prefix", "sk-test-1234...")],
)
def test_echo_key_names_the_presented_key(fake: Fake, form: str, shown: str) -> None:
    directive = "echo_key" + (f"={form}" if form else "")
    reply = fake.http.post(f(f"status=401,{directive}"), json=chat(), headers=AUTH)
    assert reply.status_code == 401
    assert reply.json()["error"]["message"].endswith(f"The key used was {shown}")
    events = sse_data(
        fake.http.post(f(f"error_after=2,{directive}"), json=chat(stream=True), headers=AUTH).text
    )
    assert events[-1]["error"]["message"].endswith(f"The key used was {shown}")


def test_echo_key_url_encodes(fake: Fake) -> None:
    key = "sk-a+b/c=d"
    reply = fake.http.post(
        f("status=403,echo_key=url"), json=chat(), headers={"Authorization": f"Bearer {key}"}
    )
    assert reply.json()["error"]["message"].endswith("The key used was sk-a%2Bb%2Fc%3Dd")
    assert fake.http.post(f("echo_key=base64"), json=chat(), headers=AUTH).status_code == 400
