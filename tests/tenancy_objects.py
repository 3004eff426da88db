"""How the tenancy walk finds one of the victim team's objects for each URL
parameter. Add an entry when a new team-scoped page takes a new parameter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils import timezone

from accounts import apikeys
from accounts.models import ApiKey, Invitation
from billing.models import BillingRecord
from relay import actions as relay_actions
from relay import routes as relay_routes
from relay.models import ModelRoute, Provider, ProviderCredential
from relay.route_forms import TargetSpec
from tests.conftest import Cast


def populate(cast: Cast) -> None:
    """Create one object of each kind for Acme (later apps add theirs here)."""
    alice = cast.membership(cast.alice)
    relay_actions.create_credential(
        alice,
        name="Acme OpenAI",
        provider=Provider.objects.get(slug="openai"),
        secret="sk-acme-tenancy-walk-secret",
        region="default",
    )
    apikeys.create_api_key(alice, name="Acme service")
    relay_routes.create_route(
        alice,
        alias="gpt-4o",
        targets=[TargetSpec(ProviderCredential.objects.get(team=cast.acme), "gpt-4o-mini")],
    )
    from billing.periods import period_of

    period = period_of(timezone.now())
    BillingRecord.objects.create(
        team=cast.acme, period_start=period.start, period_end=period.end, currency="USD"
    )


OBJECT_FOR_PARAMETER: dict[str, Callable[[Cast], Any]] = {
    "membership_id": lambda cast: cast.membership(cast.bob).pk,
    "invitation_id": lambda cast: Invitation.objects.filter(team=cast.acme).first().pk,  # type: ignore[union-attr]
    "credential_id": lambda cast: ProviderCredential.objects.filter(team=cast.acme).first().pk,  # type: ignore[union-attr]
    "key_id": lambda cast: ApiKey.objects.filter(team=cast.acme).first().pk,  # type: ignore[union-attr]
    "route_id": lambda cast: ModelRoute.objects.filter(team=cast.acme).first().pk,  # type: ignore[union-attr]
    "record_id": lambda cast: BillingRecord.objects.filter(team=cast.acme).first().pk,  # type: ignore[union-attr]
}
