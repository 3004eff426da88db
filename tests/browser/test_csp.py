"""Every page of the site under its Content-Security-Policy, in headless Chromium.

A team owner with data in every corner (``tests/browser/site.py``) opens every page the
URL configuration has, the signed-out pages signed out, and the test fails on any CSP
violation (reported to a listener the page cannot skip, added before any script of the
page runs) and on any console error or uncaught exception. The charts must draw, Swagger
UI must send a request, and the pages that only a form's answer shows (a new API key, a
new access token, the relocation's result) are reached through their forms.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from tests.browser.site import (
    NOT_PAGES,
    PAGES,
    Site,
    is_management_api,
    page_url,
    populate,
    session_cookie,
    url_names,
)
from tests.conftest import Cast

# The directives the production policy must contain (config/settings.py).
POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

# Runs before any script of every document: records what the policy refused.
WATCH_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__cspViolations.push(
    event.violatedDirective + " blocked " + (event.blockedURI || "inline") +
    " at " + event.sourceFile + ":" + event.lineNumber + " " + (event.sample || ""));
});
"""


def parse_policy(header: str) -> dict[str, str]:
    policy = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition(" ")
        if name:
            policy[name] = " ".join(value.split())
    return policy


@pytest.mark.django_db
def test_pages_send_the_policy(cast: Cast) -> None:
    """Without a browser: the header is there, with every directive, on signed-in pages,
    the API docs, an error page and a signed-out page."""
    owner = Client()
    owner.force_login(cast.alice)
    for client, url, status in (
        (owner, f"/t/{cast.acme.pk}/", 200),
        (owner, "/api/docs/", 200),
        (owner, f"/t/{uuid.uuid4()}/", 404),
        (Client(), "/", 200),
        (Client(), "/accounts/login/", 200),
    ):
        response = client.get(url)
        assert response.status_code == status, url
        policy = parse_policy(response.headers.get("Content-Security-Policy", ""))
        assert policy == POLICY, f"{url}: {policy}"


def test_the_page_list_covers_the_url_configuration() -> None:
    """A new URL fails here until it is walked as a page or says why it is not one."""
    names = dict(url_names())
    unlisted = [
        name
        for name, callback in names.items()
        if name not in PAGES
        and name not in NOT_PAGES
        and not name.startswith("admin:")  # Django's admin: its login page is walked
        and not is_management_api(callback)
    ]
    assert not unlisted, f"add to PAGES or NOT_PAGES in tests/browser/site.py: {unlisted}"
    stale = [name for name in (*PAGES, *NOT_PAGES) if name not in names]
    assert not stale, f"no such URL any more: {stale}"
    assert len(PAGES) >= 40  # a guard against a walk that silently finds little


class Watcher:
    """Collects what a page complained about."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.problems: list[str] = []
        page.add_init_script(WATCH_VIOLATIONS)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))

    def _console(self, message: Any) -> None:
        if message.type in ("error", "assert"):
            self.problems.append(f"console {message.type}: {message.text}")

    def visit(self, url: str, *, status: int = 200) -> Any:
        response = self.page.goto(url)
        assert response is not None, url
        self.page.wait_for_load_state("networkidle")
        if response.status != status:
            self.problems.append(f"{url} answered {response.status}")
        if "content-security-policy" not in response.headers:
            self.problems.append(f"{url} has no Content-Security-Policy header")
        self.check(url)
        return response

    def check(self, where: str) -> None:
        violations = self.page.evaluate("window.__cspViolations || []")
        self.problems += [f"{where}: CSP {v}" for v in violations]

    def take(self) -> list[str]:
        problems, self.problems = self.problems, []
        return problems


@pytest.fixture
def site(cast: Cast) -> Site:
    return populate(cast)


@pytest.fixture
def owner(page_factory: Any, live_server: Any, site: Site) -> Iterator[Watcher]:
    page = page_factory()
    page.context.add_cookies([session_cookie(site.cast.alice, live_server.url)])
    yield Watcher(page)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_every_page_satisfies_the_policy(
    site: Site, owner: Watcher, page_factory: Any, live_server: Any
) -> None:
    visitor = Watcher(page_factory())
    visited = 0
    for name, spec in PAGES.items():
        watcher = visitor if spec.get("signed_out") else owner
        watcher.visit(page_url(name, site))
        visited += 1
    assert visited == len(PAGES)

    # An error page, with the console's report of the 404 itself allowed.
    owner.visit(f"/t/{uuid.uuid4()}/", status=404)
    expected = [p for p in owner.problems if "404 (Not Found)" in p]
    assert len(expected) == 1, owner.problems
    owner.problems.remove(expected[0])

    problems = visitor.take() + owner.take()
    assert not problems, "\n".join(problems)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_scripts_still_work_under_the_policy(site: Site, owner: Watcher) -> None:
    page = owner.page
    team = site.team_id

    # The usage charts (vendored Chart.js) draw.
    owner.visit(f"/t/{team}/usage/")
    drawn = page.evaluate(
        "() => ['chart-requests', 'chart-tokens', 'chart-cost'].map("
        "id => !!(window.Chart && Chart.getChart(document.getElementById(id))))"
    )
    assert drawn == [True, True, True]

    # Swagger UI loads the schema and sends a request with the session.
    owner.visit("/api/docs/")
    assert page.locator("[data-test=nav-overview]").is_visible()  # the site's navigation
    page.locator("#operations-teams-teams_list").click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    status = page.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "200"
    assert (
        "Acme"
        in page.locator(".live-responses-table tbody .response-col_description").first.inner_text()
    )
    owner.check("/api/docs/ after a request")

    # The provider key form shows the fields of the chosen provider.
    owner.visit(f"/t/{team}/providers/new/")
    region = page.locator("[data-field=region]")
    page.select_option("[name=provider]", "anthropic")
    assert not region.is_visible()
    page.select_option("[name=provider]", "qwen")
    assert region.is_visible()
    # A custom server's dialect URLs: only with a custom base URL.
    messages_url = page.locator("[data-field=messages_base_url]")
    assert not messages_url.is_visible()
    page.fill("[name=base_url]", "https://llm.example.com/v1")
    assert messages_url.is_visible()
    page.fill("[name=base_url]", "")
    assert not messages_url.is_visible()
    page.select_option("[name=provider]", "custom")  # always has a base URL
    assert messages_url.is_visible()

    # The alias form adds a target row.
    owner.visit(f"/t/{team}/models/new/")
    rows = page.locator("[data-test=target-row]")
    before = rows.count()
    page.click("[data-add-target]")
    assert rows.count() == before + 1

    # Pages shown only in answer to a form.
    owner.visit(f"/t/{team}/api-keys/new/")
    page.fill("input[name=name]", "CSP walk key")
    with page.expect_navigation():
        page.click("[data-test=api-key-submit]")
    assert page.locator("[data-test=api-key-issued]").is_visible()
    owner.check("the new API key page")

    owner.visit("/settings/tokens/")
    page.fill("input[name=name]", "CSP walk token")
    with page.expect_navigation():
        page.click("[data-test=token-create-submit]")
    assert page.locator("[data-test=token-issued]").is_visible()
    owner.check("the new token page")

    owner.visit(f"/t/{team}/models/relocate/")
    for alias in ("gpt-4.1", "claude-sonnet-5-5", "gpt-5.5"):
        page.check(f"[data-relocate-row][data-alias='{alias}'] input[type=checkbox]")
    with page.expect_navigation():
        page.click("[data-test=relocate-submit]")
    assert re.search(r"/models/relocate/", page.url)
    assert "gpt-4.1" in page.content()
    for snippet in ("python", "claude-code", "codex"):  # an application's lines and each agent's
        assert page.locator(f"[data-test=relocate-snippet-{snippet}]").is_visible()
    owner.check("the relocation result")

    problems = owner.take()
    assert not problems, "\n".join(problems)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_htmx_filters_the_audit_log_in_place(site: Site, owner: Watcher) -> None:
    """The audit filter swaps the results with htmx: no page load, the URL follows."""
    page = owner.page
    owner.visit(f"/t/{site.team_id}/audit/")
    all_rows = page.locator("[data-test=audit-row]").count()
    page.evaluate("window.__samePage = true")
    with page.expect_request(lambda request: "action=route." in request.url) as request:
        page.fill("[data-test=audit-filter]", "route.")
    assert request.value.headers.get("hx-request") == "true"
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-test=audit-row]')]"
        ".every(row => row.dataset.action.startsWith('route.'))"
    )
    filtered = page.locator("[data-test=audit-row]").count()
    assert 0 < filtered < all_rows
    assert page.evaluate("window.__samePage") is True  # swapped, not reloaded
    assert "action=route." in page.url  # hx-push-url
    problems = owner.take()
    assert not problems, "\n".join(problems)
