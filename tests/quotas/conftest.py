"""A priced team in front of the fake upstream, and ways to serve it.

``quota`` gives a prepaid team (the sign-up grant) whose alias ``gpt-4o``
goes to the fake upstream's ``demo-chat``, priced at 1000 USD per 1M output
tokens and nothing for input: a request with ``max_tokens=10`` costs exactly
0.01 USD, and its estimate is exactly that too. ``quota.serve()`` starts a
fresh Baton (its own RelayApp) in a thread; subprocess helpers live in
``tests/processes.py`` (Baton) and ``scripts/services.py`` (Redis).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

import openai
import pytest
from django.conf import settings
from django.core.asgi import get_asgi_application

from accounts import actions
from accounts.models import ApiKey, Membership, Role, Team, User
from billing.consumer import Consumer
from billing.models import Price, TeamLimits, UsageRecord
from billing.quota import script
from billing.quota.local import LOCAL
from billing.quota.script import periods
from config.redis_clients import sync_client
from config.routing import build_application
from relay.catalog_seed import seed
from relay.models import Provider, ProviderCredential
from tests.fake_upstream.conftest import Fake, ServerThread
from tests.polling import until
from tests.relay import conftest as relay_fixtures
from tests.relay.conftest import make_credential, make_key, make_route

# The relay tests' fixtures: the fake upstream server and a flushed test Redis.
fake_upstream = relay_fixtures.fake_upstream
fake = relay_fixtures.fake
redis_client = relay_fixtures.redis_client

OUTPUT_PRICE = Decimal("1000")  # USD per 1M output tokens: 0.001 per token
MESSAGES: Any = [{"role": "user", "content": "Count the cost"}]


def chat(max_tokens: int | None = 10, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "gpt-4o", "messages": MESSAGES, **extra}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body


@dataclass
class Quota:
    team: Team
    owner: User
    credential: ProviderCredential
    key: str
    fake: Fake
    servers: list[ServerThread] = field(default_factory=list)

    @property
    def api_key(self) -> ApiKey:
        return ApiKey.objects.get(team=self.team, name="test key")

    def limits(self, **values: Any) -> TeamLimits:
        row, _ = TeamLimits.objects.get_or_create(team=self.team)
        for name, value in values.items():
            setattr(row, name, value)
        row.save()
        return row

    def membership(self) -> Membership:
        return Membership.objects.get(team=self.team, user=self.owner)

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        with ServerThread(build_application(get_asgi_application())) as server:
            yield server.base_url

    def counter(self, period: str = "day", scope: str = "t") -> int:
        """A spend counter in the limits store, in nanos: the team's ("t") or a key's
        ("k:<key id>"); ``period`` is "day", "month" or "lifetime"."""
        return spend_counter(str(self.team.pk), period, scope)

    def spent_today(self, scope: str = "t") -> Decimal:
        """Today's spend in the limits store: the team's ("t") or a key's ("k:<key id>")."""
        return Decimal(self.counter("day", scope)) / Decimal(10**9)

    def settled(self, at_least: Decimal, scope: str = "t") -> Decimal:
        """Wait until requests already answered are settled (off the response path)."""

        def spent() -> Decimal | None:
            value = self.spent_today(scope)
            return value if value >= at_least else None

        return until(spent, f"{at_least} spent today by {scope}")

    def holds(self, scope: str = "t") -> int:
        """Requests of the team ("t") or of one key ("k:<key id>") with an in-flight record
        right now (settled ones have let go)."""
        client = sync_client(settings.BATON_LIMITS_REDIS_URL)
        try:
            team = str(self.team.pk)
            records = [
                script.Record.parse(cast(bytes, member))
                for name in (script.flight(team), script.lapsed(team))
                for member in client.zrange(name, 0, -1)
            ]
        finally:
            client.close()
        if scope == "t":
            return len(records)
        return sum(1 for record in records if record.key_id == scope.removeprefix("k:"))

    def ledger(self, expected: int, timeout: float = 10.0) -> list[UsageRecord]:
        """The team's usage rows, once ``expected`` are there: moves the relay's usage events
        from the Redis stream into the ledger (the consumer's job) until then."""
        return ledger_rows(expected, timeout, team=self.team)

    def client(self, base_url: str, key: str | None = None, **kwargs: Any) -> openai.OpenAI:
        kwargs.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=base_url + "/v1", api_key=key or self.key, **kwargs)


def spend_counter(team_id: str, period: str = "day", scope: str = "t") -> int:
    """A spend counter in the limits Redis, in nanos."""
    day, month = periods()
    prefix = "" if scope == "t" else script.key_prefix(scope.removeprefix("k:"))
    name = {"day": "d" + day, "month": "m" + month, "lifetime": "l"}[period]
    client = sync_client(settings.BATON_LIMITS_REDIS_URL)
    try:
        raw = client.hget(script.state(team_id), prefix + name) or b"0"
    finally:
        client.close()
    return int(float(raw))


def ledger_rows(expected: int, timeout: float = 10.0, **filters: Any) -> list[UsageRecord]:
    """Usage rows matching ``filters``, polled until ``expected`` are in the ledger (or the
    timeout passes): each round drains the usage stream the relay appends to."""
    client = sync_client(settings.REDIS_URL)
    deadline = time.monotonic() + timeout
    try:
        while True:
            Consumer(client, name="test-ledger").drain(seconds=5)
            rows = list(UsageRecord.objects.filter(**filters).order_by("created_at", "id"))
            if len(rows) >= expected or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)
    finally:
        client.close()


@pytest.fixture
def quota(transactional_db: None, settings: Any, fake: Fake, redis_client: Any) -> Quota:
    settings.BATON_ALLOW_LOOPBACK_UPSTREAMS = True
    settings.BATON_FIRST_BYTE_TIMEOUT = 5.0
    settings.BATON_IDLE_TIMEOUT = 5.0
    LOCAL.reset()
    seed(Provider)
    Price.objects.create(provider_id="openai", model="demo-chat", input=0, output=OUTPUT_PRICE)
    owner = User.objects.create_user("quota-owner@example.com", "x-sturdy-passphrase-1")
    team = actions.create_team(owner, name="Quota team")
    credential = make_credential(team, "primary", fake.base_url + "/v1")
    make_route(team, "gpt-4o", (credential, "demo-chat", 0))
    key = make_key(team)
    return Quota(team=team, owner=owner, credential=credential, key=key, fake=fake)


@pytest.fixture
def member(quota: Quota) -> Iterator[dict[str, User]]:
    """An admin, a member and a viewer of the quota team."""
    people = {}
    for role in (Role.ADMIN, Role.MEMBER, Role.VIEWER):
        user = User.objects.create_user(f"quota-{role}@example.com", "x-sturdy-passphrase-1")
        Membership.objects.create(team=quota.team, user=user, role=role)
        people[str(role)] = user
    yield people
