"""The request log's API pages by cursor: no COUNT over millions of rows, every row once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from accounts.models import Membership
from billing.ledger import ingest
from tests.conftest import client_for
from tests.metering.conftest import Metered, event


def test_pages_follow_a_cursor_and_hold_every_row_once(metered: Metered) -> None:
    acme = metered.cast.acme
    key = metered.keys[str(acme.pk)][0]
    now = timezone.now()
    # Five share one instant (the cursor must not skip or repeat rows that tie).
    times = [now - timedelta(minutes=n) for n in range(7)] + [now - timedelta(minutes=9)] * 5
    events = [event(acme.pk, key, at) for at in times]
    ingest(events)
    ingest([event(metered.cast.globex.pk, None, now)])  # another team's: never listed
    browser = client_for(Membership.objects.filter(team=acme).first().user)  # type: ignore[union-attr]

    seen: list[str] = []
    url: Any = f"/api/teams/{acme.pk}/requests/?limit=3"
    pages = 0
    while url:
        page = browser.get(url)
        assert page.status_code == 200, page.content
        body = page.json()
        assert "count" not in body  # nothing counts the team's rows
        assert len(body["results"]) <= 3
        seen += [row["request_id"] for row in body["results"]]
        url = body["next"]
        pages += 1
    assert pages == 4
    newest_first = sorted(events, key=lambda e: e.created_at, reverse=True)
    assert sorted(seen) == sorted(e.request_id for e in events)  # each once, only Acme's
    assert seen[:7] == [e.request_id for e in newest_first[:7]]


def test_a_bad_cursor_or_page_size_is_a_clear_error(metered: Metered) -> None:
    acme = metered.cast.acme
    browser = client_for(Membership.objects.filter(team=acme).first().user)  # type: ignore[union-attr]
    url = f"/api/teams/{acme.pk}/requests/"
    for limit in ("0", "1001", "-1", "x", str(2**63)):
        refused = browser.get(url, {"limit": limit})
        assert refused.status_code == 400, (limit, refused.content)
        assert "limit" in refused.json()["error"]["fields"]
    garbled = browser.get(url, {"cursor": "not-a-cursor"})
    assert garbled.status_code == 404
    assert garbled.json()["error"]["message"]
