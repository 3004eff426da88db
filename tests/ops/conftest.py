"""Fixtures for the operations tests: the relay fixtures. Baton as a real subprocess
(``BatonProcess``) is in tests/processes.py."""

from __future__ import annotations

from tests.relay.conftest import fake, fake_upstream, redis_client, relay
from tests.relay.test_warm_path import messages_routes, queries, warm_routes

__all__ = [
    "fake",
    "fake_upstream",
    "messages_routes",
    "queries",
    "redis_client",
    "relay",
    "warm_routes",
]
