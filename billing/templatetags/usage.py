"""Formatting for the usage pages: rates, latencies and big counts."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.translation import gettext as _

from billing.dashboard import LatencyRange

register = template.Library()

EN_DASH = "\u2013"  # between the bounds of a range


@register.filter
def percent(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    value = ratio * 100
    return f"{value:.1f}%" if value < 10 else f"{value:.0f}%"


@register.filter
def latency(ms: float | None) -> str:
    if ms is None:
        return "—"
    if ms < 1000:
        return _("%(value)s ms") % {"value": f"{ms:.0f}"}
    return _("%(value)s s") % {"value": f"{ms / 1000:.2f}".rstrip("0").rstrip(".")}


def _bound(ms: float, unit: str) -> str:
    value = ms / 1000 if unit == "s" else ms
    return f"{value:.1f}".removesuffix(".0")


@register.filter
def latency_range(bucket: LatencyRange | None) -> str:
    """A percentile as the histogram bucket it lies in: "under 25 ms", "100-250 ms",
    "1-2 s", "over 120 s" (with an en dash between the bounds)."""
    if bucket is None:
        return "—"
    if bucket.upper is None:
        return _("over %(latency)s") % {"latency": latency(bucket.lower)}
    if bucket.lower <= 0:
        return _("under %(latency)s") % {"latency": latency(bucket.upper)}
    if bucket.upper <= 1000 or bucket.lower >= 1000:
        unit = "ms" if bucket.upper <= 1000 else "s"
        span = f"{_bound(bucket.lower, unit)}{EN_DASH}{_bound(bucket.upper, unit)}"
        if unit == "ms":
            return _("%(value)s ms") % {"value": span}
        return _("%(value)s s") % {"value": span}
    return f"{latency(bucket.lower)}{EN_DASH}{latency(bucket.upper)}"


@register.filter
def count(value: int | None) -> str:
    """Whole numbers with separators; millions and more shortened."""
    if value is None:
        return "—"
    if abs(value) >= 10_000_000:
        return _("%(value)sM") % {"value": f"{value / 1_000_000:.1f}"}
    return str(intcomma(value))


@register.filter
def last_day(end: datetime | None) -> date | None:
    """The last day a period covers, given its (exclusive) end."""
    return None if end is None else (end - timedelta(microseconds=1)).date()
