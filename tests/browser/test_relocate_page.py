"""The relocation page in a browser: what is not ticked cannot be edited, and every
choice shows its whole label."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.site import Site, page_url, populate, session_cookie
from tests.conftest import Cast

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# For each select of the relocation table: its label's width and the room it has.
LABELS_THAT_DO_NOT_FIT = """() => {
  const context = document.createElement("canvas").getContext("2d");
  const cut = [];
  for (const select of document.querySelectorAll("[data-test=relocate-table] select")) {
    const style = getComputedStyle(select);
    context.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const label = select.options[select.selectedIndex].text;
    const room = select.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    if (context.measureText(label).width > room + 0.5) cut.push(`${select.name}: ${label}`);
  }
  return cut;
}"""


@pytest.fixture
def site(cast: Cast) -> Site:
    return populate(cast)


def open_page(page_factory: Any, live_server: Any, site: Site, width: int = 1280) -> Any:
    page = page_factory()
    page.set_viewport_size({"width": width, "height": 900})
    page.context.add_cookies([session_cookie(site.cast.alice, live_server.url)])
    page.goto(page_url("route_relocate", site))
    page.wait_for_load_state("networkidle")
    return page


def choices(page: Any, alias: str) -> list[bool]:
    """Whether each of the row's three selects is enabled."""
    return list(
        page.locator(f"[data-relocate-row][data-alias='{alias}'] select").evaluate_all(
            "selects => selects.map(s => !s.disabled)"
        )
    )


def test_rows_that_are_not_ticked_cannot_be_edited(
    site: Site, page_factory: Any, live_server: Any
) -> None:
    page = open_page(page_factory, live_server, site)
    assert choices(page, "gpt-4o") == [True, True, True]  # has an alias: ticked
    assert choices(page, "gpt-4.1") == [False, False, False]
    assert choices(page, "text-embedding-3-large") == [False, False, False]

    tick = page.locator("[data-relocate-row][data-alias='gpt-4.1'] input[type=checkbox]")
    tick.check()
    assert choices(page, "gpt-4.1") == [True, True, True]
    tick.uncheck()
    assert choices(page, "gpt-4.1") == [False, False, False]

    # A row for a name of one's own opens when a name is typed.
    custom = page.locator("[data-relocate-row][data-alias='']").first
    assert custom.locator("select").evaluate_all("s => s.map(x => x.disabled)") == [True] * 3
    custom.locator("input[type=text]").fill("gpt-3.5-turbo")
    assert custom.locator("select").evaluate_all("s => s.map(x => x.disabled)") == [False] * 3
    custom.locator("input[type=text]").fill("")
    assert custom.locator("select").evaluate_all("s => s.map(x => x.disabled)") == [True] * 3

    # The new key's name, only while a new key is wanted (the team has keys: off).
    key_name = page.locator("[name=key_name]")
    assert page.locator("[name=issue_key]").is_checked() is False
    assert key_name.is_disabled()
    page.check("[name=issue_key]")
    assert key_name.is_enabled()
    page.uncheck("[name=issue_key]")
    assert key_name.is_disabled()


def test_a_form_shown_again_keeps_the_choices_of_rows_not_ticked(
    site: Site, page_factory: Any, live_server: Any
) -> None:
    page = open_page(page_factory, live_server, site)
    suggested = page.locator("[data-relocate-row][data-alias='gpt-4.1'] select[name$=-primary]")
    assert suggested.is_disabled()
    before = suggested.input_value()
    assert before

    # Tick gpt-5 without a primary: the form comes back with an error.
    page.check("[data-relocate-row][data-alias='gpt-5'] input[type=checkbox]")
    page.select_option("[data-relocate-row][data-alias='gpt-5'] select[name$=-primary]", "")
    with page.expect_navigation():
        page.click("[data-test=relocate-submit]")
    assert page.locator("[data-relocate-row][data-alias='gpt-5'] .errorlist").is_visible()
    assert suggested.input_value() == before
    assert suggested.is_disabled()
    assert choices(page, "gpt-5") == [True, True, True]


@pytest.mark.parametrize("width", (1280, 390))
def test_every_choice_shows_its_whole_label(
    site: Site, page_factory: Any, live_server: Any, width: int
) -> None:
    page = open_page(page_factory, live_server, site, width)
    embedding = page.locator("[data-relocate-row][data-alias='text-embedding-3-large'] select")
    assert "text-embedding" in embedding.first.locator("option:checked").inner_text()
    cut = page.evaluate(LABELS_THAT_DO_NOT_FIT)
    assert not cut, cut
    # Open every row so that the check also covers the enabled look.
    for box in page.locator("[data-relocate-row] input[type=checkbox]").all():
        box.check()
    assert not page.evaluate(LABELS_THAT_DO_NOT_FIT)
