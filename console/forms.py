"""The API key form: the key's own fields (accounts/apikey_rules.py) and its limits
(billing), on one page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy

from accounts.apikey_rules import (
    MAX_NAME_LENGTH,
    clean_allowed_models,
    clean_expiry,
    clean_ip_allowlist,
    clean_name,
    split_lines,
)
from accounts.models import ApiKey, Team
from billing.forms import budget_field, rate_field
from billing.models import MAX_RPM, MAX_TPM


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
