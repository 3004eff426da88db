"""JSON logs: every relay log line carries its request id; no secret and no prompt, ever."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from config.logging import JsonFormatter, RequestIdFilter, redact
from scripts.services import free_port
from tests.ops.test_forwarded_for import compose_web_command
from tests.polling import until
from tests.processes import BatonProcess
from tests.relay.conftest import UPSTREAM_SECRET as DEFAULT_SECRET
from tests.relay.conftest import Relay, make_credential, make_route

PROMPT = "CANARY-PROMPT-do-not-log-7731"
UPSTREAM_SECRET = "bad-upstream-secret-5a9e01"  # the fake rejects keys starting with "bad"
MESSAGES: Any = [{"role": "user", "content": PROMPT}]


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def test_json_logs_carry_the_request_id_and_no_secret(
    relay: Relay, fake: Any, settings: Any, captured: io.StringIO
) -> None:
    settings.BATON_REQUEST_LOG = "all"
    rejected = make_credential(
        relay.team, "rejected", fake.base_url + "/v1", secret=UPSTREAM_SECRET
    )
    make_route(relay.team, "rejected", (rejected, "demo-chat", 0))
    down = make_credential(relay.team, "down", f"{fake.base_url}/_f/status=500/v1")
    make_route(relay.team, "down", (down, "demo-chat", 0))
    wrong_key = "sk-baton-" + "Q" * 32
    request_ids = []
    with httpx.Client(base_url=relay.base_url, timeout=10) as client:
        for model, key, stream in [
            ("gpt-4o", relay.key, False),
            ("gpt-4o", relay.key, True),
            ("rejected", relay.key, False),
            ("down", relay.key, True),
            ("gpt-4o", wrong_key, False),
        ]:
            response = client.post(
                "/v1/chat/completions",
                json={"model": model, "messages": MESSAGES, "stream": stream},
                headers={"authorization": f"Bearer {key}", "api-key": key},
            )
            request_ids.append(response.headers["x-request-id"])
    assert len(set(request_ids)) == 5

    def logged() -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in captured.getvalue().splitlines()]

    def request_lines() -> list[dict[str, Any]]:
        return [r for r in logged() if r["logger"] == "baton.requests"]

    # A request's line is written once its response is out, so the client can be first.
    until(
        lambda: {r["request_id"] for r in request_lines()} == set(request_ids),
        "a log line for every request",
    )
    text = captured.getvalue()
    records = logged()
    relay_records = request_lines()
    assert len(relay_records) == 5
    for record in relay_records:
        assert {"ts", "level", "msg", "status", "latency_ms", "overhead_ms"} <= record.keys()
    for secret in (relay.key, wrong_key, UPSTREAM_SECRET, DEFAULT_SECRET, PROMPT):
        assert secret not in text
    # Errors logged while serving a request carry its id too.
    failures = [r for r in records if r["level"] in ("WARNING", "ERROR")]
    assert failures and all(r.get("request_id") in request_ids for r in failures)


def test_secrets_are_masked_even_if_something_logs_them() -> None:
    line = (
        "calling https://api.example.com/v1?key=AIzaSyD-abcdefghijklmnopqrstuvwxyz "
        "with Authorization: Bearer sk-proj-abcdefghijklmnop and sk-baton-ABCDEFGHIJKLMNOP "
        "via postgres://baton:hunter2-password@db:5432/baton"
    )
    masked = redact(line)
    for secret in ("AIzaSyD-abc", "abcdefghijklmnop", "ABCDEFGHIJKLMNOP", "hunter2"):
        assert secret not in masked
    assert "postgres://baton:***@db:5432/baton" in masked


@pytest.mark.parametrize("flag", [True, False])
def test_no_access_log_silences_uvicorns_access_lines(
    transactional_db: None, redis_client: Any, flag: bool
) -> None:
    """uvicorn writes access lines whenever its access logger reaches a handler, whatever the
    flag: Baton's logging configuration must leave that logger as uvicorn set it."""
    port = free_port()
    command = compose_web_command(port)  # as deployed
    if not flag:
        command.remove("--no-access-log")
    assert ("--no-access-log" in command) is flag
    env = {"REDIS_URL": os.environ["REDIS_URL"], "BATON_REQUEST_LOG": "all"}
    with BatonProcess(env, port=port, command=command) as baton:
        assert httpx.get(baton.base_url + "/healthz").status_code == 200
        refused = httpx.post(
            baton.base_url + "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": MESSAGES},
            headers={"authorization": "Bearer sk-baton-" + "x" * 32},
        )
        assert refused.status_code == 401
        # Baton's own line for that request comes after any access line for /healthz.
        until(lambda: "baton.requests" in baton.logs(), "the relay's request line")
        logs = baton.logs()
    assert ('"GET /healthz HTTP/1.1" 200' in logs) is not flag, logs
