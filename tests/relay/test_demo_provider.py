"""The demo provider answers where BATON_FAKE_UPSTREAM_URL says when Baton runs, not where
the settings pointed when the database was migrated.

``make run`` migrates without BATON_FAKE_PORT's address, so an address stored with the
catalog row sent every demo request to port 8001 whatever the demo upstream's port. A
newcomer's first request goes through the whole path here: the new-key page's snippet
names a model, and the official SDK sends that model with that key.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import openai
import pytest
from django.apps import apps
from django.core.asgi import get_asgi_application
from django.test import Client

from accounts import actions
from accounts.invalidation import bump_team_now
from accounts.models import User
from billing.models import Price
from config.routing import build_application
from fake_upstream import create_app
from relay.catalog_seed import DEMO_PROVIDER, seed
from relay.forms import provider_choices
from relay.models import Provider, ProviderCredential
from tests.fake_upstream.conftest import Fake, ServerThread

# What the old migration stored for a database migrated by `make run` on port 8001, here
# an address where nothing listens.
BAKED = "http://127.0.0.1:9/v1"


def old_demo_row() -> None:
    defaults = {key: value for key, value in DEMO_PROVIDER.items() if key != "slug"}
    Provider.objects.update_or_create(
        slug=DEMO_PROVIDER["slug"],
        defaults={**defaults, "default_region": "default", "regions": {"default": BAKED}},
    )


KEY_FORM = {"name": "first key", "budget_period": "month"}


def new_key(client: Client, team_id: Any) -> tuple[str, str]:
    """Create a key on the page; the key and the snippet's model, as a newcomer copies them."""
    page = client.post(f"/t/{team_id}/api-keys/new/", KEY_FORM).content.decode()
    key = re.search(r'data-test="api-key-value">([^<]+)<', page)
    model = re.search(r'model=<span class="tk-s">"([^"]+)"</span>', page)
    assert key and model, page
    return key.group(1), model.group(1)


def served_by(fake: Fake) -> list[str]:
    return [r["body"]["model"] for r in fake.requests() if r["path"].endswith("/chat/completions")]


@pytest.mark.django_db(transaction=True)
def test_demo_requests_go_where_the_setting_says(
    settings: Any, fake: Fake, redis_client: Any
) -> None:
    settings.BATON_ALLOW_LOOPBACK_UPSTREAMS = True
    settings.BATON_FIRST_BYTE_TIMEOUT = 2.0
    seed(Provider)
    old_demo_row()
    settings.BATON_FAKE_UPSTREAM_URL = fake.base_url

    owner = User.objects.create_user("newcomer@example.com", "x-sturdy-passphrase-1")
    team = actions.create_team(owner, name="Newcomer")
    assert ProviderCredential.objects.get(team=team).provider.is_demo
    client = Client()
    client.force_login(owner)
    key, model = new_key(client, team.pk)
    assert model == "demo-chat"

    with ServerThread(build_application(get_asgi_application())) as relay:
        sdk = openai.OpenAI(base_url=relay.base_url + "/v1", api_key=key, max_retries=0)
        reply = sdk.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Hello"}]
        )
        assert reply.choices[0].message.content
        assert served_by(fake) == ["demo-chat"]

        # The demo upstream moves (another BATON_FAKE_PORT): no migration, same database.
        with ServerThread(create_app()) as other:
            moved = Fake(other.base_url)
            settings.BATON_FAKE_UPSTREAM_URL = other.base_url
            bump_team_now(str(team.pk))  # what a restart does to the relay's cache
            sdk.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "Hello again"}]
            )
            assert served_by(moved) == ["demo-chat"]
            assert served_by(fake) == ["demo-chat"]  # nothing more went to the old one
            moved.http.close()


@pytest.mark.django_db
def test_the_demo_provider_is_offered_only_where_the_demo_upstream_runs(
    settings: Any, catalog: None
) -> None:
    settings.BATON_FAKE_UPSTREAM_URL = ""
    owner = User.objects.create_user("prod@example.com", "x-sturdy-passphrase-1")
    team = actions.create_team(owner, name="Production team")
    assert not ProviderCredential.objects.filter(team=team).exists()
    assert not provider_choices().filter(is_demo=True).exists()
    assert Provider.objects.get(slug="fake").base_url_for("") == ""

    settings.BATON_FAKE_UPSTREAM_URL = "http://127.0.0.1:8123/"
    assert provider_choices().filter(is_demo=True).exists()
    assert Provider.objects.get(slug="fake").base_url_for("") == "http://127.0.0.1:8123/v1"
    client = Client()
    client.force_login(owner)
    slugs = [p["slug"] for p in client.get("/api/providers/").json()]
    assert "fake" in slugs


@pytest.mark.django_db
def test_the_migration_forgets_the_address_it_used_to_store(catalog: None) -> None:
    migration = importlib.import_module("relay.migrations.0004_demo_provider_address_at_run_time")
    old_demo_row()
    migration.forget_demo_address(apps, None)
    assert Provider.objects.get(slug="fake").regions == {}

    # A database migrated without a demo URL had no demo row (and so no demo prices).
    Price.objects.filter(provider_id="fake").delete()
    Provider.objects.filter(slug="fake").delete()
    migration.forget_demo_address(apps, None)
    demo = Provider.objects.get(slug="fake")
    assert demo.is_demo and demo.known_models == DEMO_PROVIDER["known_models"]
