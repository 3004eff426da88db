"""The uvicorn command lines Baton ships with, run for real: a client on the other end of the
socket cannot choose its address with X-Forwarded-For.

``deploy/compose.yaml``'s web command and ``make run``'s (``scripts/run_embedded.py``) are
taken from those files and started as subprocesses against the test database; the key
allow-list on /v1, the per-IP sign-in limit and the audit log are checked through them.
"""

from __future__ import annotations

import shlex
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from accounts import actions
from accounts.models import AuditEvent, Team, User
from relay.catalog_seed import seed
from relay.models import Provider
from scripts.run_embedded import baton_command
from scripts.services import free_port
from tests.accounts.test_api import token_for
from tests.fake_upstream.conftest import Fake
from tests.ops.production import interpolate
from tests.processes import ROOT, BatonProcess
from tests.relay.conftest import make_credential, make_key, make_route

COMPOSE = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
MESSAGES = [{"role": "user", "content": "where am I?"}]


def compose_web_command(port: int) -> list[str]:
    script = COMPOSE["services"]["web"]["command"][-1]
    args = shlex.split(interpolate(script.split("exec ", 1)[1]))
    assert args[:3] == ["python", "-m", "gateway.serve"], args
    for option, value in (("--host", "127.0.0.1"), ("--port", str(port)), ("--workers", "1")):
        args[args.index(option) + 1] = value
    return [sys.executable, *args[1:]]


def compose_trusted_proxies() -> str:
    return interpolate(COMPOSE["services"]["web"]["environment"].get("BATON_TRUSTED_PROXIES", ""))


class Served(BatonProcess):
    """Baton under the given uvicorn command, in a subprocess, with a client on it."""

    def __init__(self, command: list[str], port: int, env: dict[str, str]) -> None:
        # Plain http here: no Secure cookies.
        super().__init__({"SECURE_COOKIES": "false", **env}, port=port, command=command)
        self.http = httpx.Client(base_url=self.base_url, timeout=10)
        self.wait_ready()

    def stop(self, timeout: float = 20) -> None:
        self.http.close()
        super().stop(timeout)


class World:
    def __init__(self, fake: Fake) -> None:
        seed(Provider)
        self.owner = User.objects.create_user("xff-owner@example.com", "x-sturdy-passphrase-1")
        self.team: Team = actions.create_team(self.owner, name="Fenced")
        credential = make_credential(self.team, "primary", fake.base_url + "/v1")
        make_route(self.team, "gpt-4o", (credential, "m", 0))
        self.key = make_key(self.team, name="office only", ip_allowlist=["203.0.113.0/24"])
        self.token = token_for(self.owner)


@pytest.fixture
def world(transactional_db: None, fake: Fake, redis_client: Any) -> World:
    return World(fake)


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[Served] = []

    def start(command: list[str], port: int, **env: str) -> Served:
        started.append(Served(command, port, env))
        return started[-1]

    yield start
    for served in started:
        served.stop()


def chat(served: Served, key: str, forwarded_for: str) -> httpx.Response:
    return served.http.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": MESSAGES},
        headers={"authorization": f"Bearer {key}", "x-forwarded-for": forwarded_for},
    )


def audited_address(served: Served, world: World, forwarded_for: str) -> str | None:
    name = "Fenced " + uuid.uuid4().hex[:6]
    response = served.http.patch(
        f"/api/teams/{world.team.pk}/",
        json={"name": name},
        headers={"authorization": f"Bearer {world.token}", "x-forwarded-for": forwarded_for},
    )
    assert response.status_code == 200, response.text
    event = AuditEvent.objects.get(team=world.team, action="team.renamed", details__new=name)
    return event.ip_address


def failed_logins_refused(served: Served, forwarded_for: list[str]) -> list[bool]:
    """One failed sign-in per header value, each for another unknown address (so only the
    per-IP limit can refuse); whether each was refused."""
    served.http.get("/accounts/login/")
    csrf = served.http.cookies["csrftoken"]
    run = uuid.uuid4().hex[:8]
    refused = []
    for i, header in enumerate(forwarded_for):
        response = served.http.post(
            "/accounts/login/",
            data={
                "csrfmiddlewaretoken": csrf,
                "login": f"nobody-{run}-{i}@example.com",
                "password": "wrong password 1",
            },
            headers={"x-forwarded-for": header},
        )
        assert response.status_code in (200, 429), response.text
        refused.append(
            response.status_code == 429 or "Too many failed login attempts" in response.text
        )
    return refused


def test_compose_trusts_forwarding_only_from_the_nginx_network() -> None:
    web, lb = COMPOSE["services"]["web"], COMPOSE["services"]["lb"]
    script = web["command"][-1]
    assert "--no-proxy-headers" in script
    assert "--forwarded-allow-ips" not in script and "--proxy-headers" not in script
    subnets = [pool["subnet"] for pool in COMPOSE["networks"]["edge"]["ipam"]["config"]]
    assert compose_trusted_proxies().split(",") == subnets
    # nginx reaches the web containers only over that network; nothing else is on it.
    assert lb["networks"] == ["edge"]
    assert "edge" in web["networks"]
    on_edge = {
        name for name, svc in COMPOSE["services"].items() if "edge" in svc.get("networks", [])
    }
    assert on_edge == {"web", "lb"}


def test_compose_web_command_ignores_a_header_from_an_untrusted_peer(
    world: World, serve: Any
) -> None:
    port = free_port()
    served = serve(compose_web_command(port), port, BATON_TRUSTED_PROXIES=compose_trusted_proxies())
    # The test client (127.0.0.1) is not nginx: whatever it writes, it is 127.0.0.1.
    refused = chat(served, world.key, "203.0.113.9")
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "ip_not_allowed"
    assert audited_address(served, world, "203.0.113.9") == "127.0.0.1"
    # allauth allows 10 failed sign-ins a minute per address: a new header each time
    # does not make a new address.
    refusals = failed_logins_refused(served, [f"198.51.100.{i}" for i in range(1, 12)])
    assert refusals == [False] * 10 + [True]


def test_compose_web_command_believes_its_trusted_proxy(world: World, serve: Any) -> None:
    port = free_port()
    # As if nginx were the test client: the same command, trusting loopback.
    served = serve(compose_web_command(port), port, BATON_TRUSTED_PROXIES="127.0.0.1")
    assert chat(served, world.key, "203.0.113.9").status_code == 200
    assert chat(served, world.key, "6.6.6.6, 203.0.113.9").status_code == 200
    # The client wrote an allowed address; the proxy appended the one it saw.
    assert chat(served, world.key, "203.0.113.9, 198.51.100.4").status_code == 403
    assert audited_address(served, world, "6.6.6.6, 203.0.113.9") == "203.0.113.9"
    # Each client behind the proxy has its own sign-in limit.
    refusals = failed_logins_refused(served, [f"198.51.100.{i}" for i in range(1, 13)])
    assert refusals == [False] * 12


def test_make_run_ignores_a_header_from_its_loopback_clients(world: World, serve: Any) -> None:
    port = free_port()
    served = serve(baton_command(sys.executable, "127.0.0.1", str(port)), port)
    refused = chat(served, world.key, "203.0.113.9")
    assert refused.status_code == 403, refused.text
    assert audited_address(served, world, "203.0.113.9") == "127.0.0.1"
