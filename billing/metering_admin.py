"""Operators' read-only views of metering: the usage ledger (with a filter
for usage served without a price), hourly rollups, billing records and the
aggregation fill states. Nothing here is edited by hand: the ledger is
append-only and everything else is rebuilt from it."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from billing.models import BillingLineItem, BillingRecord, FillState, HourlyUsage, UsageRecord


def has_rolled_up_usage(team_id: Any) -> bool:
    """Usage that outlived the ledger's retention still pins the team's currency."""
    return HourlyUsage.objects.filter(team_id=team_id).exclude(cost=0).exists()


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class StatusClassFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status_class"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("2xx", _("Answered (2xx)")),
            ("4xx", _("Refused (4xx)")),
            ("5xx", _("Failed (5xx)")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value in ("2xx", "4xx", "5xx"):
            low = int(value[0]) * 100
            return queryset.filter(status__gte=low, status__lt=low + 100)
        return queryset


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    """``unpriced``: the model had no price (or no exchange rate) and was served at no cost."""

    list_display = (
        "created_at",
        "request_id",
        "team",
        "provider",
        "upstream_model",
        "status",
        "dialect",
        "egress",
        "prompt_tokens",
        "cached_tokens",
        "cache_write_tokens",
        "cache_write_1h_tokens",
        "completion_tokens",
        "reasoning_tokens",
        "cost",
        "currency",
        "unpriced",
        "estimated",
        "reasoning",
    )
    list_filter = (
        "unpriced",
        "estimated",
        StatusClassFilter,
        "provider",
        "streamed",
        "dialect",
        "reasoning",
    )
    search_fields = ("=request_id", "upstream_model", "alias")
    list_select_related = ("team",)
    date_hierarchy = "created_at"
    show_full_result_count = False  # the ledger is large: no COUNT(*) per page


@admin.register(HourlyUsage)
class HourlyUsageAdmin(ReadOnlyAdmin):
    list_display = ("hour", "team", "provider", "model", "requests", "errors", "cost", "unpriced")
    list_filter = ("provider",)
    search_fields = ("model",)
    list_select_related = ("team",)
    date_hierarchy = "hour"
    show_full_result_count = False


class LineInline(admin.TabularInline):
    model = BillingLineItem
    fields = (
        "kind",
        "provider",
        "model",
        "for_period_start",
        "requests",
        "prompt_tokens",
        "cached_tokens",
        "cache_write_tokens",
        "cache_write_1h_tokens",
        "completion_tokens",
        "reasoning_tokens",
        "amount",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(BillingRecord)
class BillingRecordAdmin(ReadOnlyAdmin):
    list_display = (
        "team",
        "period_start",
        "period_end",
        "status",
        "total",
        "credits_applied",
        "amount_due",
        "currency",
    )
    list_filter = ("status", "currency")
    search_fields = ("team__name",)
    list_select_related = ("team",)
    inlines = (LineInline,)


@admin.register(FillState)
class FillStateAdmin(ReadOnlyAdmin):
    list_display = ("property", "end_time", "state", "last_modified")
