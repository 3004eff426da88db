"""A request streamed through the relay with the ``openai`` SDK shows up on the
usage dashboard and the billing page, in headless Chromium, once the
metering tasks have run."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from billing.tasks import consume_usage_task, rollup_usage_task, update_billing_records_task
from tests.browser.conftest import browser, page_factory  # noqa: F401  (fixtures)
from tests.quotas.conftest import MESSAGES, Quota

pytestmark = pytest.mark.browser


def log_in(page: Any, live_server: Any, quota: Quota) -> None:
    client = Client()
    client.force_login(quota.owner)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
    )


def test_a_streamed_request_shows_up_on_the_dashboard(
    quota: Quota,
    page_factory: Any,  # noqa: F811
    live_server: Any,
) -> None:
    with quota.serve() as base:
        stream = quota.client(base).chat.completions.create(
            model="gpt-4o", messages=MESSAGES, max_tokens=10, stream=True
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text

    # What beat runs: the stream into the ledger, rollups, billing records.
    assert consume_usage_task()["written"] == 1  # type: ignore[index]
    rollup_usage_task()
    update_billing_records_task()

    page = page_factory()
    log_in(page, live_server, quota)
    page.goto(f"/t/{quota.team.pk}/usage/")
    assert page.locator("[data-test=usage-requests]").inner_text() == "1"
    assert page.locator("[data-test=usage-completion-tokens]").inner_text() == "10"
    assert page.locator("[data-test=usage-cost]").inner_text().startswith("0.01")
    assert page.locator("[data-test=usage-error-rate]").inner_text() == "0.0%"
    assert page.locator("[data-test=by-model-row]").inner_text().startswith("openai/demo-chat")
    drawn = page.evaluate(
        "() => ['chart-requests', 'chart-tokens', 'chart-cost'].map("
        "id => !!(window.Chart && Chart.getChart(document.getElementById(id))))"
    )
    assert drawn == [True, True, True]

    page.locator("[data-test=nav-billing]").click()
    assert page.locator("[data-test=billing-running-total]").inner_text().startswith("0.01")
    page.locator("[data-test=nav-usage]").click()
    page.locator("[data-test=usage-requests-link]").click()
    assert page.locator("[data-test=request-row]").count() == 1
