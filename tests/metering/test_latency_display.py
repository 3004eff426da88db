"""The usage page shows what the latency histogram can honestly say.

Rollups keep counts per latency bucket (billing.models.LATENCY_BUCKETS_MS), not each
request's time. Interpolating a percentile inside a bucket printed "12 ms / 24 ms" on
every row of a fast team whatever its real latencies (all under 25 ms); the page shows
the bucket a percentile falls in instead, and the exact mean.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import override

from billing.dashboard import LatencyRange, percentile_range
from billing.ledger import ingest
from billing.models import LATENCY_BUCKETS_MS
from billing.rollups import rollup
from billing.templatetags.usage import EN_DASH, latency_range
from tests.conftest import client_for
from tests.metering.conftest import Metered, event


def histogram(**counts: int) -> list[int]:
    """A histogram with ``b<index>=count`` buckets filled."""
    bins = [0] * (len(LATENCY_BUCKETS_MS) + 1)
    for name, count in counts.items():
        bins[int(name[1:])] = count
    return bins


def test_a_percentile_is_the_bucket_it_falls_in() -> None:
    assert percentile_range([], 0.5) is None
    assert percentile_range(histogram(), 0.5) is None
    assert percentile_range(histogram(b0=40), 0.5) == LatencyRange(0, 25)
    assert percentile_range(histogram(b0=40), 0.95) == LatencyRange(0, 25)
    split = histogram(b3=12, b5=12)  # 100-250 ms and 500-1000 ms
    assert percentile_range(split, 0.5) == LatencyRange(100, 250)
    assert percentile_range(split, 0.95) == LatencyRange(500, 1000)
    slowest = len(LATENCY_BUCKETS_MS)
    assert percentile_range(histogram(**{f"b{slowest}": 3}), 0.5) == LatencyRange(120_000, None)


def test_a_bucket_reads_as_a_range() -> None:
    with override("en"):
        assert latency_range(None) == "—"
        assert latency_range(LatencyRange(0, 25)) == "under 25 ms"
        assert latency_range(LatencyRange(100, 250)) == f"100{EN_DASH}250 ms"
        assert latency_range(LatencyRange(500, 1000)) == f"500{EN_DASH}1000 ms"
        assert latency_range(LatencyRange(1000, 2000)) == f"1{EN_DASH}2 s"
        assert latency_range(LatencyRange(5000, 7500)) == f"5{EN_DASH}7.5 s"
        assert latency_range(LatencyRange(120_000, None)) == "over 120 s"
    with override("zh-hans"):
        assert latency_range(LatencyRange(0, 25)) == "低于 25 毫秒"


def fast_and_slow(metered: Metered) -> None:
    """Two keys: every request of one under 25 ms, the other's half 180 ms, half 900 ms."""
    team = metered.cast.acme.pk
    fast, slow = metered.keys[str(team)][:2]
    now = timezone.now() - timedelta(minutes=5)
    events = [event(team, fast, now, latency_ms=3.0 + i % 5) for i in range(20)]
    events += [event(team, slow, now, latency_ms=180.0) for _ in range(10)]
    events += [event(team, slow, now, latency_ms=900.0) for _ in range(10)]
    ingest(events)
    rollup()


def cells(page: str, test: str) -> list[str]:
    return [" ".join(c.split()) for c in re.findall(rf'data-test="{test}">([^<]*)<', page)]


def test_the_usage_page_shows_latency_ranges(metered: Metered) -> None:
    fast_and_slow(metered)
    url = reverse("team_usage", kwargs={"team_id": metered.cast.acme.pk})
    page = client_for(metered.cast.alice).get(url).content.decode()
    by_key = dict(
        zip(
            re.findall(r'data-test="by-key-row" data-key="[^"]*">\s*<td[^>]*>([^<]+)<', page),
            zip(cells(page, "by-key-p50"), cells(page, "by-key-p95"), strict=True),
            strict=True,
        )
    )
    assert by_key == {
        "backend": ("under 25 ms", "under 25 ms"),
        "batch": (f"100{EN_DASH}250 ms", f"500{EN_DASH}1000 ms"),
    }
    # Half of all requests are under 25 ms; the 95th percentile is a slow one.
    assert cells(page, "usage-p50") == ["under 25 ms"]
    assert cells(page, "usage-p95") == [f"500{EN_DASH}1000 ms"]
    mean = (sum(3.0 + i % 5 for i in range(20)) + 10 * 180 + 10 * 900) / 40
    assert f"mean {mean:.0f} ms" in page
    assert 'data-test="latency-note"' in page
