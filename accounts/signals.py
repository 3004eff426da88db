"""Every new user gets a personal team, however the user was created."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import User


@receiver(post_save, sender=User, dispatch_uid="accounts.personal_team")
def create_personal_team(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
    if created and not kwargs.get("raw"):
        from accounts.actions import create_team

        create_team(instance, name=instance.email.split("@")[0][:60], personal=True)
