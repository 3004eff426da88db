"""Usage and billing pages of a team.

Every member of the team, viewers included, reads all of the team's usage
and billing: usage is not private to the member who made a key, and a
viewer's role is precisely to read. The dashboard and the exports read the
hourly rollups only; the request log reads the ledger, newest first, a
page at a time by keyset (time, id) within the retention window.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from accounts.models import ApiKey, Membership
from accounts.tenancy import get_for_team, team_view
from billing import conf, partitions
from billing.dashboard import DateRange, RangeError, Summary, parse_key, rollups, summary
from billing.models import BillingLineItem, BillingRecord, UsageRecord
from billing.usage import team_currency

REQUESTS_PER_PAGE = 50
# The counts of a billing line item in its CSV export: every token class priced apart.
LINE_COLUMNS = (
    "requests",
    "prompt_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "completion_tokens",
    "reasoning_tokens",
)


def _context(membership: Membership, **extra: Any) -> dict[str, Any]:
    return {"team": membership.team, "membership": membership, **extra}


def _keys(team_id: Any) -> list[ApiKey]:
    return list(
        ApiKey.objects.filter(team_id=team_id).order_by("name").only("id", "name", "revoked_at")
    )


def chart_data(result: Summary) -> dict[str, Any]:
    """What the page's charts draw, as plain JSON."""
    hourly = result.range.granularity == "hour"
    return {
        "labels": [
            point.at.strftime("%m-%d %H:00" if hourly else "%Y-%m-%d") for point in result.series
        ],
        "requests": [point.figures.requests - point.figures.errors for point in result.series],
        "errors": [point.figures.errors for point in result.series],
        "prompt_tokens": [point.figures.prompt_tokens for point in result.series],
        "completion_tokens": [point.figures.completion_tokens for point in result.series],
        "cost": [float(point.figures.cost) for point in result.series],
    }


@team_view()
@require_safe
def usage(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    today = timezone.now().date()
    error = ""
    try:
        date_range = DateRange.parse(request.GET, today)
    except RangeError as exc:
        error = str(exc)
        date_range = DateRange.parse({}, today)
    key_id = parse_key(request.GET.get("key"))
    result = summary(team.pk, date_range, team_currency(team.pk), key_id)
    presets = [
        (_("Today"), DateRange(today, today)),
        (_("7 days"), DateRange(today - timedelta(days=6), today)),
        (_("30 days"), DateRange(today - timedelta(days=29), today)),
        (_("This month"), DateRange(today.replace(day=1), today)),
    ]
    return render(
        request,
        "billing/usage.html",
        _context(
            membership,
            summary=result,
            chart=chart_data(result),
            chart_names={
                "ok": _("Answered"),
                "errors": _("Errors"),
                "prompt_tokens": _("Input tokens"),
                "completion_tokens": _("Output tokens"),
                "cost": _("Cost (%(currency)s)") % {"currency": result.currency},
            },
            presets=presets,
            range_error=error,
            keys=_keys(team.pk),
            key_id=str(key_id) if key_id else "",
        ),
    )


# --- the request log ---------------------------------------------------------------------------
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def _cursor(record: UsageRecord) -> str:
    """Where the next page starts: the last row's time (exact, in microseconds) and id."""
    return f"{(record.created_at - EPOCH) // MICROSECOND}.{record.pk}"


def _parse_cursor(raw: str) -> tuple[datetime, int] | None:
    micros, _, pk = raw.partition(".")
    try:
        return EPOCH + int(micros) * MICROSECOND, int(pk)
    except (ValueError, OverflowError):
        return None


def _status_filter(raw: str) -> Q | None:
    raw = raw.strip().lower()
    if len(raw) == 3 and raw.endswith("xx") and raw[0] in "12345":
        low = int(raw[0]) * 100
        return Q(status__gte=low, status__lt=low + 100)
    if raw.isdigit() and len(raw) == 3:
        return Q(status=int(raw))
    return None


def log_records(team_id: Any, since: datetime | None) -> QuerySet[UsageRecord]:
    """The ledger rows the request log lists, bounded by the ledger's partitions where it
    has them (``billing.partitions.window``) so PostgreSQL plans the newest ones only."""
    records = UsageRecord.objects.filter(team_id=team_id)
    span = partitions.window(since)
    if span is not None:
        return records.filter(created_at__gte=span[0], created_at__lt=span[1])
    if since is not None:
        records = records.filter(created_at__gte=since)
    return records


@team_view()
@require_safe
def request_log(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    retention = conf.ledger_retention_days()
    records = log_records(team.pk, timezone.now() - timedelta(days=retention))
    filters: dict[str, Any] = {
        "key": request.GET.get("key", ""),
        "provider": request.GET.get("provider", "").strip()[:32],
        "model": request.GET.get("model", "").strip()[:128],
        "status": request.GET.get("status", "").strip()[:3],
        "errors": request.GET.get("errors") == "1",
        # Baton's request id or the client's own (x-client-request-id / x-request-id).
        "id": request.GET.get("id", "").strip()[:128],
    }
    key_id = parse_key(filters["key"])
    if key_id is not None:
        records = records.filter(api_key_id=key_id)
    if filters["provider"]:
        records = records.filter(provider=filters["provider"])
    if filters["model"]:
        records = records.filter(Q(upstream_model=filters["model"]) | Q(alias=filters["model"]))
    status = _status_filter(filters["status"])
    if status is not None:
        records = records.filter(status)
    if filters["errors"]:
        records = records.filter(status__gte=400)
    if filters["id"]:
        records = records.filter(Q(request_id=filters["id"]) | Q(client_request_id=filters["id"]))
    cursor = _parse_cursor(request.GET.get("before", ""))
    if cursor is not None:
        records = records.filter(
            Q(created_at__lt=cursor[0]) | Q(created_at=cursor[0], pk__lt=cursor[1])
        )
    page = list(records.order_by("-created_at", "-pk")[: REQUESTS_PER_PAGE + 1])
    more = len(page) > REQUESTS_PER_PAGE
    page = page[:REQUESTS_PER_PAGE]
    keys = _keys(team.pk)
    names = {key.pk: key.name for key in keys}
    query = request.GET.copy()
    query.pop("before", None)
    return render(
        request,
        "billing/requests.html",
        _context(
            membership,
            records=[
                (record, names.get(record.api_key_id, "") if record.api_key_id else "")
                for record in page
            ],
            next_cursor=_cursor(page[-1]) if more else "",
            paged=cursor is not None,
            filters=filters,
            keys=keys,
            base_query=query.urlencode(),
            retention=retention,
            providers=sorted(
                set(
                    rollups(team.pk, DateRange.parse({}, timezone.now().date(), 31))
                    .values_list("provider", flat=True)
                    .distinct()
                    .order_by()
                )
                - {""}
            ),
        ),
    )


# --- exports -------------------------------------------------------------------------------------
class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_response(rows: Iterator[list[Any]], filename: str) -> HttpResponse:
    """Streamed, so an export of many hours never sits in memory whole."""
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return cast(HttpResponse, response)  # team_view's type; Django serves either


@team_view()
@require_safe
def usage_export(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Hourly usage per key, provider and model for a date range, as CSV (from the rollups)."""
    team = membership.team
    try:
        date_range = DateRange.parse(request.GET, timezone.now().date())
    except RangeError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    names = {str(key.pk): key.name for key in _keys(team.pk)}
    hours = rollups(team.pk, date_range, parse_key(request.GET.get("key"))).order_by(
        "hour", "provider", "model", "api_key_id"
    )
    header = [
        "hour_utc",
        "api_key_id",
        "api_key_name",
        "provider",
        "model",
        "requests",
        "errors",
        "prompt_tokens",
        "cached_tokens",
        "cache_write_tokens",
        "cache_write_5m_tokens",
        "cache_write_1h_tokens",
        "completion_tokens",
        "reasoning_tokens",
        "cost",
        "currency",
        "unpriced_requests",
        "latency_ms_avg",
    ]

    def rows() -> Iterator[list[Any]]:
        yield header
        for row in hours.iterator(chunk_size=2000):
            key = str(row.api_key_id) if row.api_key_id else ""
            yield [
                row.hour.strftime("%Y-%m-%dT%H:%M:%SZ"),
                key,
                names.get(key, ""),
                row.provider,
                row.model,
                row.requests,
                row.errors,
                row.prompt_tokens,
                row.cached_tokens,
                row.cache_write_tokens,
                row.cache_write_5m_tokens,
                row.cache_write_1h_tokens,
                row.completion_tokens,
                row.reasoning_tokens,
                f"{row.cost:f}",
                row.currency,
                row.unpriced,
                f"{row.latency_ms_sum / row.requests:.1f}" if row.requests else "",
            ]

    return _csv_response(rows(), f"usage-{date_range.first}-{date_range.last}.csv")


# --- billing ----------------------------------------------------------------------------------------
@team_view()
@require_safe
def billing(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    records = BillingRecord.objects.filter(team=team).order_by("-period_start")
    page = Paginator(records, 24).get_page(request.GET.get("page"))
    running = records.filter(status=BillingRecord.Status.OPEN).first()
    return render(
        request,
        "billing/records.html",
        _context(
            membership,
            page=page,
            running=running,
            running_lines=list(running.lines.all()) if running else [],
            currency=team_currency(team.pk),
            period_kind=conf.billing_period(),
        ),
    )


@team_view()
@require_safe
def billing_record(request: HttpRequest, membership: Membership, record_id: int) -> HttpResponse:
    record = get_for_team(BillingRecord, membership.team_id, pk=record_id)
    lines = list(record.lines.all())
    return render(
        request,
        "billing/records_detail.html",
        _context(
            membership,
            record=record,
            usage_lines=[line for line in lines if line.kind == BillingLineItem.Kind.USAGE],
            adjustment_lines=[
                line for line in lines if line.kind == BillingLineItem.Kind.ADJUSTMENT
            ],
        ),
    )


@team_view()
@require_safe
def billing_record_export(
    request: HttpRequest, membership: Membership, record_id: int
) -> HttpResponse:
    record = get_for_team(BillingRecord, membership.team_id, pk=record_id)

    def rows() -> Iterator[list[Any]]:
        yield [
            "period_start_utc",
            "period_end_utc",
            "status",
            "kind",
            "usage_period_start_utc",
            "usage_period_end_utc",
            "provider",
            "model",
            *LINE_COLUMNS,
            "amount",
            "currency",
        ]
        start = record.period_start.strftime("%Y-%m-%dT%H:%M:%SZ")
        end = record.period_end.strftime("%Y-%m-%dT%H:%M:%SZ")
        for line in record.lines.all():
            yield [
                start,
                end,
                record.status,
                line.kind,
                line.for_period_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                line.for_period_end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                line.provider,
                line.model,
                *(getattr(line, name) for name in LINE_COLUMNS),
                f"{line.amount:f}",
                record.currency,
            ]
        for label, value in (
            ("usage_total", record.usage),
            ("late_usage_total", record.adjustments),
            ("total", record.total),
            ("paid_from_credit", record.credits_applied),
            ("amount_due", record.amount_due),
        ):
            yield [
                start,
                end,
                record.status,
                label,
                "",
                "",
                "",
                "",
                *([""] * len(LINE_COLUMNS)),
                f"{value:f}",
                record.currency,
            ]

    return _csv_response(rows(), f"billing-{record.period_start:%Y-%m-%d}.csv")
