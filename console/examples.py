"""Which model a code example should name: one the team can actually call.

The new-key page and the overview show a snippet a newcomer runs as it is, so its
model must be one the relay serves for the team: the team's first alias, else a model
one of its own provider keys offers, else the built-in demo upstream's chat model. For a
key limited to some models, the first model of its list that the team can call. The same
credentials the relay would use count (enabled, not broken), the way
``gateway.contexts.load_team`` builds a team's routes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from accounts.models import Team
from relay.models import ModelRoute, ProviderCredential, demo_base_url


class Source(StrEnum):
    ALIAS = "alias"  # one of the team's model aliases
    CREDENTIAL = "credential"  # a model one of its provider keys offers
    DEMO = "demo"  # the built-in demo upstream's model
    KEY_ONLY = "key-only"  # the key is limited to models the team cannot call yet
    NONE = "none"  # nothing the team could call yet


@dataclass(frozen=True)
class ExampleModel:
    name: str
    source: Source
    credential: str = ""  # the provider key offering it (credential and demo)

    @property
    def callable(self) -> bool:
        return self.source in (Source.ALIAS, Source.CREDENTIAL, Source.DEMO)


def _usable_credentials(team: Team) -> list[ProviderCredential]:
    credentials = (
        ProviderCredential.objects.filter(team=team, enabled=True, status="ok")
        .select_related("provider")
        .order_by("created_at", "name")
    )
    return [c for c in credentials if not c.provider.is_demo or demo_base_url()]


def callable_models(team: Team) -> list[ExampleModel]:
    """Chat models the team can call, best example first."""
    credentials = _usable_credentials(team)
    usable_ids = {c.pk for c in credentials}
    found: list[ExampleModel] = [
        ExampleModel(route.alias, Source.ALIAS)
        for route in ModelRoute.objects.filter(team=team).prefetch_related("targets")
        if any(t.credential_id in usable_ids for t in route.targets.all())
    ]
    # The team's own providers before the demo upstream.
    for credential in sorted(credentials, key=lambda c: c.provider.is_demo):
        source = Source.DEMO if credential.provider.is_demo else Source.CREDENTIAL
        found += [
            ExampleModel(str(model), source, credential.name)
            for model in credential.provider.known_models or []
        ]
    return found


def example_model(team: Team, allowed_models: Sequence[str] | None = None) -> ExampleModel:
    """The model a snippet for ``team`` (and a key limited to ``allowed_models``) names."""
    candidates = callable_models(team)
    if allowed_models:
        # The key's own list, in its order: the first of its models the team can call.
        by_name = {}
        for candidate in reversed(candidates):
            by_name[candidate.name] = candidate
        callable_allowed = [by_name[name] for name in allowed_models if name in by_name]
        return (
            callable_allowed[0]
            if callable_allowed
            else ExampleModel(allowed_models[0], Source.KEY_ONLY)
        )
    if not candidates:
        return ExampleModel("", Source.NONE)
    return candidates[0]
