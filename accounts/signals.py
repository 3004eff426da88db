"""Every new user gets a personal team, however the user was created; a change to a team
or an API key invalidates that team's relay caches (accounts/invalidation.py)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.invalidation import bump_team
from accounts.models import ApiKey, Team, User


@receiver(post_save, sender=User, dispatch_uid="accounts.personal_team")
def create_personal_team(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
    if created and not kwargs.get("raw"):
        from accounts.actions import create_team

        create_team(instance, name=instance.email.split("@")[0][:60], personal=True)


def _changed(sender: type, instance: Any, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return
    bump_team(instance.pk if isinstance(instance, Team) else instance.team_id)


for _model in (ApiKey, Team):
    post_save.connect(_changed, sender=_model, dispatch_uid=f"relay.bump.save.{_model.__name__}")
    post_delete.connect(
        _changed, sender=_model, dispatch_uid=f"relay.bump.delete.{_model.__name__}"
    )
