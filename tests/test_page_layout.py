"""The page layout and its partials: a new page is a short template.

The minimal page of templates/README.md is rendered as it stands there, so the README stays
true; the HTML it gives is the markup the stylesheet and the other tests expect of a page
head, a card and a table.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.template import TemplateSyntaxError, engines
from django.test import RequestFactory
from django.test.html import Element, parse_html

from accounts.models import Membership, User
from tests.conftest import Cast

README = Path(settings.BASE_DIR) / "templates" / "README.md"


def readme_page() -> str:
    text = README.read_text()
    match = re.search(r"## A new page\n.*?```django\n(.*?)```", text, re.S)
    assert match, "templates/README.md has no ```django block under '## A new page'"
    return match.group(1)


def render(source: str, user: User, **context: Any) -> str:
    request = RequestFactory().get("/")
    request.user = user
    request.session = {}  # type: ignore[assignment]
    return engines["django"].from_string(source).render(context, request)


def count(html: str, fragment: str) -> int:
    return parse_html(html).count(parse_html(fragment))


def find(node: Any, tag: str, **attrs: str) -> list[Element]:
    """Elements of a parsed document with this tag and these attribute values."""
    found = []
    if isinstance(node, Element):
        if node.name == tag and all(dict(node.attributes).get(k) == v for k, v in attrs.items()):
            found.append(node)
        for child in node.children:
            found.extend(find(child, tag, **attrs))
    return found


def text_of(node: Any) -> str:
    if isinstance(node, str):
        return node
    return " ".join(text_of(child) for child in node.children)


@pytest.mark.django_db
def test_the_readme_page_is_short_and_renders_a_head_a_card_and_a_table(cast: Cast) -> None:
    source = readme_page()
    assert len(source.strip().splitlines()) <= 20
    credentials = [
        {"name": "Acme OpenAI", "provider": {"name": "OpenAI"}},
        {"name": "Acme Qwen", "provider": {"name": "Alibaba Qwen"}},
    ]
    html = render(source, cast.alice, team=cast.acme, credentials=credentials)
    doc = parse_html(html)

    assert "<title>Provider keys · Acme · Baton</title>" in html
    [crumb] = find(doc, "span", **{"data-test": "page-title"})
    assert text_of(crumb).strip() == "Provider keys"
    head = f"""
      <div class="page-head">
        <div class="page-head__text">
          <h1 class="page-title">Provider keys</h1>
          <p class="page-sub">Your team's keys for upstream providers.</p>
        </div>
        <div class="page-head__actions">
          <a class="btn btn--primary" href="/t/{cast.acme.pk}/providers/new/" data-test="credential-add">Add provider key</a>
        </div>
      </div>"""
    assert count(html, head) == 1
    card = """
      <section class="card" aria-labelledby="credentials-title">
        <header class="card__head">
          <h2 class="card__title" id="credentials-title">Provider keys <span class="count">2</span></h2>
        </header>
        <div class="table-wrap">
          <table class="table table--stack" data-test="credentials-table">
            <thead><tr><th scope="col">Name</th><th scope="col">Provider</th></tr></thead>
            <tbody>
              <tr data-test="credential-row"><td class="strong">Acme OpenAI</td><td>OpenAI</td></tr>
              <tr data-test="credential-row"><td class="strong">Acme Qwen</td><td>Alibaba Qwen</td></tr>
            </tbody>
          </table>
        </div>
      </section>"""
    assert count(html, card) == 1
    # In the console's layout, inside its <main>.
    [main] = find(doc, "main", id="main")
    assert parse_html(card) in main
    assert find(doc, "aside", **{"class": "sidebar"})


@pytest.mark.django_db
def test_a_head_without_buttons_has_no_button_row_and_says_more_in_its_heading(
    cast: Cast,
) -> None:
    source = """{% extends "layouts/page.html" %}{% load ui %}
{% block title %}Limits · Key{% endblock %}
{% block heading_attrs %} data-test="key-name"{% endblock %}
{% block heading %}Limits of “Key”{% endblock %}
{% block subtitle %}Set <code>these</code>.{% endblock %}
{% block actions %}{% if can_edit %}<a href="/edit/">Edit</a>{% endif %}{% endblock %}
{% block page_body %}
{% capture as sub %}One <a href="/more/">link</a>{% endcapture %}
{% card id="c-title" title="Current use" sub=sub class="card--success" element="aside" test="use" %}
  {% actions %}<a class="btn" href="/details/">Details</a>{% endactions %}
  <div class="card__body">Body</div>
{% endcard %}
{% card label="Flat" %}<div class="card__body">No head</div>{% endcard %}
{% endblock %}"""
    html = render(source, cast.alice, team=cast.acme, can_edit=False)
    assert "<title>Limits · Key · Acme · Baton</title>" in html
    assert count(html, '<h1 class="page-title" data-test="key-name">Limits of “Key”</h1>') == 1
    assert count(html, '<p class="page-sub">Set <code>these</code>.</p>') == 1
    assert "page-head__actions" not in html
    card = """
      <aside class="card card--success" aria-labelledby="c-title" data-test="use">
        <header class="card__head">
          <div>
            <h2 class="card__title" id="c-title">Current use</h2>
            <p class="card__sub">One <a href="/more/">link</a></p>
          </div>
          <a class="btn" href="/details/">Details</a>
        </header>
        <div class="card__body">Body</div>
      </aside>"""
    assert count(html, card) == 1
    flat = '<section class="card" aria-label="Flat"><div class="card__body">No head</div></section>'
    assert count(html, flat) == 1

    with_button = render(source, cast.alice, team=cast.acme, can_edit=True)
    assert (
        count(with_button, '<div class="page-head__actions"><a href="/edit/">Edit</a></div>') == 1
    )


@pytest.mark.django_db
def test_an_account_without_a_team_sees_the_page_in_the_sign_in_layout(cast: Cast) -> None:
    lonely = User.objects.create_user("lonely@example.com", "a long enough password")
    Membership.objects.filter(user=lonely).delete()
    html = render(readme_page(), lonely, team=cast.acme, credentials=[])
    doc = parse_html(html)
    assert find(doc, "div", **{"class": "auth__card"})
    assert not find(doc, "aside", **{"class": "sidebar"})
    assert count(html, '<h1 class="page-title">Provider keys</h1>') == 1


@pytest.mark.parametrize(
    "source",
    [
        '{% load ui %}{% card "x" %}{% endcard %}',
        "{% load ui %}{% card %}body",
        "{% load ui %}{% table %}<th>A</th>{% endtable %}",
        "{% load ui %}{% capture sub %}x{% endcapture %}",
    ],
)
def test_a_misused_tag_is_a_template_error(source: str) -> None:
    with pytest.raises(TemplateSyntaxError):
        engines["django"].from_string(source)
