"""Management API for usage and billing records.

``GET /api/teams/<team_id>/usage/`` is a team's usage over a date range from
the hourly rollups: totals, a series (hourly up to three days, daily beyond)
and breakdowns by model, API key and provider. ``requests`` is the request log
(one ledger row per request, findable by Baton's request id or the client's
own). ``billing-records`` lists the team's billing records with their line
items. Every member reads them all, viewers included; outsiders get 404.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import TeamScopedViewSet
from accounts.api.pagination import CursorPagination
from billing import partitions
from billing.api.views import TeamScopedAPIView
from billing.dashboard import (
    FIRST_DAY,
    LAST_DAY,
    MAX_DAYS,
    DateRange,
    Figures,
    RangeError,
    Slice,
    parse_key,
    summary,
)
from billing.models import BillingLineItem, BillingRecord, UsageRecord
from billing.usage import team_currency


def _money(help_text: str = "") -> Any:
    return serializers.DecimalField(
        max_digits=24, decimal_places=9, read_only=True, help_text=help_text
    )


class FiguresSerializer(serializers.Serializer[Any]):
    """Sums over some hours of rollups. (Fields are declared in ``get_fields``:
    ``errors`` and ``label`` would shadow serializer attributes as class attributes.)"""

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        return {
            "requests": serializers.IntegerField(),
            "errors": serializers.IntegerField(
                help_text="Requests answered with a status of 400 or more."
            ),
            "prompt_tokens": serializers.IntegerField(
                help_text="Input tokens, cached ones included."
            ),
            "cached_tokens": serializers.IntegerField(
                help_text="Input tokens read from the provider's prompt cache."
            ),
            "cache_write_tokens": serializers.IntegerField(
                help_text="Input tokens written to the prompt cache, whatever their lifetime."
            ),
            "cache_write_5m_tokens": serializers.IntegerField(
                help_text="Of the cache writes, those kept five minutes (or of unstated lifetime)."
            ),
            "cache_write_1h_tokens": serializers.IntegerField(
                help_text="Of the cache writes, those kept an hour (priced apart)."
            ),
            "completion_tokens": serializers.IntegerField(help_text="Output tokens."),
            "reasoning_tokens": serializers.IntegerField(
                help_text="Of the output tokens, those spent reasoning."
            ),
            "tokens": serializers.IntegerField(help_text="Input plus output tokens."),
            "cost": _money("In the team's currency."),
            "unpriced_requests": serializers.IntegerField(
                help_text="Requests of models the price catalog had no price for (charged nothing)."
            ),
            "error_rate": serializers.FloatField(allow_null=True),
            "latency_ms_avg": serializers.FloatField(allow_null=True),
            "latency_ms_p50": serializers.FloatField(
                allow_null=True,
                help_text="From a fixed-bucket histogram, interpolated within the bucket.",
            ),
            "latency_ms_p95": serializers.FloatField(allow_null=True),
        }


class PointSerializer(serializers.Serializer[Any]):
    at = serializers.DateTimeField(help_text="Start of the hour or day (UTC).")
    figures = FiguresSerializer()


class SliceSerializer(serializers.Serializer[Any]):
    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        return {
            "label": serializers.CharField(),
            "provider": serializers.CharField(allow_blank=True),
            "model": serializers.CharField(allow_blank=True),
            "api_key_id": serializers.UUIDField(allow_null=True),
            "figures": FiguresSerializer(),
        }


class UsageSerializer(serializers.Serializer[Any]):
    start = serializers.DateField(help_text="First day (UTC), inclusive.")
    end = serializers.DateField(help_text="Last day (UTC), inclusive.")
    granularity = serializers.ChoiceField(choices=["hour", "day"])
    currency = serializers.CharField()
    totals = FiguresSerializer()
    series = PointSerializer(many=True)
    by_model = SliceSerializer(many=True)
    by_key = SliceSerializer(many=True)
    by_provider = SliceSerializer(many=True)


def _figures(figures: Figures) -> dict[str, Any]:
    return figures.as_dict()


def _slice(item: Slice) -> dict[str, Any]:
    return {
        "label": item.label,
        "provider": item.provider,
        "model": item.model,
        "api_key_id": item.api_key_id,
        "figures": _figures(item.figures),
    }


class UsageView(TeamScopedAPIView):
    """The team's usage over a range of whole UTC days, from the hourly rollups."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "start",
                OpenApiTypes.DATE,
                description=f"First day ({FIRST_DAY} to {LAST_DAY}); a week before end by default.",
            ),
            OpenApiParameter(
                "end",
                OpenApiTypes.DATE,
                description=f"Last day ({FIRST_DAY} to {LAST_DAY}); today by default. "
                f"A range covers at most {MAX_DAYS} days.",
            ),
            OpenApiParameter("key", OpenApiTypes.UUID, description="Only this API key's usage."),
        ],
        responses=UsageSerializer,
    )
    def get(self, request: Request, team_id: str) -> Response:
        try:
            date_range = DateRange.parse(request.query_params, timezone.now().date())
        except RangeError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        raw_key = request.query_params.get("key")
        key = parse_key(raw_key)
        if raw_key is not None and key is None:
            raise ValidationError({"key": ["Send an API key's id (a UUID)."]})
        result = summary(self.team.pk, date_range, team_currency(self.team.pk), key)
        data = {
            "start": date_range.first,
            "end": date_range.last,
            "granularity": date_range.granularity,
            "currency": result.currency,
            "totals": _figures(result.totals),
            "series": [
                {"at": point.at, "figures": _figures(point.figures)} for point in result.series
            ],
            "by_model": [_slice(item) for item in result.by_model],
            "by_key": [_slice(item) for item in result.by_key],
            "by_provider": [_slice(item) for item in result.by_provider],
        }
        return Response(UsageSerializer(data).data)


class RequestSerializer(serializers.ModelSerializer[UsageRecord]):
    class Meta:
        model = UsageRecord
        fields = (
            "request_id",
            "client_request_id",
            "created_at",
            "api_key_id",
            "endpoint",
            "dialect",
            "alias",
            "provider",
            "upstream_model",
            "status",
            "error_class",
            "streamed",
            "attempts",
            "prompt_tokens",
            "cached_tokens",
            "cache_write_tokens",
            "completion_tokens",
            "reasoning_tokens",
            "estimated",
            "cost",
            "currency",
            "unpriced",
            "latency_ms",
            "ttfb_ms",
        )
        read_only_fields = fields


# The ids a request can be found by, and their longest valid length.
REQUEST_IDS = {"request_id": 64, "client_request_id": 128}


class RequestViewSet(mixins.ListModelMixin, TeamScopedViewSet):
    """The request log, newest first: what each /v1 request used and cost, never what it
    said. ``request_id`` finds one by Baton's id (the ``x-request-id`` response header),
    ``client_request_id`` by the id the client sent with it (``x-client-request-id`` or
    ``x-request-id``), so a client that lost a response can still find what it cost. Pages
    follow a cursor (``next``, ``previous``), without a total."""

    team_queryset = UsageRecord.objects.order_by("-created_at", "-pk")
    serializer_class = RequestSerializer
    pagination_class = CursorPagination  # no COUNT over millions of rows
    http_method_names = ["get", "head", "options"]

    def filter_queryset(self, queryset: Any) -> Any:
        span = partitions.window()  # the newest partitions planned first, as on the page
        if span is not None:
            queryset = queryset.filter(created_at__gte=span[0], created_at__lt=span[1])
        for name, longest in REQUEST_IDS.items():
            value = self.request.query_params.get(name)
            if value is None:
                continue
            if not (0 < len(value) <= longest and value.isprintable()):
                raise ValidationError({name: [f"At most {longest} printable characters."]})
            queryset = queryset.filter(**{name: value})
        return queryset

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "request_id", OpenApiTypes.STR, description="Only the request with Baton's id."
            ),
            OpenApiParameter(
                "client_request_id",
                OpenApiTypes.STR,
                description="Only requests the client sent with this id of its own.",
            ),
        ]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)


class LineItemSerializer(serializers.ModelSerializer[BillingLineItem]):
    cache_write_5m_tokens = serializers.IntegerField(
        read_only=True,
        help_text="Of the cache writes, those kept five minutes (or of unstated lifetime).",
    )

    class Meta:
        model = BillingLineItem
        fields = (
            "kind",
            "provider",
            "model",
            "for_period_start",
            "for_period_end",
            "requests",
            "prompt_tokens",
            "cached_tokens",
            "cache_write_tokens",
            "cache_write_5m_tokens",
            "cache_write_1h_tokens",
            "completion_tokens",
            "reasoning_tokens",
            "amount",
        )
        read_only_fields = fields


class BillingRecordSerializer(serializers.ModelSerializer[BillingRecord]):
    lines = LineItemSerializer(many=True, read_only=True)

    class Meta:
        model = BillingRecord
        fields = (
            "id",
            "period_start",
            "period_end",
            "status",
            "currency",
            "usage",
            "adjustments",
            "total",
            "credits_applied",
            "amount_due",
            "closed_at",
            "updated_at",
            "lines",
        )
        read_only_fields = fields


class BillingRecordViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    """The team's billing records, newest period first, with their line items.
    The open record is the current period's running total."""

    team_queryset = BillingRecord.objects.prefetch_related("lines").order_by("-period_start")
    serializer_class = BillingRecordSerializer
    http_method_names = ["get", "head", "options"]
