"""Schemathesis against the management API's own schema, in process.

Every operation in ``/api/schema/`` is fuzzed, so an endpoint is covered the
moment it is routed. Requests go to Django's WSGI handler in this process
(the same database transaction as the test), authenticated with a personal
access token of Acme's owner. Path parameters name real objects of Acme's (a
random UUID only ever meets a 404), unless schemathesis made the path itself
the invalid part; positive bodies name a real provider and credential.
Integers and strings are mixed with values known to break APIs (overflowing
integers, CR/LF, NUL...).

The run is bounded: schemathesis' boundary cases plus BATON_FUZZ_EXAMPLES
generated ones per operation (10), under a fixed seed, so every run takes the
same time and finds the same cases; set BATON_FUZZ_SEED to explore others.
About a minute on two cores.

Checks: no 5xx anywhere; every status code is documented (2xx, or the 4XX
error shape) and every body and content type matches its documentation; an
endpoint answers without credentials only if its schema says it may; a method
it does not take is a 405.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.urls import resolve
from django.utils import timezone
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from accounts import actions, apikeys
from accounts.models import ApiKey, Invitation, Membership, Role
from billing.models import BillingRecord
from billing.periods import period_of
from relay import actions as relay_actions
from relay import routes as relay_routes
from relay.models import ModelRoute, Provider, ProviderCredential
from relay.route_forms import TargetSpec
from tests.api.conftest import generated_schema, token_for
from tests.conftest import Cast
from tests.keys.conftest import fake_server, fake_url  # noqa: F401  (the demo upstream)

EXAMPLES_PER_OPERATION = int(os.environ.get("BATON_FUZZ_EXAMPLES", "10"))
SEED = int(os.environ.get("BATON_FUZZ_SEED", "20261206"))
HOSTILE_INTEGERS = [2**63, 2**63 - 1, -(2**63) - 1, 2**64, 2**31, -1, 0, 10**30]
HOSTILE_STRINGS = [
    "9223372036854775808",
    "-1",
    "Acme\r\nBcc: victim@example.com",
    "nul\x00byte",
    "line\u2028separator",
    "\x7f\x85",
    "9999-12-31",
    "0001-01-01",
    "1e999999",
    "NaN",
    "%00",
    "../../etc/passwd",
    "' OR '1'='1",
    "\U0001d518\u200b\U0001f600",  # astral-plane letters, a zero-width space, an emoji
    "",
    " ",
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    ignored_auth,
    unsupported_method,
    # Not negative_data_rejection: DRF takes 5 for "5" and "5" for 5 by design, so data
    # the schema's types call invalid is often rightly accepted. Invalid data is still
    # sent; it must get a 4xx in the documented error shape or a documented 2xx.
]


class Targets:
    """One object of Acme's per model, put back when a fuzzed call deletes,
    revokes or ends it, so every operation keeps meeting a real object. The
    credential points at the fake upstream, so ``.../test`` never leaves the machine."""

    def __init__(self, cast: Cast, fake_url: str) -> None:  # noqa: F811
        self.cast = cast
        self.fake_url = fake_url
        self.owner = cast.membership(cast.alice)
        self.make: dict[type, Callable[[], Any]] = {
            ProviderCredential: self._credential,
            ApiKey: lambda: apikeys.create_api_key(self.owner, name="fuzz key").api_key,
            ModelRoute: self._route,
            Membership: lambda: Membership.objects.get_or_create(
                team=cast.acme, user=cast.bob, defaults={"role": Role.MEMBER}
            )[0],
            Invitation: lambda: (
                actions.invite(self.owner, email="fuzz@example.com", role=Role.MEMBER).invitation
            ),
            BillingRecord: self._record,
        }
        self.current: dict[type, Any] = {}
        for model, make in self.make.items():
            self.current[model] = make()
        self.headers = {"Authorization": f"Bearer {token_for(cast.alice)}"}

    def _credential(self) -> ProviderCredential:
        return relay_actions.create_credential(
            self.owner,
            name=f"fuzz upstream {ProviderCredential.objects.count()}",
            provider=Provider.objects.get(slug="custom"),
            secret="sk-fuzz-secret-0001",
            base_url=self.fake_url,
        )

    def _route(self) -> ModelRoute:
        credential = self.object_of(ProviderCredential.objects.all())
        return relay_routes.create_route(
            self.owner,
            alias=f"fuzz-{ModelRoute.objects.count()}",
            targets=[TargetSpec(credential, "gpt-4o-mini")],
        )

    def _record(self) -> BillingRecord:
        period = period_of(timezone.now())
        return BillingRecord.objects.create(
            team=self.cast.acme, period_start=period.start, period_end=period.end, currency="USD"
        )

    def object_of(self, queryset: Any) -> Any:
        model = queryset.model
        if model not in self.make:  # not team-owned: the provider catalog
            return queryset.get(slug="openai")
        current = queryset.filter(team=self.cast.acme, pk=self.current[model].pk).first()
        if current is None:
            current = self.current[model] = self.make[model]()
        return current

    def realistic(self, body: Any) -> None:
        """Point references a positive body makes at real things, so writes can
        succeed: a provider of the catalog, a credential of Acme's. One valid
        value for another: the body stays as valid as it was generated."""
        if not isinstance(body, dict):
            return
        if isinstance(body.get("provider"), str):
            slugs = sorted(Provider.objects.filter(enabled=True).values_list("slug", flat=True))
            body["provider"] = slugs[len(body["provider"]) % len(slugs)]
        credential = str(self.object_of(ProviderCredential.objects.all()).pk)
        for target in body.get("targets") or []:
            if isinstance(target, dict) and "credential" in target:
                target["credential"] = credential

    def path_parameters(self, path: str) -> dict[str, str]:
        values = {"team_id": str(self.cast.acme.pk)}
        for name in ("id", "slug"):
            if "{" + name + "}" in path:
                view = resolve(
                    path.replace("{team_id}", values["team_id"]).replace("{" + name + "}", "0")
                ).func.cls  # type: ignore[attr-defined]
                queryset = getattr(view, "team_queryset", None)
                queryset = queryset if queryset is not None else view.queryset
                values[name] = str(getattr(self.object_of(queryset), view.lookup_field))
        return values


@pytest.fixture
def _keep_the_test_connection() -> Iterator[None]:
    """Django's WSGI handler closes the database connection when a request ends,
    which would end the test's transaction; the test client avoids it the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_targets(
    cast: Cast,
    fake_url: str,  # noqa: F811
    settings: Any,
    _keep_the_test_connection: None,
) -> Targets:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return Targets(cast, fake_url)


# Loaded at collection (no database needed: the schema view reads none), so that
# each operation is its own test item with a fresh transaction and its own report.
schema = schemathesis.openapi.from_wsgi(
    "/api/schema/",
    WSGIHandler(),
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            # Values that broke this API or APIs like it, mixed into every integer and
            # string schemathesis generates (overflowing integers, header injection...).
            "dictionaries": {
                "hostile-integers": {"values": HOSTILE_INTEGERS},
                "hostile-strings": {"values": HOSTILE_STRINGS},
            },
            "generation": {
                "max-examples": EXAMPLES_PER_OPERATION,
                "database": "none",
                "deterministic": True,
                "dictionaries": {
                    "integer": {"dictionary": "hostile-integers", "probability": 0.2},
                    "string": {"dictionary": "hostile-strings", "probability": 0.2},
                },
            },
            # Not the stateful phase: drf-spectacular's schema has no links to chain
            # calls by, and Targets already points every call at live objects.
            "phases": {"stateful": {"enabled": False}},
        }
    ),
)


def test_every_operation_is_fuzzed() -> None:
    """A guard against a schema that silently lost its operations (and the fuzz
    its tests): every path and method of the generated schema is there."""
    operations = set()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # an operation schemathesis cannot read
        operations.add((result.ok().method.upper(), result.ok().path))
    generated = {
        (method.upper(), path)
        for path, item in generated_schema()["paths"].items()
        for method in item
    }
    assert operations == generated and len(operations) >= 40, len(operations)


@schema.parametrize()
# The fixture is meant to live across examples: Targets puts back what a call removed.
@hypothesis_settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_api_survives_its_schema(case: Any, fuzz_targets: Targets) -> None:
    meta = case.meta
    path = meta.components.get("path") if meta is not None else None
    positive = meta is None or meta.generation.mode == GenerationMode.POSITIVE
    if (path is not None and path.mode == GenerationMode.POSITIVE) or (path is None and positive):
        case.path_parameters = {
            **(case.path_parameters or {}),
            **fuzz_targets.path_parameters(case.operation.path),
        }
    body = meta.components.get("body") if meta is not None else None
    if (body is not None and body.mode == GenerationMode.POSITIVE) or (body is None and positive):
        fuzz_targets.realistic(case.body)
    case.call_and_validate(headers=fuzz_targets.headers, checks=CHECKS)
