"""The operator's side of billing: prices, exchange rates, how each team pays,
top-ups, and redemption codes.

Ledger rows are added, never changed. A top-up or adjustment goes through
``billing.credits.add_credit`` (audited, and seen by the relay within a
second); a currency change through ``change_currency``. Codes are generated
in batches here (or with ``manage.py create_credit_codes``) and shown once.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import audit
from billing import credits
from billing.metering_admin import has_rolled_up_usage
from billing.models import (
    CredentialLimits,
    CreditEntry,
    Currency,
    ExchangeRate,
    KeyLimits,
    Price,
    RedemptionCode,
    TeamLimits,
    UsageRecord,
)


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = (
        "provider",
        "model",
        "input",
        "cached_input",
        "cache_write",
        "cache_write_1h",
        "output",
        "currency",
        "effective_from",
    )
    list_filter = ("provider", "currency")
    search_fields = ("model",)
    ordering = ("provider", "model", "-effective_from")

    def get_readonly_fields(
        self, request: HttpRequest, obj: Price | None = None
    ) -> tuple[str, ...]:
        # A version that usage was charged at is history: add a new version instead.
        if obj is not None and UsageRecord.objects.filter(price=obj).exists():
            return (
                "provider",
                "model",
                "input",
                "cached_input",
                "cache_write",
                "cache_write_1h",
                "output",
                "currency",
                "effective_from",
            )
        return ()


@admin.register(ExchangeRate)
class ExchangeRateAdmin(admin.ModelAdmin):
    list_display = ("base", "quote", "rate", "effective_from")
    list_filter = ("base", "quote")


class TeamLimitsForm(forms.ModelForm):
    class Meta:
        model = TeamLimits
        fields = (
            "team",
            "billing_mode",
            "currency",
            "markup",
            "on_redis_failure",
            "rpm_limit",
            "tpm_limit",
            "max_concurrent",
            "daily_budget",
            "monthly_budget",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["markup"].required = False  # left out of a submission: unchanged

    def clean_markup(self) -> Decimal:
        value: Decimal | None = self.cleaned_data.get("markup")
        return self.instance.markup if value is None else value

    def clean_currency(self) -> str:
        currency: str = self.cleaned_data["currency"]
        changed = self.instance.pk and currency != self.instance.currency
        if (
            changed
            and UsageRecord.objects.filter(team_id=self.instance.pk).exclude(cost=0).exists()
        ):
            raise ValidationError(_("The currency can only change before the team has any usage."))
        if changed and has_rolled_up_usage(self.instance.pk):
            raise ValidationError(_("The currency can only change before the team has any usage."))
        return currency


@admin.register(TeamLimits)
class TeamLimitsAdmin(admin.ModelAdmin):
    form = TeamLimitsForm
    list_display = (
        "team",
        "billing_mode",
        "currency",
        "markup",
        "on_redis_failure",
        "rpm_limit",
        "daily_budget",
        "monthly_budget",
    )
    list_filter = ("billing_mode", "currency", "on_redis_failure")
    search_fields = ("team__name",)
    raw_id_fields = ("team",)

    def get_readonly_fields(
        self, request: HttpRequest, obj: TeamLimits | None = None
    ) -> tuple[str, ...]:
        return ("team",) if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: TeamLimits, form: Any, change: bool) -> None:
        if change and "currency" in form.changed_data:
            new = obj.currency
            obj.currency = form.initial["currency"]
            credits.change_currency(obj.team, new, actor=request.user, request=request)  # type: ignore[arg-type]
            obj.currency = new
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            changes = {
                name: {
                    "old": audit.jsonable(form.initial.get(name)),
                    "new": audit.jsonable(getattr(obj, name)),
                }
                for name in form.changed_data
                if name not in ("team", "currency")
            }
            if changes:
                audit.record(
                    obj.team,
                    request.user,  # type: ignore[arg-type]
                    "billing.team_settings_changed",
                    obj.team,
                    request=request,
                    changes=changes,
                )


@admin.register(KeyLimits)
class KeyLimitsAdmin(admin.ModelAdmin):
    list_display = (
        "api_key",
        "team",
        "max_concurrent",
        "daily_budget",
        "monthly_budget",
        "lifetime_budget",
    )
    readonly_fields = ("api_key", "team")
    search_fields = ("api_key__name", "team__name")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # teams set them on their Limits page


@admin.register(CredentialLimits)
class CredentialLimitsAdmin(admin.ModelAdmin):
    list_display = ("credential", "team", "rpm_limit", "tpm_limit")
    readonly_fields = ("credential", "team")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class CreditEntryForm(forms.ModelForm):
    kind = forms.ChoiceField(
        choices=[
            (CreditEntry.Kind.TOP_UP, _("Top-up")),
            (CreditEntry.Kind.ADJUSTMENT, _("Adjustment")),
        ]
    )

    class Meta:
        model = CreditEntry
        fields = ("team", "kind", "amount", "note")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        amount: Decimal | None = data.get("amount")
        if amount is not None and (
            amount == 0 or (data.get("kind") == CreditEntry.Kind.TOP_UP and amount < 0)
        ):
            raise ValidationError(
                _("A top-up must be a positive amount; use an adjustment to take credit away.")
            )
        return data


@admin.register(CreditEntry)
class CreditEntryAdmin(admin.ModelAdmin):
    """The ledger is append-only: add a top-up or an adjustment, never edit."""

    form = CreditEntryForm
    list_display = ("created_at", "team", "kind", "amount", "currency", "note", "created_by")
    list_filter = ("kind", "currency")
    search_fields = ("team__name", "note")
    raw_id_fields = ("team",)
    list_select_related = ("team", "created_by")

    def has_change_permission(self, request: HttpRequest, obj: CreditEntry | None = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: CreditEntry | None = None) -> bool:
        return False

    def get_readonly_fields(
        self, request: HttpRequest, obj: CreditEntry | None = None
    ) -> tuple[str, ...]:
        if obj is not None:
            return (
                "team",
                "kind",
                "amount",
                "currency",
                "note",
                "code",
                "created_by",
                "created_at",
            )
        return ()

    def save_model(self, request: HttpRequest, obj: CreditEntry, form: Any, change: bool) -> None:
        entry = credits.add_credit(
            obj.team,
            obj.amount,
            actor=request.user,  # type: ignore[arg-type]
            kind=obj.kind,
            note=obj.note,
            request=request,
        )
        obj.pk, obj.currency, obj.created_at = entry.pk, entry.currency, entry.created_at


class GenerateCodesForm(forms.Form):
    count = forms.IntegerField(label=_("How many"), min_value=1, max_value=10_000, initial=10)
    amount = forms.DecimalField(
        label=_("Worth"), max_digits=14, decimal_places=4, min_value=Decimal("0.01")
    )
    currency = forms.ChoiceField(
        label=_("Currency"), choices=Currency.choices, initial=Currency.USD
    )
    valid_days = forms.IntegerField(
        label=_("Valid for (days)"), min_value=1, max_value=3650, initial=90
    )
    batch = forms.CharField(label=_("Batch name"), max_length=80, required=False)


@admin.register(RedemptionCode)
class RedemptionCodeAdmin(admin.ModelAdmin):
    list_display = ("__str__", "batch", "expires_at", "redeemed_team", "redeemed_at", "revoked_at")
    list_filter = ("batch", "currency", ("redeemed_at", admin.EmptyFieldListFilter))
    search_fields = ("batch", "hint")
    readonly_fields = (
        "hint",
        "amount",
        "currency",
        "batch",
        "expires_at",
        "created_by",
        "created_at",
        "redeemed_at",
        "redeemed_team",
        "redeemed_by",
        "revoked_at",
    )
    exclude = ("code_hash",)
    actions = ("revoke",)
    change_list_template = "billing/admin/redemptioncode_changelist.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # generated in batches: see generate_view

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "generate/",
                self.admin_site.admin_view(self.generate_view),
                name="billing_redemptioncode_generate",
            ),
            *super().get_urls(),
        ]

    def generate_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request) or not request.user.has_perm(
            "billing.change_redemptioncode"
        ):
            return redirect("admin:index")
        form = GenerateCodesForm(request.POST or None)
        codes: list[str] = []
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            codes = credits.generate_codes(
                data["count"],
                data["amount"],
                data["currency"],
                timezone.now() + timedelta(days=data["valid_days"]),
                batch=data["batch"],
                actor=request.user,  # type: ignore[arg-type]
            )
        response = render(
            request,
            "billing/admin/generate_codes.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Generate redemption codes"),
                "form": form,
                "codes": codes,
                "opts": self.model._meta,
                "changelist": reverse("admin:billing_redemptioncode_changelist"),
            },
        )
        response["Cache-Control"] = "no-store"  # the only copy of the codes
        return response

    @admin.action(description=_("Revoke the selected unused codes"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[RedemptionCode]) -> None:
        count = queryset.filter(redeemed_at=None, revoked_at=None).update(revoked_at=timezone.now())
        messages.success(request, _("%(count)d codes revoked.") % {"count": count})
