"""A real Baton relay and a real fake upstream, each served by uvicorn in a
thread, for driving /v1 with the official ``openai`` SDK.

The relay runs against the test database (hence ``transactional_db``: its
server thread must see committed rows) and the test Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from django.conf import settings
from django.core.asgi import get_asgi_application

from accounts import actions, tokens
from accounts.models import ApiKey, Team, User
from config.redis_clients import sync_client
from config.routing import build_application
from relay.catalog_seed import seed
from relay.models import ModelRoute, Provider, ProviderCredential, RouteTarget
from relay.secrets import store_secret
from tests.fake_upstream.conftest import Fake, ServerThread


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[Fake]:
    from fake_upstream import create_app

    with ServerThread(create_app()) as server:
        handle = Fake(server.base_url)
        yield handle
        handle.http.close()


@pytest.fixture
def fake(fake_upstream: Fake) -> Fake:
    fake_upstream.http.delete("/_fake/requests")
    return fake_upstream


@pytest.fixture
def redis_client() -> Iterator[Any]:
    client = sync_client(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.close()


@dataclass
class Relay:
    base_url: str
    team: Team
    key: str
    server: ServerThread

    def client(self, key: str | None = None, **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.base_url + "/v1", api_key=key or self.key, max_retries=0, **kwargs
        )


# Random-looking, as real provider keys are: the relay masks any eight characters of a
# credential's secret in upstream errors (wire/scrub.py), so a secret made of words
# such as "upstream" would mask those words in Baton's own messages too.
UPSTREAM_SECRET = "sk-Qf3vT9xLm2Rk8Wp4Zc7Hn1234"


def make_credential(
    team: Team,
    name: str,
    base_url: str,
    provider: str = "openai",
    secret: str = UPSTREAM_SECRET,
    **extra: Any,
) -> ProviderCredential:
    credential = ProviderCredential(
        team=team, name=name, provider_id=provider, base_url=base_url, **extra
    )
    store_secret(credential, secret)
    credential.save()
    return credential


def make_key(team: Team, **fields: Any) -> str:
    issued = tokens.issue(ApiKey.PREFIX)
    ApiKey.objects.create(
        team=team,
        name=fields.pop("name", "test key"),
        lookup=issued.lookup,
        digest=issued.digest,
        last4=issued.last4,
        **fields,
    )
    return issued.token


def make_route(team: Team, alias: str, *targets: tuple[ProviderCredential, str, int]) -> ModelRoute:
    route = ModelRoute.objects.create(team=team, alias=alias)
    for credential, model, priority in targets:
        RouteTarget.objects.create(
            team=team, route=route, credential=credential, upstream_model=model, priority=priority
        )
    return route


@pytest.fixture
def relay(transactional_db: None, settings: Any, fake: Fake, redis_client: Any) -> Iterator[Relay]:
    settings.BATON_ALLOW_LOOPBACK_UPSTREAMS = True
    settings.BATON_FIRST_BYTE_TIMEOUT = 2.0
    settings.BATON_IDLE_TIMEOUT = 2.0
    seed(Provider)
    owner = User.objects.create_user("relay-owner@example.com", "x-sturdy-passphrase-1")
    team = actions.create_team(owner, name="Relay team")
    primary = make_credential(team, "primary", fake.base_url + "/v1")
    make_route(team, "gpt-4o", (primary, "demo-chat", 0))
    key = make_key(team)
    with ServerThread(build_application(get_asgi_application())) as server:
        yield Relay(base_url=server.base_url, team=team, key=key, server=server)
