"""Fixtures for provider credentials and team API keys.

Credentials point at the fake upstream (``fake_upstream``) served on a
loopback port, so these tests allow loopback upstreams; the SSRF tests turn
that off again. Secrets are distinctive strings so that dump and log scans
can look for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from accounts.models import ApiKey
from fake_upstream import create_app
from relay import actions
from relay.models import Provider, ProviderCredential
from relay.secrets import keyring
from scripts.services import free_port
from tests.conftest import Cast
from tests.fake_upstream.conftest import ServerThread

SECRET = "sk-live-PLAINTEXT-provider-secret-0001"


@pytest.fixture(scope="session")
def fake_server() -> Iterator[ServerThread]:
    with ServerThread(create_app()) as server:
        yield server


@pytest.fixture
def fake_url(fake_server: ServerThread, settings: Any) -> str:
    """The fake upstream's OpenAI-style base URL; loopback upstreams allowed."""
    settings.BATON_ALLOW_LOOPBACK_UPSTREAMS = True
    return f"{fake_server.base_url}/v1"


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    # The cast's five users otherwise cost about three seconds of PBKDF2 per test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_keyring() -> Iterator[None]:
    # Tests change BATON_MASTER_KEYS; the parsed ring is cached per process.
    keyring.cache_clear()
    yield
    keyring.cache_clear()


def make_credential(
    cast: Cast,
    *,
    name: str = "Fake",
    secret: str = SECRET,
    base_url: str = "",
    provider: str = "custom",
    team: str = "acme",
    **kwargs: Any,
) -> ProviderCredential:
    owner = (
        cast.membership(cast.alice)
        if team == "acme"
        else cast.membership(cast.charlie, cast.globex)
    )
    return actions.create_credential(
        owner,
        name=name,
        provider=Provider.objects.get(slug=provider),
        secret=secret,
        base_url=base_url,
        **kwargs,
    )


def free_port_url() -> str:
    """A loopback base URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}/v1"


def counts() -> tuple[int, int]:
    return ProviderCredential.objects.count(), ApiKey.objects.count()


def form_errors(response: Any) -> dict[str, list[str]]:
    form = response.context["form"]
    return {field: [str(e) for e in errors] for field, errors in form.errors.items()}


def json_post(client: Client, url: str, data: dict[str, Any]) -> Any:
    return client.post(url, data, content_type="application/json")
