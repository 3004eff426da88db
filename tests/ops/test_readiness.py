"""/healthz and /readyz: 503 with a JSON body naming the failed dependency, and no hang."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.core.asgi import get_asgi_application

from config.routing import build_application
from scripts.services import free_port, redis_server
from tests.fake_upstream.conftest import ServerThread
from tests.processes import BatonProcess
from tests.relay.conftest import Relay


def test_ready_when_everything_answers(relay: Relay) -> None:
    assert httpx.get(relay.base_url + "/healthz").json() == {"status": "ok"}
    response = httpx.get(relay.base_url + "/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "redis": "ok", "usage_sink": "ok"},
    }


@pytest.fixture
def own_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with redis_server() as server:
        yield server.redis_url, server.proc


def test_not_ready_when_redis_dies(
    transactional_db: None, settings: Any, own_redis: tuple[str, subprocess.Popen[bytes]]
) -> None:
    url, proc = own_redis
    settings.REDIS_URL = url
    settings.BATON_READY_TIMEOUT = 1.0
    with ServerThread(build_application(get_asgi_application())) as server:
        ready = httpx.get(server.base_url + "/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        proc.kill()
        proc.wait()
        started = time.monotonic()
        response = httpx.get(server.base_url + "/readyz", timeout=5)
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unavailable"
        assert body["failed"] == ["redis"]
        assert body["checks"]["redis"].startswith(("error", "timeout"))
        assert body["checks"]["database"] == "ok"
        assert elapsed < 2.5
        assert httpx.get(server.base_url + "/healthz").status_code == 200


def test_not_ready_when_postgres_is_unreachable(redis_client: Any) -> None:
    env = {
        "DATABASE_URL": f"postgres://baton@127.0.0.1:{free_port()}/nothing",
        "REDIS_URL": os.environ["REDIS_URL"],
        "BATON_READY_TIMEOUT": "1",
    }
    with BatonProcess(env) as baton:
        assert httpx.get(baton.base_url + "/healthz").status_code == 200
        started = time.monotonic()
        response = httpx.get(baton.base_url + "/readyz", timeout=5)
        assert time.monotonic() - started < 2.5
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["failed"] == ["database"]
        # psycopg's pool keeps retrying a refused connection, so this is an error or a timeout.
        assert body["checks"]["database"].startswith(("error", "timeout"))
        assert body["checks"]["redis"] == "ok"


def test_a_hanging_database_does_not_hang_readiness(redis_client: Any) -> None:
    # A socket that accepts connections and never answers: the database "hangs".
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        env = {
            "DATABASE_URL": f"postgres://baton@127.0.0.1:{port}/hung",
            "REDIS_URL": os.environ["REDIS_URL"],
            "BATON_READY_TIMEOUT": "0.5",
        }
        with BatonProcess(env) as baton:
            for _ in range(3):  # repeated probes share the one stuck check
                started = time.monotonic()
                response = httpx.get(baton.base_url + "/readyz", timeout=5)
                assert time.monotonic() - started < 1.5
                assert response.status_code == 503
                assert response.json()["checks"]["database"].startswith("timeout")
            assert httpx.get(baton.base_url + "/healthz", timeout=1).status_code == 200
