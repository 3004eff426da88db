"""/metrics: the counters move with relay traffic, access is restricted, no warm-path cost."""

from __future__ import annotations

import os
import signal
import tempfile
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from accounts import actions
from accounts.models import User
from relay.catalog_seed import seed
from relay.models import Provider
from tests.ops.test_shutdown import Client
from tests.polling import until, wait_idle
from tests.processes import BatonProcess
from tests.relay.conftest import Relay, make_credential, make_key, make_route
from tests.relay.test_warm_path import QueryCounter, calls

MESSAGES: Any = [{"role": "user", "content": "count me"}]


def scrape(base_url: str, **headers: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(base_url + "/metrics", headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def total(samples: dict[Any, float], name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, lbls), v in samples.items() if n == name and wanted <= lbls)


def test_metrics_count_relay_traffic(relay: Relay, fake: Any) -> None:
    broken = make_credential(relay.team, "broken", f"{fake.base_url}/_f/status=503/v1")
    healthy = make_credential(relay.team, "healthy", fake.base_url + "/v1")
    make_route(relay.team, "with-fallback", (broken, "demo-chat", 0), (healthy, "demo-chat", 1))
    before = scrape(relay.base_url)
    headers = {"authorization": f"Bearer {relay.key}"}
    with httpx.Client(base_url=relay.base_url, headers=headers, timeout=10) as client:
        for _ in range(2):
            ok = client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": MESSAGES})
            assert ok.status_code == 200
        body = {"model": "gpt-4o", "messages": MESSAGES, "stream": True, "max_tokens": 4}
        with client.stream("POST", "/v1/chat/completions", json=body) as stream:
            assert stream.status_code == 200
            stream.read()
        fallback = client.post(
            "/v1/chat/completions", json={"model": "with-fallback", "messages": MESSAGES}
        )
        assert fallback.status_code == 200
        missing = client.post("/v1/chat/completions", json={"model": "nope", "messages": MESSAGES})
        assert missing.status_code == 404
        bad = client.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": MESSAGES},
            headers={"authorization": "Bearer sk-baton-" + "x" * 32},
        )
        assert bad.status_code == 401
    ok_labels = {"endpoint": "chat", "provider": "openai", "model": "demo-chat", "status": "200"}

    def settled() -> dict[Any, float] | None:
        """A scrape once every request is counted and its usage event is in the stream (both
        happen after the response)."""
        samples = scrape(relay.base_url)
        done = (
            total(samples, "baton_requests_total", **ok_labels)
            - total(before, "baton_requests_total", **ok_labels)
            >= 4
            and total(samples, "baton_usage_stream_length") >= 5
        )
        return samples if done else None

    after = until(settled, "the requests' metrics and usage events")

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert moved("baton_requests_total", **ok_labels) == 4
    assert moved("baton_request_duration_seconds_count", status="200") == 4
    assert moved("baton_overhead_seconds_count", provider="openai") == 4
    assert moved("baton_stream_first_byte_seconds_count") == 1
    assert moved("baton_refusals_total", reason="model_not_found") == 1
    assert moved("baton_refusals_total", reason="invalid_api_key") == 1
    assert moved("baton_upstream_errors_total", provider="openai") >= 1
    assert moved("baton_fallbacks_total") == 1
    assert moved("baton_tokens_total", kind="completion") >= 4
    assert moved("baton_tokens_total", kind="prompt") > 0
    # Process and shared gauges are there too.
    assert ("baton_open_streams", frozenset()) in after
    assert ("baton_usage_events_pending", frozenset()) in after
    assert ("baton_usage_oldest_pending_seconds", frozenset()) in after
    assert total(after, "baton_usage_stream_length") >= 5


def test_metrics_access_is_restricted(relay: Relay, settings: Any) -> None:
    url = relay.base_url + "/metrics"
    assert httpx.get(url).status_code == 200  # default: loopback only
    settings.BATON_METRICS_TOKEN = "scrape-token-1234"
    refused = httpx.get(url)
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert httpx.get(url, headers={"authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(url, headers={"authorization": "Bearer scrape-token-1234"}).status_code == 200
    settings.BATON_METRICS_ALLOW = ["10.0.0.0/8"]  # both set: both apply
    assert httpx.get(url, headers={"authorization": "Bearer scrape-token-1234"}).status_code == 403
    settings.BATON_METRICS_TOKEN = ""
    assert httpx.get(url).status_code == 403
    settings.BATON_METRICS_ALLOW = ["127.0.0.1/32"]
    assert httpx.get(url).status_code == 200
    assert httpx.post(url).status_code == 405


def test_ops_endpoints_add_no_queries_to_the_warm_path(
    relay: Relay, warm_routes: None, queries: QueryCounter
) -> None:
    headers = {"authorization": f"Bearer {relay.key}"}
    with httpx.Client(base_url=relay.base_url, headers=headers, timeout=10) as client:
        for method, path, body, extra in calls(relay):
            assert client.request(method, path, json=body, headers=extra).status_code == 200, path
        wait_idle(relay.server)
        cold = queries.count
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
            assert client.get("/metrics").status_code == 200
            for method, path, body, extra in calls(relay):
                response = client.request(method, path, json=body, headers=extra)
                assert response.status_code == 200, path
        wait_idle(relay.server)
    assert queries.count == cold, f"{queries.count - cold} queries on the warm path"


def test_multiprocess_metrics_add_up_across_workers(
    transactional_db: None, fake: Any, redis_client: Any
) -> None:
    seed(Provider)
    owner = User.objects.create_user("metrics-owner@example.com", "x-sturdy-passphrase-1")
    team = actions.create_team(owner, name="Metrics team")
    make_route(team, "gpt-4o", (make_credential(team, "primary", fake.base_url + "/v1"), "m", 0))
    key = make_key(team)
    with tempfile.TemporaryDirectory() as multiproc_dir:
        env = {"PROMETHEUS_MULTIPROC_DIR": multiproc_dir, "REDIS_URL": os.environ["REDIS_URL"]}
        with BatonProcess(env, workers=2) as baton:
            for _ in range(20):  # a new connection each: both workers serve some
                response = httpx.post(
                    baton.base_url + "/v1/chat/completions",
                    json={"model": "gpt-4o", "messages": MESSAGES},
                    headers={"authorization": f"Bearer {key}"},
                )
                assert response.status_code == 200
            files = {name for name in os.listdir(multiproc_dir) if name.startswith("counter_")}
            assert len(files) == 2, files  # one file per worker process
            for _ in range(4):  # whichever worker answers the scrape, it counts for both
                samples = scrape(baton.base_url)
                assert total(samples, "baton_requests_total", status="200") == 20


def open_streams(base_url: str) -> float | None:
    """``baton_open_streams`` as a worker reports it, or None while none answers."""
    try:
        return total(scrape(base_url), "baton_open_streams")
    except httpx.TransportError:
        return None


def test_the_gauges_of_a_killed_worker_leave_the_sums(
    transactional_db: None, fake: Any, redis_client: Any
) -> None:
    seed(Provider)
    owner = User.objects.create_user("gauges-owner@example.com", "x-sturdy-passphrase-1")
    team = actions.create_team(owner, name="Gauges team")
    slow = make_credential(team, "slow", f"{fake.base_url}/_f/chunk_ms=50;chunks=400/v1")
    make_route(team, "slow", (slow, "demo-chat", 0))
    key = make_key(team)
    with tempfile.TemporaryDirectory() as multiproc_dir:
        env = {"PROMETHEUS_MULTIPROC_DIR": multiproc_dir, "REDIS_URL": os.environ["REDIS_URL"]}
        with BatonProcess(env, workers=2) as baton:
            stream = Client(
                baton.base_url, key, {"model": "slow", "messages": MESSAGES, "stream": True}
            )
            stream.start()
            assert stream.first_byte.wait(10)
            until(lambda: open_streams(baton.base_url) == 1, "the open stream in the gauge")
            killed = until(baton.workers, "the worker processes")
            assert len(killed) == 2
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
            until(lambda: len(baton.workers() - killed) == 2, "two new workers", 30)
            # (New workers take a few seconds to start serving: a generous wait.)
            until(lambda: open_streams(baton.base_url) == 0, "the killed worker's stream gone", 60)
            left = [
                name
                for name in os.listdir(multiproc_dir)
                if name.startswith("gauge_") and int(name[:-3].rsplit("_", 1)[1]) in killed
            ]
            assert left == []
            stream.join(10)
