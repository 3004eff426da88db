"""Graceful shutdown: SIGTERM mid-stream loses no usage event and no stream ends abruptly."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import httpx
import orjson
import pytest

from accounts import actions
from accounts.models import User
from billing.events import STREAM_KEY, UsageEvent
from relay.catalog_seed import seed
from relay.models import Provider
from tests.polling import until
from tests.processes import BatonProcess
from tests.relay.conftest import make_credential, make_key, make_route

MESSAGES: Any = [{"role": "user", "content": "a long answer please"}]
# uvicorn re-raises the SIGTERM it handled once it has shut down cleanly.
EXITED = (0, -signal.SIGTERM)


class Client(threading.Thread):
    """One request in its own thread, remembering what the client saw."""

    def __init__(self, base_url: str, key: str, body: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.base_url, self.key, self.body = base_url, key, body
        self.request_id = ""
        self.status = 0
        self.events: list[Any] = []
        self.first_byte = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.stream(
                "POST",
                self.base_url + "/v1/chat/completions",
                json=self.body,
                headers={"authorization": f"Bearer {self.key}"},
                timeout=30,
            ) as response:
                self.status = response.status_code
                self.request_id = response.headers["x-request-id"]
                for line in response.iter_lines():
                    self.first_byte.set()
                    if line.startswith("data: "):
                        raw = line[6:]
                        self.events.append(raw if raw == "[DONE]" else orjson.loads(raw))
        except BaseException as exc:  # the test asserts there is none
            self.error = exc
        finally:
            self.first_byte.set()


def usage_events(redis_client: Any) -> dict[str, UsageEvent]:
    events = [UsageEvent.from_json(f[b"event"]) for _, f in redis_client.xrange(STREAM_KEY)]
    return {event.request_id: event for event in events}


@pytest.fixture
def team_key(transactional_db: None, fake: Any, redis_client: Any) -> tuple[Any, str]:
    seed(Provider)
    owner = User.objects.create_user("shutdown@example.com", "x-sturdy-passphrase-1")
    team = actions.create_team(owner, name="Shutdown team")
    return team, make_key(team)


def start_clients(
    baton: BatonProcess, key: str, streams: int, plain: int
) -> tuple[list[Client], list[Client]]:
    stream_clients = [
        Client(baton.base_url, key, {"model": "slow", "messages": MESSAGES, "stream": True})
        for _ in range(streams)
    ]
    plain_clients = [
        Client(baton.base_url, key, {"model": "slow-json", "messages": MESSAGES})
        for _ in range(plain)
    ]
    for client in stream_clients + plain_clients:
        client.start()
    for client in stream_clients:
        assert client.first_byte.wait(10)
    return stream_clients, plain_clients


def upstream_has(fake: Any, plain: int) -> None:
    """SIGTERM must find the plain requests in flight: wait until the upstream has them."""
    fake.wait_for(
        lambda history: sum("latency_ms=" in r["path"] for r in history) >= plain, timeout=10
    )
    assert sum("latency_ms=" in r["path"] for r in fake.requests()) == plain


def test_sigterm_lets_streams_finish_within_the_grace(
    team_key: tuple[Any, str], fake: Any, redis_client: Any
) -> None:
    team, key = team_key
    slow = make_credential(team, "slow", f"{fake.base_url}/_f/chunk_ms=40;chunks=30/v1")
    make_route(team, "slow", (slow, "demo-chat", 0))
    slow_json = make_credential(team, "slow-json", f"{fake.base_url}/_f/latency_ms=700/v1")
    make_route(team, "slow-json", (slow_json, "demo-chat", 0))
    env = {"REDIS_URL": os.environ["REDIS_URL"], "BATON_SHUTDOWN_GRACE_SECONDS": "20"}
    with BatonProcess(env) as baton:
        streams, plain = start_clients(baton, key, streams=6, plain=3)
        upstream_has(fake, plain=3)
        baton.terminate()
        for client in streams + plain:
            client.join(15)
        assert baton.proc.wait(15) in EXITED, baton.logs()
        logs = baton.logs()
    for client in streams:
        assert client.error is None, (client.error, logs)
        assert client.status == 200 and client.events[-1] == "[DONE]"
        assert not any(isinstance(e, dict) and "error" in e for e in client.events)
    for client in plain:
        assert client.error is None and client.status == 200, client.error
    recorded = usage_events(redis_client)
    for client in streams:
        event = recorded[client.request_id]
        assert (event.status, event.completion_tokens, event.error_class) == (200, 30, "")
    for client in plain:
        assert recorded[client.request_id].status == 200


def test_sigterm_ends_long_streams_cleanly_after_the_grace(
    team_key: tuple[Any, str], fake: Any, redis_client: Any
) -> None:
    team, key = team_key
    slow = make_credential(team, "slow", f"{fake.base_url}/_f/chunk_ms=50;chunks=400/v1")
    make_route(team, "slow", (slow, "demo-chat", 0))
    slow_json = make_credential(team, "slow-json", f"{fake.base_url}/_f/latency_ms=300/v1")
    make_route(team, "slow-json", (slow_json, "demo-chat", 0))
    env = {
        "REDIS_URL": os.environ["REDIS_URL"],
        "BATON_SHUTDOWN_GRACE_SECONDS": "1",
        "LOG_FORMAT": "json",
    }
    with BatonProcess(env) as baton:
        streams, plain = start_clients(baton, key, streams=8, plain=2)
        upstream_has(fake, plain=2)
        # Readiness flips at once, so a load balancer stops sending traffic here.
        signalled = time.monotonic()
        baton.terminate()
        for client in streams + plain:
            client.join(15)
        ended = time.monotonic() - signalled
        assert baton.proc.wait(15) in EXITED, baton.logs()
        logs = baton.logs()
    assert ended < 5, f"streams took {ended:.1f}s to end after SIGTERM with a 1s grace"
    recorded = usage_events(redis_client)
    for client in streams:
        assert client.error is None, (client.error, logs)
        assert client.status == 200
        assert client.events[-1] == "[DONE]"
        error = client.events[-2]["error"]
        assert error["code"] == "server_shutting_down", client.events[-3:]
        event = recorded[client.request_id]
        assert event.error_class == "server_shutdown"
        assert event.streamed and 0 < event.completion_tokens < 400 and event.estimated
    for client in plain:
        assert client.status == 200 and recorded[client.request_id].status == 200
    # The logs of that process are JSON lines, and the shutdown was logged.
    lines = [orjson.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert any("shutting down" in line["msg"] for line in lines), logs
    assert key not in logs


def test_after_sigterm_new_connections_are_refused_not_left_hanging(
    team_key: tuple[Any, str], fake: Any, redis_client: Any
) -> None:
    """With several workers the master holds the listening socket; once the workers stop
    accepting, it must not go on taking connections that nobody will serve."""
    team, key = team_key
    slow = make_credential(team, "slow", f"{fake.base_url}/_f/chunk_ms=40;chunks=150/v1")
    make_route(team, "slow", (slow, "demo-chat", 0))
    env = {"REDIS_URL": os.environ["REDIS_URL"], "BATON_SHUTDOWN_GRACE_SECONDS": "20"}
    with BatonProcess(env, workers=2) as baton:
        # A stream that keeps its worker (and so the master) draining for a few seconds.
        (stream,), _ = start_clients(baton, key, streams=1, plain=0)
        baton.terminate()

        def refused() -> bool:
            # A hang shows as a read timeout, which fails the test. A connection the kernel
            # queued just before the socket closed is reset: refused too, not left hanging.
            try:
                response = httpx.get(baton.base_url + "/healthz", timeout=5)
            except (httpx.ConnectError, httpx.ReadError):
                return True
            assert response.status_code == 200  # still served: not every worker had stopped
            return False

        until(refused, "new connections refused after SIGTERM")
        assert stream.is_alive() and baton.proc.poll() is None  # the drain goes on
        with pytest.raises(httpx.ConnectError):
            httpx.get(baton.base_url + "/v1/models", timeout=5)
        stream.join(15)
        assert baton.proc.wait(15) in EXITED, baton.logs()
    assert stream.error is None and stream.events[-1] == "[DONE]"
