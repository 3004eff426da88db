"""The built-in demo upstream costs nothing, and says so: a newcomer's first requests to
``demo-chat`` are priced at zero from a real (zero) price, not served as "unpriced" with a
warning in the log for every request."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import openai
from django.apps import apps
from django.core.asgi import get_asgi_application

from accounts import actions
from accounts.models import User
from billing.models import Price
from config.routing import build_application
from relay.catalog_seed import DEMO_PROVIDER, seed
from relay.models import Provider, ProviderCredential
from tests.fake_upstream.conftest import Fake, ServerThread
from tests.quotas.conftest import ledger_rows
from tests.relay import conftest as relay_fixtures
from tests.relay.conftest import make_key

fake_upstream = relay_fixtures.fake_upstream
fake = relay_fixtures.fake
redis_client = relay_fixtures.redis_client

seed_demo_prices: Callable[[Any, Any], None] = importlib.import_module(
    "billing.migrations.0005_demo_prices"
).seed


class Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_demo_requests_are_priced_at_zero_without_a_warning(
    transactional_db: None,
    settings: Any,
    fake: Fake,
    redis_client: Any,
) -> None:
    settings.BATON_ALLOW_LOOPBACK_UPSTREAMS = True
    settings.BATON_FAKE_UPSTREAM_URL = fake.base_url  # read when a demo request is routed
    # A fresh embedded install: the catalog with the demo provider, then billing's migrations.
    seed(Provider)
    seed_demo_prices(apps, None)
    owner = User.objects.create_user("newcomer@example.com", "x-sturdy-passphrase-1")
    team = actions.create_team(owner, name="Newcomer")
    assert ProviderCredential.objects.get(team=team).provider_id == DEMO_PROVIDER["slug"]
    key = make_key(team)

    # Django's set-up (re)configures logging and drops pytest's capture: listen after it.
    application = build_application(get_asgi_application())
    warnings = Warnings()
    logging.getLogger("baton").addHandler(warnings)
    try:
        with ServerThread(application) as server:
            client = openai.OpenAI(base_url=server.base_url + "/v1", api_key=key, max_retries=0)
            for _ in range(2):
                reply = client.chat.completions.with_raw_response.create(
                    model="demo-chat", messages=[{"role": "user", "content": "Hello"}]
                )
                assert reply.headers["x-baton-provider"] == DEMO_PROVIDER["slug"]
            client.embeddings.create(model="demo-embed", input="Hello")
            rows = ledger_rows(expected=3, team=team)
    finally:
        logging.getLogger("baton").removeHandler(warnings)

    assert not [m for m in warnings.messages if "price" in m], warnings.messages
    assert [(r.upstream_model, r.status) for r in rows] == [
        ("demo-chat", 200),
        ("demo-chat", 200),
        ("demo-embed", 200),
    ]
    for row in rows:
        assert row.prompt_tokens > 0  # there was usage to price
        assert (row.cost, row.unpriced) == (Decimal(0), False)
        assert row.price is not None and (row.price.input, row.price.output) == (0, 0)


def test_every_demo_model_gets_a_zero_price_and_operator_prices_stay(
    transactional_db: None,
) -> None:
    seed(Provider)
    demo = Provider.objects.get(is_demo=True)
    Price.objects.create(provider=demo, model="demo-fast", input=1, output=2, note="operator's")
    seed_demo_prices(apps, None)
    seed_demo_prices(apps, None)  # migrating again changes nothing
    prices = {p.model: p for p in Price.objects.filter(provider=demo)}
    assert sorted(prices) == sorted(
        DEMO_PROVIDER["known_models"] + DEMO_PROVIDER["embedding_models"]
    )
    assert (prices["demo-fast"].input, prices["demo-fast"].note) == (1, "operator's")
    for model in ("demo-chat", "demo-embed"):
        assert (prices[model].input, prices[model].output, prices[model].currency) == (0, 0, "USD")
    assert not Price.objects.exclude(provider=demo).exists()  # only the demo provider's
