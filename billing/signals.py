"""A new team gets its limits row and the sign-up grant; price and exchange
rate changes reach the relay snapshots of the teams they affect."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from accounts.invalidation import bump_team
from accounts.models import Team
from billing import conf
from billing.models import (
    CredentialLimits,
    CreditEntry,
    ExchangeRate,
    KeyLimits,
    Price,
    TeamLimits,
)


def _team_created(sender: type[Team], instance: Team, created: bool, **kwargs: Any) -> None:
    if not created or kwargs.get("raw"):
        return
    from billing.credits import grant_signup

    TeamLimits.objects.get_or_create(
        team=instance, defaults={"billing_mode": conf.new_team_billing()}
    )
    grant_signup(instance)


def _price_changed(sender: type[Price], instance: Price, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return
    from relay.models import ProviderCredential

    teams = ProviderCredential.objects.filter(provider_id=instance.provider_id).values_list(
        "team_id", flat=True
    )
    for team_id in set(teams):
        bump_team(team_id)


def _rate_changed(sender: type[ExchangeRate], instance: ExchangeRate, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return
    teams = TeamLimits.objects.filter(currency__in=(instance.base, instance.quote)).values_list(
        "team_id", flat=True
    )
    for team_id in teams:
        bump_team(team_id)


post_save.connect(_team_created, sender=Team, dispatch_uid="billing.team_created")
for _signal in (post_save, post_delete):
    _signal.connect(_price_changed, sender=Price, dispatch_uid=f"billing.price.{id(_signal)}")
    _signal.connect(_rate_changed, sender=ExchangeRate, dispatch_uid=f"billing.rate.{id(_signal)}")


def _limits_changed(sender: type, instance: Any, **kwargs: Any) -> None:
    if not kwargs.get("raw"):
        bump_team(instance.team_id)


for _model in (TeamLimits, KeyLimits, CredentialLimits):
    post_save.connect(
        _limits_changed, sender=_model, dispatch_uid=f"relay.bump.save.{_model.__name__}"
    )
    post_delete.connect(
        _limits_changed, sender=_model, dispatch_uid=f"relay.bump.delete.{_model.__name__}"
    )


def _credit_added(sender: type, instance: CreditEntry, created: bool, **kwargs: Any) -> None:
    """Credit added to the ledger raises the relay's idea of the balance; usage
    debits do not (the relay counts spend itself)."""
    if created and not kwargs.get("raw") and instance.kind != CreditEntry.Kind.USAGE:
        bump_team(instance.team_id)


post_save.connect(_credit_added, sender=CreditEntry, dispatch_uid="relay.bump.credit")
