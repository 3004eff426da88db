"""Real Redis Clusters and Sentinel groups, started for the tests on free ports.

``cluster`` and ``sentinel`` are shared by a module's tests that leave the topology as it is;
``fresh_cluster`` and ``fresh_sentinel`` are a test's own, for the tests that fail a primary
over. Each starts in about two seconds (scripts/services.py). ``use_redis`` points Baton's
settings (and the clients it caches per process) at one of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from accounts import invalidation
from billing import consumer as consumer_module
from scripts.services import (
    Cluster,
    SentinelGroup,
    redis_cli,
    redis_cluster,
    redis_sentinel,
)
from tests.quotas import conftest as quota_fixtures

# The quota tests' priced team in front of the fake upstream, and their flushed test Redis.
fake_upstream = quota_fixtures.fake_upstream
fake = quota_fixtures.fake
redis_client = quota_fixtures.redis_client
quota = quota_fixtures.quota


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with redis_cluster() as started:
        yield started


@pytest.fixture(scope="module")
def sentinel() -> Iterator[SentinelGroup]:
    with redis_sentinel() as started:
        yield started


@pytest.fixture
def fresh_cluster() -> Iterator[Cluster]:
    with redis_cluster() as started:
        yield started


@pytest.fixture
def fresh_sentinel() -> Iterator[SentinelGroup]:
    with redis_sentinel() as started:
        yield started


def flush(url: str) -> None:
    from config.redis_clients import sync_client

    client = sync_client(url)
    try:
        client.flushdb()
    finally:
        client.close()


def use_redis(settings: Any, url: str) -> None:
    """Baton's settings on ``url`` (and no client made for another URL left cached)."""
    settings.REDIS_URL = url
    settings.BATON_LIMITS_REDIS_URL = url
    invalidation._sync_client = None
    consumer_module._clients.clear()


def cluster_primaries(cluster: Cluster) -> list[int]:
    ports = []
    for line in redis_cli(cluster.nodes[0].port, "cluster", "nodes").splitlines():
        fields = line.split()
        if "master" in fields[2] and "fail" not in fields[2]:
            ports.append(int(fields[1].split("@")[0].rsplit(":", 1)[1]))
    return ports
