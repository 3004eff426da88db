"""Shared fixtures: a fixed cast of users and teams, in the style of
healthchecks' ``hc/test.py``.

Acme is the team under test: alice owns it, adam is an admin, bob a member,
vera a viewer. Charlie belongs only to his own team (Globex) and is the
outsider for every tenancy test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from accounts import actions
from accounts.models import Membership, Role, Team, User

PASSWORD = "correct horse battery staple"


@dataclass
class Cast:
    alice: User
    adam: User
    bob: User
    vera: User
    charlie: User
    acme: Team
    globex: Team

    def membership(self, user: User, team: Team | None = None) -> Membership:
        return Membership.objects.get(user=user, team=team or self.acme)


@pytest.fixture
def catalog(db: None) -> None:
    """The provider catalog. A data migration seeds it, but transactional tests
    flush every table, so tests that need it ask for it."""
    from relay.catalog_seed import seed
    from relay.models import Provider

    seed(Provider)


@pytest.fixture
def cast(catalog: None) -> Cast:
    users = {
        name: User.objects.create_user(f"{name}@example.com", PASSWORD)
        for name in ("alice", "adam", "bob", "vera", "charlie")
    }
    acme = actions.create_team(users["alice"], name="Acme")
    for name, role in (("adam", Role.ADMIN), ("bob", Role.MEMBER), ("vera", Role.VIEWER)):
        Membership.objects.create(team=acme, user=users[name], role=role)
    globex = actions.create_team(users["charlie"], name="Globex")
    return Cast(acme=acme, globex=globex, **users)


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture(scope="session", autouse=True)
def _close_connection_pools(django_db_setup: None, django_db_blocker: Any) -> Any:
    """Give back pooled connections held by server threads before the test
    database is dropped (PostgreSQL refuses to drop a database in use)."""
    yield
    from django.db import connections

    with django_db_blocker.unblock():
        for conn in connections.all():
            close_pool = getattr(conn, "close_pool", None)
            if close_pool is not None:
                close_pool()
