"""Any change to what the relay caches invalidates that team's cache entries."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from accounts.models import ApiKey, Team
from billing.models import CredentialLimits, CreditEntry, KeyLimits, TeamLimits
from relay.invalidation import bump_team
from relay.models import ModelRoute, ProviderCredential, RouteTarget


def _changed(sender: type, instance: Any, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return
    bump_team(instance.pk if isinstance(instance, Team) else instance.team_id)


for _model in (
    ApiKey,
    ProviderCredential,
    ModelRoute,
    RouteTarget,
    Team,
    TeamLimits,
    KeyLimits,
    CredentialLimits,
):
    post_save.connect(_changed, sender=_model, dispatch_uid=f"relay.bump.save.{_model.__name__}")
    post_delete.connect(
        _changed, sender=_model, dispatch_uid=f"relay.bump.delete.{_model.__name__}"
    )


def _credit_added(sender: type, instance: CreditEntry, created: bool, **kwargs: Any) -> None:
    """Credit added to the ledger raises the relay's idea of the balance; usage
    debits do not (the relay counts spend itself)."""
    if created and not kwargs.get("raw") and instance.kind != CreditEntry.Kind.USAGE:
        bump_team(instance.team_id)


post_save.connect(_credit_added, sender=CreditEntry, dispatch_uid="relay.bump.credit")


def _demo_credential(sender: type, instance: Team, created: bool, **kwargs: Any) -> None:
    """In the embedded default every new team can try Baton at once: it gets a
    credential for the built-in demo upstream (when the operator has one)."""
    if not created or kwargs.get("raw"):
        return
    from relay.models import Provider, demo_base_url
    from relay.secrets import store_secret

    demo = Provider.objects.filter(is_demo=True, enabled=True).first()
    if demo is None or not demo_base_url():
        return
    credential = ProviderCredential(team=instance, name="Demo upstream", provider=demo)
    store_secret(credential, "demo-key-not-secret")
    credential.save()


post_save.connect(_demo_credential, sender=Team, dispatch_uid="relay.demo_credential")
