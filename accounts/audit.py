"""Writing the audit log: who did what to which object, when, from where."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import models
from django.http import HttpRequest

from accounts.models import AuditEvent, Team, User
from config import client_address


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return client_address.from_request(request)


def record(
    team: Team,
    actor: User | None,
    action: str,
    target: models.Model | None = None,
    *,
    request: HttpRequest | None = None,
    **details: Any,
) -> AuditEvent:
    """Append one audit event. Call inside the action's transaction."""
    return AuditEvent.objects.create(
        team=team,
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_label=actor.email if actor is not None and actor.is_authenticated else "system",
        action=action,
        target_type=target._meta.model_name or "" if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_label=str(target)[:254] if target is not None else "",
        ip_address=client_ip(request),
        details=details,
    )


def jsonable(value: Any) -> Any:
    """A field's value as the audit log's JSON keeps it (decimals and times as text)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def changes(
    instance: models.Model, values: Mapping[str, Any], editable: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """The old and new value of each field that ``values`` would change on ``instance``, as
    an audit event's details. A field outside ``editable`` is a caller's mistake (TypeError)."""
    unknown = set(values) - set(editable)
    if unknown:
        raise TypeError(f"not editable: {sorted(unknown)}")
    return {
        name: {"old": jsonable(getattr(instance, name)), "new": jsonable(value)}
        for name, value in values.items()
        if getattr(instance, name) != value
    }
