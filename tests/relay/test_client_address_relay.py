"""The relay's key allow-list and /metrics judge the client's address, which X-Forwarded-For
changes only when trusted proxies handed the request over.

Baton is served by a real uvicorn in a thread; a thin ASGI layer in front plays the network
and sets the TCP peer each request arrives from (a test cannot connect from 10.0.0.2).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.core.asgi import get_asgi_application

from accounts import actions
from accounts.models import User
from config.routing import build_application
from relay.catalog_seed import seed
from relay.models import Provider
from tests.fake_upstream.conftest import Fake, ServerThread
from tests.relay.conftest import make_credential, make_key, make_route

MESSAGES = [{"role": "user", "content": "where am I?"}]


class Network:
    """The peer address every request appears to come from."""

    peer = "127.0.0.1"

    def wrap(self, app: Any) -> Any:
        async def from_peer(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                scope = {**scope, "client": (self.peer, 40_000)}
            await app(scope, receive, send)

        return from_peer


@pytest.fixture
def served(
    transactional_db: None, settings: Any, fake: Fake, redis_client: Any
) -> Iterator[tuple[Network, httpx.Client, str]]:
    settings.BATON_ALLOW_LOOPBACK_UPSTREAMS = True
    settings.BATON_TRUSTED_PROXIES = ["10.0.0.0/8", "192.168.0.0/16"]
    seed(Provider)
    owner = User.objects.create_user("fenced@example.com", "x-sturdy-passphrase-1")
    team = actions.create_team(owner, name="Fenced")
    make_route(team, "gpt-4o", (make_credential(team, "primary", fake.base_url + "/v1"), "m", 0))
    key = make_key(team, name="office only", ip_allowlist=["203.0.113.0/24"])
    network = Network()
    with (
        ServerThread(network.wrap(build_application(get_asgi_application()))) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        yield network, client, key


def chat(client: httpx.Client, key: str, forwarded_for: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"}
    if forwarded_for is not None:
        headers["x-forwarded-for"] = forwarded_for
    return client.post(
        "/v1/chat/completions", json={"model": "gpt-4o", "messages": MESSAGES}, headers=headers
    )


def test_a_spoofed_header_from_an_untrusted_peer_does_not_pass_the_allow_list(
    served: tuple[Network, httpx.Client, str],
) -> None:
    network, client, key = served
    network.peer = "198.51.100.4"
    for spoof in ("203.0.113.9", "203.0.113.9, 198.51.100.4", "10.0.0.1, 203.0.113.9"):
        refused = chat(client, key, spoof)
        assert refused.status_code == 403, spoof
        assert refused.json()["error"]["code"] == "ip_not_allowed"
    # From inside the allowed network the key works, header or not.
    network.peer = "203.0.113.50"
    assert chat(client, key).status_code == 200
    assert chat(client, key, "198.51.100.4").status_code == 200


def test_behind_trusted_proxies_the_right_most_untrusted_hop_is_judged(
    served: tuple[Network, httpx.Client, str],
) -> None:
    network, client, key = served
    network.peer = "10.0.0.2"  # the proxy
    assert chat(client, key, "203.0.113.9").status_code == 200
    # Two trusted proxies in a row, and whatever the client wrote on the left.
    assert chat(client, key, "6.6.6.6, 203.0.113.9, 192.168.1.1").status_code == 200
    # The client wrote an allowed address; the proxy appended the one it really saw.
    spoofed = chat(client, key, "203.0.113.9, 198.51.100.4, 192.168.1.1")
    assert spoofed.status_code == 403
    assert spoofed.json()["error"]["code"] == "ip_not_allowed"
    # Through the proxy with no header at all: the proxy itself is the client.
    assert chat(client, key).status_code == 403


def test_metrics_allow_list_judges_the_same_address(
    served: tuple[Network, httpx.Client, str], settings: Any
) -> None:
    network, client, _ = served
    settings.BATON_METRICS_TOKEN = ""
    settings.BATON_METRICS_ALLOW = ["203.0.113.0/24"]
    network.peer = "198.51.100.4"
    assert client.get("/metrics", headers={"x-forwarded-for": "203.0.113.9"}).status_code == 403
    network.peer = "10.0.0.2"
    assert client.get("/metrics", headers={"x-forwarded-for": "203.0.113.9"}).status_code == 200
    assert client.get("/metrics", headers={"x-forwarded-for": "198.51.100.4"}).status_code == 403
