"""Forms for team API keys, and the input rules they share with the API.

The page form takes lists as text (one entry per line, or separated by
commas); the API takes JSON lists. Both end in the same ``clean_*`` rules.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import ApiKey, Team
from accounts.validators import no_control_characters
from billing.forms import budget_field, rate_field
from billing.models import MAX_RPM, MAX_TPM

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


def _unlimited_placeholder(field: forms.Field) -> forms.Field:
    field.widget.attrs["placeholder"] = "∞"
    return field


class _LimitsMixin(forms.Form):
    # The bounds of the Limits page and of the API (billing.models): rates from 1,
    # budgets from 0; empty means no limit.
    rpm_limit = _unlimited_placeholder(rate_field(gettext_lazy("Requests per minute"), MAX_RPM))
    tpm_limit = _unlimited_placeholder(rate_field(gettext_lazy("Tokens per minute"), MAX_TPM))
    budget_limit = _unlimited_placeholder(budget_field(gettext_lazy("Budget")))
    budget_period = forms.ChoiceField(
        label=gettext_lazy("Budget period"),
        choices=[
            ("day", gettext_lazy("per day")),
            ("month", gettext_lazy("per month")),
            ("lifetime", gettext_lazy("lifetime")),
        ],
        initial="month",
    )


class ApiKeyForm(_LimitsMixin):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=MAX_NAME_LENGTH, strip=True)
    allowed_models = forms.CharField(
        label=gettext_lazy("Allowed models"),
        required=False,
        max_length=30_000,
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "gpt-4o\nqwen-plus", "spellcheck": "false"}
        ),
        help_text=gettext_lazy(
            "One model name or alias per line. Leave empty to allow every model."
        ),
    )
    expires_at = forms.DateTimeField(
        label=gettext_lazy("Expires"),
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=gettext_lazy("In UTC. Leave empty for a key that does not expire."),
    )
    ip_allowlist = forms.CharField(
        label=gettext_lazy("Allowed IP addresses"),
        required=False,
        max_length=10_000,
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "203.0.113.0/24\n2001:db8::/32", "spellcheck": "false"}
        ),
        help_text=gettext_lazy(
            "One address or CIDR block per line. Leave empty to allow any address."
        ),
    )

    field_order = ("name", "allowed_models", "expires_at", "ip_allowlist")

    def __init__(
        self, *args: Any, team: Team, instance: ApiKey | None = None, **kwargs: Any
    ) -> None:
        if instance is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": instance.name,
                    "allowed_models": "\n".join(instance.allowed_models),
                    "expires_at": instance.expires_at,
                    "ip_allowlist": "\n".join(instance.ip_allowlist),
                    "rpm_limit": instance.rpm_limit,
                    "tpm_limit": instance.tpm_limit,
                    "budget_limit": instance.budget_limit,
                    "budget_period": instance.budget_period,
                },
            )
        super().__init__(*args, **kwargs)
        self.team = team
        self.instance = instance

    def clean_name(self) -> str:
        return clean_name(self.team, self.cleaned_data["name"], exclude=self.instance)

    def clean_allowed_models(self) -> list[str]:
        return clean_allowed_models(split_lines(self.cleaned_data.get("allowed_models") or ""))

    def clean_ip_allowlist(self) -> list[str]:
        return clean_ip_allowlist(split_lines(self.cleaned_data.get("ip_allowlist") or ""))

    def clean_expires_at(self) -> datetime | None:
        unchanged = self.instance.expires_at if self.instance is not None else None
        value = self.cleaned_data.get("expires_at")
        if (
            value is not None
            and unchanged is not None
            and value.replace(second=0, microsecond=0) == unchanged.replace(second=0, microsecond=0)
        ):
            # The widget shows minutes only; an untouched expiry comes back truncated.
            return unchanged
        return clean_expiry(value, unchanged=unchanged)
