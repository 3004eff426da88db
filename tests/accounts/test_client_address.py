"""The client's address: X-Forwarded-For counts only when trusted proxies handed it over.

The resolver itself, then the two Django users of it: allauth's per-IP sign-in limits and
the audit log. The relay and /metrics are in tests/relay/test_client_address_relay.py, the
real uvicorn command lines (compose, make run) in tests/ops/test_forwarded_for.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from config import client_address
from tests.accounts.test_api import token_for
from tests.conftest import Cast

ROOT = Path(__file__).resolve().parents[2]
PROXY = "10.0.0.2"  # the direct peer when a request comes through the proxy


@pytest.fixture
def trusted(settings: Any) -> Any:
    settings.BATON_TRUSTED_PROXIES = ["10.0.0.0/8", "192.168.0.0/16"]
    return settings


def test_without_trusted_proxies_the_header_is_ignored(settings: Any) -> None:
    settings.BATON_TRUSTED_PROXIES = []
    assert client_address.resolve("198.51.100.4", ["203.0.113.9"]) == "198.51.100.4"
    assert client_address.resolve(PROXY, ["203.0.113.9"]) == PROXY
    assert client_address.resolve(None, ["203.0.113.9"]) is None


def test_an_untrusted_peer_cannot_choose_its_address(trusted: Any) -> None:
    assert client_address.resolve("198.51.100.4", ["203.0.113.9"]) == "198.51.100.4"
    assert client_address.resolve("198.51.100.4", ["10.0.0.7"]) == "198.51.100.4"


def test_the_right_most_untrusted_hop_is_the_client(trusted: Any) -> None:
    resolve = client_address.resolve
    assert resolve(PROXY, ["203.0.113.9"]) == "203.0.113.9"
    # Whatever the client wrote to the left of what the proxy appended is not read.
    assert resolve(PROXY, ["6.6.6.6, 203.0.113.9"]) == "203.0.113.9"
    # Several trusted proxies in a row: walk past all of them.
    assert resolve(PROXY, ["6.6.6.6, 203.0.113.9, 192.168.1.1, 10.9.9.9"]) == "203.0.113.9"
    # A client that claims to be a trusted proxy gets past that hop only if a trusted
    # proxy wrote the entry to its right; here the proxy saw 198.51.100.4.
    assert resolve(PROXY, ["10.1.1.1, 198.51.100.4"]) == "198.51.100.4"
    # Repeated headers are one list, in order.
    assert resolve(PROXY, ["6.6.6.6", "203.0.113.9, 192.168.1.1"]) == "203.0.113.9"
    # Every hop trusted: the furthest one known.
    assert resolve(PROXY, ["192.168.5.5, 10.3.3.3"]) == "192.168.5.5"
    # An unreadable entry stops at the proxy that handed it over, never left of it.
    assert resolve(PROXY, ["203.0.113.9, garbage, 192.168.1.1"]) == "192.168.1.1"
    assert resolve(PROXY, ["unknown"]) == PROXY
    assert resolve(PROXY, []) == PROXY


def test_address_spellings(trusted: Any) -> None:
    resolve = client_address.resolve
    assert resolve("::ffff:10.0.0.2", ["203.0.113.9:4711"]) == "203.0.113.9"
    assert resolve(PROXY, ["[2001:db8::7]:443"]) == "2001:db8::7"
    assert resolve(PROXY, [" 2001:db8::8 "]) == "2001:db8::8"
    assert resolve("::ffff:198.51.100.4") == "198.51.100.4"


def test_a_bad_setting_stops_the_start() -> None:
    started = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "BATON_TESTING": "1",
            "BATON_TRUSTED_PROXIES": "10.0.0.0/8, 10.0.0.0/33",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert "BATON_TRUSTED_PROXIES: '10.0.0.0/33' is not an address or network" in started.stderr


# --- allauth's per-IP sign-in limits ------------------------------------------------------


def failed_logins(count: int, **extra: Any) -> list[Any]:
    """``count`` failed sign-ins, each for a different unknown address (so allauth's per-account
    limit never applies, only the per-IP one); ``extra`` may vary per attempt (callables)."""
    client = Client()
    run = uuid.uuid4().hex[:8]
    responses = []
    for i in range(count):
        meta = {k: v(i) if callable(v) else v for k, v in extra.items()}
        responses.append(
            client.post(
                reverse("account_login"),
                {"login": f"nobody-{run}-{i}@example.com", "password": "wrong password 1"},
                **meta,
            )
        )
    return responses


def refused(response: Any) -> bool:
    return response.status_code == 429 or b"Too many failed login attempts" in response.content


@pytest.mark.django_db
def test_rotating_the_header_does_not_get_past_the_sign_in_limit(trusted: Any) -> None:
    # allauth allows 10 failed sign-ins a minute per address.
    responses = failed_logins(
        11, REMOTE_ADDR="198.51.100.21", HTTP_X_FORWARDED_FOR=lambda i: f"203.0.113.{i + 1}"
    )
    assert not any(refused(r) for r in responses[:10])
    assert refused(responses[10])


@pytest.mark.django_db
def test_behind_a_trusted_proxy_each_client_has_its_own_sign_in_limit(trusted: Any) -> None:
    # Eleven different clients through one proxy: nobody is refused...
    spread = failed_logins(
        11,
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=lambda i: f"6.6.6.{i}, 198.51.100.{i + 30}, 192.168.1.1",
    )
    assert not any(refused(r) for r in spread)
    # ...while one client through it is, whatever it writes to the left.
    same = failed_logins(
        11, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=lambda i: f"6.6.6.{i}, 198.51.100.99"
    )
    assert not any(refused(r) for r in same[:10])
    assert refused(same[10])


# --- the audit log ------------------------------------------------------------------------


def rename_team(cast: Cast, name: str, **meta: Any) -> AuditEvent:
    client = Client(headers={"authorization": f"Bearer {token_for(cast.alice)}"})
    response = client.patch(
        f"/api/teams/{cast.acme.pk}/", {"name": name}, content_type="application/json", **meta
    )
    assert response.status_code == 200, response.content
    return AuditEvent.objects.filter(team=cast.acme, action="team.renamed").latest("created_at")


def test_the_audit_log_records_the_peer_not_what_it_claims(cast: Cast, trusted: Any) -> None:
    event = rename_team(
        cast, "Acme 2", REMOTE_ADDR="198.51.100.21", HTTP_X_FORWARDED_FOR="203.0.113.9"
    )
    assert event.ip_address == "198.51.100.21"


def test_the_audit_log_records_the_client_behind_trusted_proxies(cast: Cast, trusted: Any) -> None:
    event = rename_team(
        cast,
        "Acme 3",
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9, 192.168.1.1",
    )
    assert event.ip_address == "203.0.113.9"
