"""Nothing runs past its card, on a laptop (1280 px) and on a phone (390 px).

For the pages people reported (the audit log with long details, Limits with a long key
name, the access-token page's curl line, the API docs in the site's layout) every card,
table wrapper, code block and copy box must be at least as wide as its content; on every
page of the site the document itself must not scroll sideways.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.site import LONG_KEY_NAME, PAGES, Site, page_url, populate, session_cookie
from tests.conftest import Cast

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1280, 390)
REPORTED = ("team_audit", "team_limits", "key_limits", "access_tokens", "api-docs")

# Elements wider inside than outside: scrolled or clipped content.
OVERFLOWING = """() => {
  const found = [];
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth) {
    found.push(`the page is ${root.scrollWidth}px wide in a ${root.clientWidth}px window`);
  }
  for (const el of document.querySelectorAll(SELECTOR)) {
    if (el.scrollWidth > el.clientWidth + 1) {
      const what = (el.dataset.test || el.id || el.className || el.tagName).toString();
      found.push(`${what}: ${el.scrollWidth}px of content in ${el.clientWidth}px`);
    }
  }
  return found;
}"""
CARD_PARTS = ".card, .card .table-wrap, .card pre, .card .copy, .card .kvs, #swagger-ui"
PAGE_ONLY = ":not(*)"


def overflowing(page: Any, selector: str) -> list[str]:
    return list(page.evaluate(OVERFLOWING.replace("SELECTOR", repr(selector))))


@pytest.fixture
def site(cast: Cast) -> Site:
    return populate(cast)


def signed_in(page_factory: Any, live_server: Any, site: Site, width: int) -> Any:
    page = page_factory()
    page.set_viewport_size({"width": width, "height": 900})
    page.context.add_cookies([session_cookie(site.cast.alice, live_server.url)])
    return page


@pytest.mark.parametrize("width", WIDTHS)
def test_reported_pages_stay_inside_their_cards(
    site: Site, page_factory: Any, live_server: Any, width: int
) -> None:
    page = signed_in(page_factory, live_server, site, width)
    problems = []
    for name in REPORTED:
        page.goto(page_url(name, site))
        page.wait_for_load_state("networkidle")
        if name == "api-docs":
            page.locator("#swagger-ui .opblock").first.wait_for()
        problems += [f"{name} at {width}px: {p}" for p in overflowing(page, CARD_PARTS)]
    assert not problems, "\n".join(problems)


def test_audit_details_are_inside_the_card(site: Site, page_factory: Any, live_server: Any) -> None:
    """The details column shows from 1080 px up (narrower screens hide it)."""
    page = signed_in(page_factory, live_server, site, 1280)
    page.goto(page_url("team_audit", site))
    card = page.locator("[aria-labelledby=audit-title]").bounding_box()
    details = page.locator("[data-test=audit-details]")
    assert details.count() >= 5
    for index in range(details.count()):
        box = details.nth(index).bounding_box()
        assert box["x"] + box["width"] <= card["x"] + card["width"] + 0.5


@pytest.mark.parametrize("width", WIDTHS)
def test_a_key_name_and_its_mask_are_apart(
    site: Site, page_factory: Any, live_server: Any, width: int
) -> None:
    page = signed_in(page_factory, live_server, site, width)
    page.goto(page_url("team_limits", site))
    row = page.locator(f"[data-test=key-limits-row][data-name='{LONG_KEY_NAME}']")
    name = row.locator("[data-test=key-limits-name]").bounding_box()
    mask = row.locator("[data-test=key-limits-mask]").bounding_box()
    same_line = mask["y"] < name["y"] + name["height"] and name["y"] < mask["y"] + mask["height"]
    if same_line:
        assert mask["x"] >= name["x"] + name["width"] + 6, (name, mask)
    else:
        assert mask["y"] >= name["y"] + name["height"] - 0.5, (name, mask)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_api_docs_have_the_site_header_and_a_way_back(
    site: Site, page_factory: Any, live_server: Any, width: int
) -> None:
    page = signed_in(page_factory, live_server, site, width)
    page.goto("/api/docs/")
    page.locator("#swagger-ui .opblock").first.wait_for()
    assert page.locator("[data-test=user-menu-toggle]").is_visible()
    page.click("[data-test=nav-overview]")
    page.wait_for_url(f"**/t/{site.cast.alice.memberships.get(team__is_personal=True).team_id}/")

    anonymous = page_factory()
    anonymous.set_viewport_size({"width": width, "height": 900})
    anonymous.goto("/api/docs/")
    anonymous.locator("#swagger-ui .opblock").first.wait_for()
    anonymous.click(".site-header__brand")
    anonymous.wait_for_url(live_server.url + "/")


def test_no_page_scrolls_sideways_on_a_phone(
    site: Site, page_factory: Any, live_server: Any
) -> None:
    page = signed_in(page_factory, live_server, site, 390)
    visitor = page_factory()
    visitor.set_viewport_size({"width": 390, "height": 900})
    problems = []
    for name, spec in PAGES.items():
        current = visitor if spec.get("signed_out") else page
        current.goto(page_url(name, site))
        current.wait_for_load_state("networkidle")
        problems += [f"{name}: {p}" for p in overflowing(current, PAGE_ONLY)]
    assert not problems, "\n".join(problems)
