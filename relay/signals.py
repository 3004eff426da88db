"""Relay's models: a change to a credential or a route invalidates its team's relay caches
(accounts/invalidation.py); a new team gets the demo credential. (accounts and billing
connect the same invalidation for their own models.)"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from accounts.invalidation import bump_team
from accounts.models import Team
from relay.models import ModelRoute, ProviderCredential, RouteTarget


def _changed(sender: type, instance: Any, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return
    bump_team(instance.team_id)


for _model in (ProviderCredential, ModelRoute, RouteTarget):
    post_save.connect(_changed, sender=_model, dispatch_uid=f"relay.bump.save.{_model.__name__}")
    post_delete.connect(
        _changed, sender=_model, dispatch_uid=f"relay.bump.delete.{_model.__name__}"
    )


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
