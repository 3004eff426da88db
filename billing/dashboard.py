"""A team's usage over a date range, from the hourly rollups only.

Whatever the size of the ledger, a summary costs the same handful of
queries over ``HourlyUsage`` (by team and hour, which an index covers):
totals with the latency histogram, a time series, and breakdowns by model
and by API key; providers are summed from the models. Latency percentiles
are read off the fixed-bucket histogram: the pages show the bucket a
percentile falls in (``percentile_range``), the API a value interpolated inside it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDay, TruncHour

from accounts.models import ApiKey
from billing.models import LATENCY_BUCKETS_MS, LATENCY_FIELDS, HourlyUsage
from billing.periods import HOUR

MAX_DAYS = 400
# The days a range may name: no usage predates 2000, and the last day must leave room for
# the day after it (``DateRange.end``) and the default start (a week earlier).
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(9999, 12, 30)
HOURLY_UP_TO = timedelta(days=3)  # longer ranges are drawn per day

COUNTS = (
    "requests",
    "errors",
    "prompt_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "completion_tokens",
    "reasoning_tokens",
)


class RangeError(ValueError):
    pass


@dataclass(frozen=True)
class DateRange:
    """Whole UTC days, ``first`` to ``last`` inclusive."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime(self.first.year, self.first.month, self.first.day, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return datetime(self.last.year, self.last.month, self.last.day, tzinfo=UTC) + timedelta(
            days=1
        )

    @property
    def granularity(self) -> str:
        return "hour" if self.end - self.start <= HOURLY_UP_TO else "day"

    @classmethod
    def parse(cls, params: Mapping[str, Any], today: date, default_days: int = 7) -> DateRange:
        """From ``start`` and ``end`` (YYYY-MM-DD, inclusive); the last week by default."""

        def day(name: str) -> date | None:
            raw = (params.get(name) or "").strip()
            if not raw:
                return None
            try:
                value = date.fromisoformat(raw)
            except ValueError as exc:
                raise RangeError(f"{name} must be a date like 2025-01-31") from exc
            if not FIRST_DAY <= value <= LAST_DAY:
                raise RangeError(f"{name} must be a day from {FIRST_DAY} to {LAST_DAY}")
            return value

        last = day("end") or today
        first = day("start") or last - timedelta(days=default_days - 1)
        if first > last:
            raise RangeError("start must not be after end")
        if (last - first).days >= MAX_DAYS:
            raise RangeError(f"a range covers at most {MAX_DAYS} days")
        return cls(first, last)


@dataclass
class Figures:
    """Sums over some rollups, with what can be derived from them."""

    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cost: Decimal = Decimal(0)
    unpriced: int = 0
    latency_ms_sum: float = 0.0
    histogram: list[int] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Figures:
        return cls(
            **{name: int(row.get(f"x_{name}") or 0) for name in COUNTS},
            cost=row.get("x_cost") or Decimal(0),
            unpriced=int(row.get("x_unpriced") or 0),
            latency_ms_sum=float(row.get("x_latency_ms_sum") or 0),
            histogram=[int(row.get(f"x_{name}") or 0) for name in LATENCY_FIELDS]
            if "x_lat_00" in row
            else [],
        )

    def add(self, other: Figures) -> None:
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.cost += other.cost
        self.unpriced += other.unpriced
        self.latency_ms_sum += other.latency_ms_sum
        if other.histogram:
            if not self.histogram:
                self.histogram = [0] * len(other.histogram)
            self.histogram = [a + b for a, b in zip(self.histogram, other.histogram, strict=True)]

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cache_write_5m_tokens(self) -> int:
        return self.cache_write_tokens - self.cache_write_1h_tokens

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def latency_avg(self) -> float | None:
        return self.latency_ms_sum / self.requests if self.requests else None

    def percentile(self, fraction: float) -> float | None:
        return percentile(self.histogram, fraction)

    @property
    def p50(self) -> float | None:
        return self.percentile(0.50)

    @property
    def p95(self) -> float | None:
        return self.percentile(0.95)

    @property
    def p50_range(self) -> LatencyRange | None:
        return percentile_range(self.histogram, 0.50)

    @property
    def p95_range(self) -> LatencyRange | None:
        return percentile_range(self.histogram, 0.95)

    def as_dict(self) -> dict[str, Any]:
        return {
            **{name: getattr(self, name) for name in COUNTS},
            "cache_write_5m_tokens": self.cache_write_5m_tokens,
            "tokens": self.tokens,
            "cost": self.cost,
            "unpriced_requests": self.unpriced,
            "error_rate": self.error_rate,
            "latency_ms_avg": self.latency_avg,
            "latency_ms_p50": self.p50,
            "latency_ms_p95": self.p95,
        }


@dataclass(frozen=True)
class LatencyRange:
    """The histogram bucket a percentile falls in: all the histogram can honestly say.
    ``upper`` is None for the last bucket (slower than its lower edge)."""

    lower: float
    upper: float | None


def percentile_range(histogram: list[int], fraction: float) -> LatencyRange | None:
    """The bucket holding the ``fraction`` quantile of a latency histogram, or None when
    it is empty. The usage pages show this range rather than a number interpolated
    inside it, which would claim a precision the buckets do not have."""
    total = sum(histogram)
    if not total:
        return None
    target = fraction * total
    seen = 0
    lower = 0.0
    for count, upper in zip(histogram, (*LATENCY_BUCKETS_MS, None), strict=True):
        if count and seen + count >= target:
            return LatencyRange(lower, float(upper) if upper is not None else None)
        seen += count
        if upper is not None:
            lower = float(upper)
    return LatencyRange(lower, None)


def percentile(histogram: list[int], fraction: float) -> float | None:
    """The ``fraction`` quantile of a latency histogram in ms, or None when empty.
    Past the last edge the last edge is the answer (a lower bound)."""
    total = sum(histogram)
    if not total:
        return None
    target = fraction * total
    seen = 0
    lower = 0.0
    for count, upper in zip(histogram, (*LATENCY_BUCKETS_MS, None), strict=True):
        if count and seen + count >= target:
            if upper is None:
                return float(lower)
            return lower + (upper - lower) * (target - seen) / count
        seen += count
        lower = float(upper) if upper is not None else lower
    return float(lower)


def _sums(histogram: bool = False) -> dict[str, Any]:
    sums: dict[str, Any] = {f"x_{name}": Coalesce(Sum(name), 0) for name in COUNTS}
    sums["x_cost"] = Coalesce(Sum("cost"), Decimal(0))
    sums["x_unpriced"] = Coalesce(Sum("unpriced"), 0)
    sums["x_latency_ms_sum"] = Coalesce(Sum("latency_ms_sum"), 0.0)
    if histogram:
        sums |= {f"x_{name}": Coalesce(Sum(name), 0) for name in LATENCY_FIELDS}
    return sums


@dataclass
class Point:
    at: datetime
    figures: Figures


@dataclass
class Slice:
    """One row of a breakdown: a model, an API key or a provider."""

    key: str
    label: str
    figures: Figures
    provider: str = ""
    model: str = ""
    api_key_id: str | None = None


@dataclass
class Summary:
    range: DateRange
    currency: str
    totals: Figures
    series: list[Point]
    by_model: list[Slice]
    by_key: list[Slice]
    by_provider: list[Slice]


def rollups(
    team_id: Any, date_range: DateRange, api_key_id: Any | None = None
) -> QuerySet[HourlyUsage]:
    hours = HourlyUsage.objects.filter(
        team_id=team_id, hour__gte=date_range.start, hour__lt=date_range.end
    )
    if api_key_id is not None:
        hours = hours.filter(api_key_id=api_key_id)
    return hours


def summary(
    team_id: Any, date_range: DateRange, currency: str, api_key_id: Any | None = None
) -> Summary:
    """Four queries on rollups and one for key names, whatever the ledger holds."""
    hours = rollups(team_id, date_range, api_key_id)
    totals = Figures.from_row(hours.aggregate(**_sums(histogram=True)))

    trunc = (
        TruncHour("hour", tzinfo=UTC)
        if date_range.granularity == "hour"
        else TruncDay("hour", tzinfo=UTC)
    )
    buckets = {
        row["x_at"]: Figures.from_row(row)
        for row in hours.annotate(x_at=trunc).values("x_at").annotate(**_sums()).order_by()
    }
    step = HOUR if date_range.granularity == "hour" else timedelta(days=1)
    series = []
    at = date_range.start
    while at < date_range.end:
        series.append(Point(at, buckets.get(at, Figures())))
        at += step

    by_model = []
    providers: dict[str, Figures] = {}
    for row in hours.values("provider", "model").annotate(**_sums(histogram=True)).order_by():
        figures = Figures.from_row(row)
        label = f"{row['provider']}/{row['model']}" if row["provider"] else (row["model"] or "—")
        by_model.append(Slice(label, label, figures, provider=row["provider"], model=row["model"]))
        providers.setdefault(row["provider"], Figures()).add(figures)
    by_provider = [
        Slice(name, name or "—", figures, provider=name) for name, figures in providers.items()
    ]

    key_rows = list(hours.values("api_key_id").annotate(**_sums(histogram=True)).order_by())
    names = dict(
        ApiKey.objects.filter(
            team_id=team_id, pk__in=[row["api_key_id"] for row in key_rows if row["api_key_id"]]
        ).values_list("pk", "name")
    )
    by_key = []
    for row in key_rows:
        key_id = row["api_key_id"]
        label = names.get(key_id, "") if key_id else ""
        if key_id and not label:
            label = f"{str(key_id)[:8]}…"
        by_key.append(
            Slice(
                str(key_id or ""),
                label or "—",
                Figures.from_row(row),
                api_key_id=str(key_id) if key_id else None,
            )
        )

    def by_cost(item: Slice) -> tuple[Decimal, int]:
        return (-item.figures.cost, -item.figures.requests)

    return Summary(
        range=date_range,
        currency=currency,
        totals=totals,
        series=series,
        by_model=sorted(by_model, key=by_cost),
        by_key=sorted(by_key, key=by_cost),
        by_provider=sorted(by_provider, key=by_cost),
    )


def parse_key(raw: str | None) -> uuid.UUID | None:
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None
