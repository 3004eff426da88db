"""Fixtures for model routes: the seeded catalog, and provider credentials
for Acme (Qwen and Zhipu) and for Globex (the other team)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from accounts.models import Team
from relay.catalog_seed import seed
from relay.models import ModelRoute, Provider, ProviderCredential, RouteTarget
from relay.secrets import store_secret
from tests.conftest import Cast

# Fast password hashing and a fresh keyring for every test, as for the credential tests.
from tests.keys.conftest import _fast_passwords, _fresh_keyring  # noqa: F401

# The running relay and fake upstream, for the end-to-end test.
from tests.relay.conftest import fake, fake_upstream, redis_client, relay  # noqa: F401


@pytest.fixture
def catalog(db: None) -> None:
    """The provider catalog (transactional tests flush the migration's rows)."""
    seed(Provider)


def make_credential(
    team: Team, name: str, provider: str, *, base_url: str = "", **fields: Any
) -> ProviderCredential:
    credential = ProviderCredential(
        team=team, name=name, provider_id=provider, base_url=base_url, **fields
    )
    store_secret(credential, f"sk-{provider}-test-secret-0001")
    credential.save()
    return credential


@dataclass
class Keys:
    qwen: ProviderCredential
    zhipu: ProviderCredential
    deepseek: ProviderCredential
    globex: ProviderCredential  # another team's


@pytest.fixture
def keys(cast: Cast, catalog: None) -> Keys:
    return Keys(
        qwen=make_credential(cast.acme, "Qwen", "qwen", region="cn"),
        zhipu=make_credential(cast.acme, "GLM", "zhipu", region="intl"),
        deepseek=make_credential(cast.acme, "DeepSeek", "deepseek"),
        globex=make_credential(cast.globex, "Globex Qwen", "qwen", region="cn"),
    )


def targets_of(route: ModelRoute) -> list[tuple[str, str, int, int]]:
    return [
        (t.credential.name, t.upstream_model, t.priority, t.weight)
        for t in RouteTarget.objects.filter(route=route)
        .select_related("credential")
        .order_by("priority", "-weight", "id")
    ]


def json_post(client: Client, url: str, data: Any) -> Any:
    return client.post(url, data, content_type="application/json")
