"""Serializers for limits, credits and redemption.

Limits use the same bounds as the pages (``billing.models``): empty (null)
means no limit; rates are whole numbers from 1, budgets decimals from 0 in
the team's currency with at most four places.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from billing.models import MAX_BUDGET, MAX_CONCURRENCY, MAX_RPM, MAX_TPM, CreditEntry


def rate(maximum: int, help_text: str) -> Any:
    return serializers.IntegerField(
        min_value=1, max_value=maximum, allow_null=True, required=False, help_text=help_text
    )


def budget(help_text: str) -> Any:
    return serializers.DecimalField(
        max_digits=14,
        decimal_places=4,
        min_value=Decimal(0),
        max_value=MAX_BUDGET,
        allow_null=True,
        required=False,
        # A decimal travels as a string, so the schema can only say its range in words.
        help_text=f"{help_text} From 0 to {MAX_BUDGET:,}; null for no limit.",
    )


def money(help_text: str = "") -> Any:
    return serializers.DecimalField(
        max_digits=24, decimal_places=9, read_only=True, help_text=help_text
    )


class UseSerializer(serializers.Serializer[Any]):
    """Live use from the limits store."""

    in_flight = serializers.IntegerField(help_text="Requests running now.")
    held = money("Estimated cost held by requests in flight.")
    requests_remaining = serializers.IntegerField(
        allow_null=True, help_text="Left in the RPM bucket."
    )
    tokens_remaining = serializers.IntegerField(
        allow_null=True, help_text="Left in the TPM bucket."
    )
    spent_today = money()
    spent_this_month = money()
    spent_total = money()


class TeamLimitsSerializer(serializers.Serializer[Any]):
    rpm_limit = rate(MAX_RPM, "Requests per minute for the whole team.")
    tpm_limit = rate(MAX_TPM, "Tokens per minute for the whole team.")
    max_concurrent = rate(MAX_CONCURRENCY, "Requests in flight at once.")
    daily_budget = budget("Spending cap per UTC day, in the team's currency.")
    monthly_budget = budget("Spending cap per UTC month, in the team's currency.")
    currency = serializers.CharField(read_only=True)
    billing_mode = serializers.CharField(
        read_only=True, help_text="prepaid or invoiced (set by the operator)."
    )
    on_redis_failure = serializers.CharField(
        read_only=True, help_text="Operator override; empty for the default."
    )
    use = UseSerializer(read_only=True, allow_null=True)


class KeyLimitsSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(read_only=True)
    masked = serializers.CharField(read_only=True)
    rpm_limit = rate(MAX_RPM, "Requests per minute for this key.")
    tpm_limit = rate(MAX_TPM, "Tokens per minute for this key.")
    max_concurrent = rate(MAX_CONCURRENCY, "Requests of this key in flight at once.")
    daily_budget = budget("Spending cap per UTC day.")
    monthly_budget = budget("Spending cap per UTC month.")
    lifetime_budget = budget("Spending cap over the key's life.")
    key_budget = serializers.DictField(
        read_only=True,
        help_text="The budget set on the API key itself ({limit, period}); it applies too.",
    )
    effective_budgets = serializers.DictField(
        read_only=True, help_text="The cap that applies per period: the lower of both budgets."
    )
    use = UseSerializer(read_only=True, allow_null=True)


class CredentialLimitsSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(read_only=True)
    provider = serializers.CharField(read_only=True)
    rpm_limit = rate(MAX_RPM, "The provider account's requests per minute.")
    tpm_limit = rate(MAX_TPM, "The provider account's tokens per minute.")


class CreditsSerializer(serializers.Serializer[Any]):
    balance = money("Credit ever added minus spend, live.")
    currency = serializers.CharField()
    billing_mode = serializers.CharField()
    granted = money("Credit ever added: grants, codes, top-ups and adjustments.")
    spent = money("Usage spend in total.")
    live = serializers.BooleanField(help_text="False when only the ledger could be read.")
    low = serializers.BooleanField(help_text="Prepaid and at or below the low-balance threshold.")


class CreditEntrySerializer(serializers.ModelSerializer[CreditEntry]):
    created_by = serializers.EmailField(source="created_by.email", read_only=True, allow_null=True)

    class Meta:
        model = CreditEntry
        fields = ("id", "kind", "amount", "currency", "note", "created_by", "created_at")
        read_only_fields = fields


class RedeemSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(
        max_length=64, help_text="A code such as BATON-XXXX-XXXX-XXXX-XXXX."
    )
