"""The limits Redis goes away mid-run: fail open serves, fail closed refuses
in OpenAI's shape; never a 500, never a hang."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import httpx
import openai
import pytest
from prometheus_client import REGISTRY

from scripts.services import redis_server
from tests.polling import until
from tests.quotas.conftest import Quota, chat


def unavailable(outcome: str) -> float:
    return REGISTRY.get_sample_value("baton_limits_unavailable_total", {"outcome": outcome}) or 0.0


def timed_post(base: str, key: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.post(
        base + "/v1/chat/completions",
        json=chat(3),
        headers={"authorization": f"Bearer {key}"},
        timeout=15,
    )
    return response, time.monotonic() - started


@pytest.fixture
def limits_redis(settings: Any) -> Any:
    with redis_server() as server:
        settings.BATON_LIMITS_REDIS_URL = f"redis://127.0.0.1:{server.port}/0"
        settings.BATON_LIMITS_REDIS_TIMEOUT = 0.3
        yield server


def test_killed_redis_fails_open_by_default_then_closed_for_a_team_that_says_so(
    quota: Quota, limits_redis: Any
) -> None:
    quota.limits(rpm_limit=1000)
    with quota.serve() as base:
        response, _ = timed_post(base, quota.key)
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit-requests"] == "1000"

        limits_redis.kill()
        before = unavailable("open")
        for _ in range(3):
            response, took = timed_post(base, quota.key)
            assert response.status_code == 200, response.text
            assert took < 2, took
            assert "x-ratelimit-limit-requests" not in response.headers  # nothing was checked
        assert unavailable("open") >= before + 3

        quota.limits(on_redis_failure="closed")

        def refused_closed() -> openai.InternalServerError | None:
            try:
                quota.client(base).chat.completions.create(**chat(3))
            except openai.InternalServerError as exc:
                return exc
            return None  # served open: the relay has not reloaded the team yet

        # The team's cache version moves; the relay's watcher reloads it.
        error = until(refused_closed, "the relay to apply the team's fail-closed setting")
        assert error.status_code == 503
        assert error.code == "limits_unavailable"
        assert error.response.headers["retry-after"] == "1"
        assert unavailable("closed") >= 1


def test_a_frozen_redis_costs_at_most_the_timeout(
    quota: Quota, limits_redis: Any, settings: Any
) -> None:
    settings.BATON_LIMITS_ON_REDIS_FAILURE = "closed"
    with quota.serve() as base:
        assert timed_post(base, quota.key)[0].status_code == 200
        os.kill(limits_redis.proc.pid, signal.SIGSTOP)  # accepts connections, never answers
        try:
            took = []
            for _ in range(4):
                response, seconds = timed_post(base, quota.key)
                assert response.status_code == 503, response.text
                assert response.json()["error"]["type"] == "server_error"
                took.append(seconds)
            assert max(took) < 1.5, took
            # Three timeouts in a row trip the breaker: no more waiting.
            assert took[3] < 0.25, took
        finally:
            os.kill(limits_redis.proc.pid, signal.SIGCONT)
        # Once the breaker's pause is over, the next request tries Redis again, and is served.
        until(
            lambda: timed_post(base, quota.key)[0].status_code == 200,
            "the breaker to let a request through to the thawed Redis",
        )
