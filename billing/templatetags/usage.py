"""Formatting for the usage pages: rates, latencies and big counts."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.translation import gettext as _

register = template.Library()


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
    return _("%(value)s s") % {"value": f"{ms / 1000:.2f}"}


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
