"""The built-in demo upstream costs nothing, and says so: a newcomer's first requests to
``demo-chat`` are priced at zero from a real (zero) price, not served as "unpriced" with a
warning in the log for every request."""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import openai
from django.apps import apps
from django.core.asgi import get_asgi_application

from accounts import actions
from accounts.models import User
from billing.consumer import Consumer
from billing.models import Price, UsageRecord
from config.routing import build_application
from relay.catalog_seed import DEMO_PROVIDER, seed
from relay.models import Provider, ProviderCredential
from tests.fake_upstream.conftest import Fake, ServerThread
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


def ledger_rows(redis_client: Any, expected: int, timeout: float = 10.0) -> list[UsageRecord]:
    """Move the relay's usage events into the ledger until ``expected`` rows are there."""
    deadline = time.monotonic() + timeout
    while True:
        Consumer(redis_client, name="demo-price").drain(seconds=5)
        rows = list(UsageRecord.objects.order_by("created_at"))
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_demo_requests_are_priced_at_zero_without_a_warning(
    transactional_db: None,
    settings: Any,
    fake: Fake,
    redis_client: Any,
) -> None:
    settings.BATON_ALLOW_LOOPBACK_UPSTREAMS = True
    # A fresh embedded install: the catalog with the demo provider, then billing's migrations.
    seed(Provider, demo_base_url=fake.base_url + "/v1")
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
            rows = ledger_rows(redis_client, expected=3)
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
    seed(Provider, demo_base_url="http://127.0.0.1:8001/v1")
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
