"""Forms for limits and redemption. Empty means "no limit"."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext_lazy as _

from billing.models import MAX_BUDGET, MAX_CONCURRENCY, MAX_RPM, MAX_TPM


def rate_field(label: Any, maximum: int, help_text: Any = "") -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        required=False,
        min_value=1,
        max_value=maximum,
        help_text=help_text,
        widget=forms.NumberInput(attrs={"min": 1, "max": maximum, "step": 1}),
    )


def budget_field(label: Any, help_text: Any = "") -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=False,
        max_digits=14,
        decimal_places=4,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(MAX_BUDGET)],
        help_text=help_text,
        widget=forms.NumberInput(attrs={"min": 0, "step": "0.01"}),
    )


class TeamLimitsForm(forms.Form):
    rpm_limit = rate_field(_("Requests per minute"), MAX_RPM)
    tpm_limit = rate_field(_("Tokens per minute"), MAX_TPM)
    max_concurrent = rate_field(_("Concurrent requests"), MAX_CONCURRENCY)
    daily_budget = budget_field(_("Daily budget"), _("Resets at 00:00 UTC."))
    monthly_budget = budget_field(_("Monthly budget"), _("Resets on the first of the month, UTC."))


class KeyLimitsForm(TeamLimitsForm):
    lifetime_budget = budget_field(_("Lifetime budget"), _("Never resets."))


class CredentialLimitsForm(forms.Form):
    rpm_limit = rate_field(
        _("Requests per minute"), MAX_RPM, _("The provider account's own limit, if it has one.")
    )
    tpm_limit = rate_field(_("Tokens per minute"), MAX_TPM)


class RedeemForm(forms.Form):
    code = forms.CharField(
        label=_("Code"),
        max_length=64,
        strip=True,
        widget=forms.TextInput(
            attrs={
                "placeholder": "BATON-XXXX-XXXX-XXXX-XXXX",
                "autocomplete": "off",
                "spellcheck": "false",
            }
        ),
    )
