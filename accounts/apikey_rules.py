"""The input rules of team API keys, shared by the pages, the API and the relocation helper.

The page form takes lists as text (one entry per line, or separated by commas);
the API takes JSON lists. Both end in these ``clean_*`` rules.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import ApiKey, Team
from accounts.validators import no_control_characters

MAX_NAME_LENGTH = 80
MAX_MODELS = 200
MAX_MODEL_NAME_LENGTH = 128
MAX_NETWORKS = 100
_MODEL_RE = re.compile(rf"[^\s,]{{1,{MAX_MODEL_NAME_LENGTH}}}")


def split_lines(text: str) -> list[str]:
    """Entries of a textarea: one per line or separated by commas."""
    return [part.strip() for part in re.split(r"[\n,]", text or "") if part.strip()]


def clean_name(team: Team, name: str, *, exclude: ApiKey | None = None) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError(_("Give the key a name."), code="required")
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError(_("Use at most 80 characters."), code="max_length")
    no_control_characters(name)
    taken = ApiKey.objects.active().filter(team=team, name__iexact=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    if taken.exists():
        raise ValidationError(
            _("This team already has an active API key named “%(name)s”.") % {"name": name},
            code="unique",
        )
    return name


def clean_allowed_models(models: Iterable[Any]) -> list[str]:
    """Model names or aliases; empty means every model the team can reach."""
    cleaned: list[str] = []
    for model in models:
        if not isinstance(model, str) or not _MODEL_RE.fullmatch(model.strip()):
            raise ValidationError(
                _("“%(model)s” is not a model name (no spaces or commas, at most 128 characters).")
                % {"model": str(model)[:130]},
                code="invalid",
            )
        if model.strip() not in cleaned:
            cleaned.append(model.strip())
    if len(cleaned) > MAX_MODELS:
        raise ValidationError(_("At most %(max)d models.") % {"max": MAX_MODELS}, code="invalid")
    return cleaned


def clean_ip_allowlist(entries: Iterable[Any]) -> list[str]:
    """CIDR blocks (a bare address is a /32 or /128), normalised."""
    cleaned: list[str] = []
    for entry in entries:
        try:
            network = ipaddress.ip_network(str(entry).strip(), strict=False)
        except ValueError:
            raise ValidationError(
                _("“%(entry)s” is not an IP address or CIDR block such as 203.0.113.0/24.")
                % {"entry": str(entry)[:60]},
                code="invalid",
            ) from None
        if str(network) not in cleaned:
            cleaned.append(str(network))
    if len(cleaned) > MAX_NETWORKS:
        raise ValidationError(_("At most %(max)d entries.") % {"max": MAX_NETWORKS}, code="invalid")
    return cleaned


def clean_expiry(
    expires_at: datetime | None, *, unchanged: datetime | None = None
) -> datetime | None:
    """An expiry must be in the future (an unchanged one is left alone when editing)."""
    if expires_at is None or (unchanged is not None and expires_at == unchanged):
        return expires_at
    if timezone.is_naive(expires_at):
        expires_at = timezone.make_aware(expires_at)
    if expires_at <= timezone.now():
        raise ValidationError(_("The expiry must be in the future."), code="invalid")
    return expires_at
