"""The team setting *Remember reasoning between turns*, on the settings page and in the team
API: owners and admins change it, every change is audited, and the page says what is kept,
for how long, encrypted, never logged. (That the running relay follows within a second:
tests/dialects/test_remember_setting.py.)"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse

from accounts.models import AuditEvent, Team
from tests.accounts.test_api import api
from tests.conftest import Cast, client_for


def url(cast: Cast) -> str:
    return reverse("team_settings", args=[cast.acme.pk])


def checkbox(html: str) -> set[str]:
    """The attributes of the setting's checkbox, as rendered (names, and name=value)."""
    tag = re.search(r'<input type="checkbox" name="remember_reasoning"([^>]*)>', html)
    assert tag is not None
    return set(tag.group(1).split())


def remembers(cast: Cast) -> bool:
    return Team.objects.get(pk=cast.acme.pk).remember_reasoning


def changes(cast: Cast) -> list[dict[str, Any]]:
    return [
        e.details["changes"]
        for e in AuditEvent.objects.filter(team=cast.acme, action="team.settings_changed").order_by(
            "created_at"
        )
    ]


def test_the_page_explains_and_an_admin_turns_it_off_and_on(cast: Cast, settings: Any) -> None:
    settings.BATON_TURN_MEMORY_SECONDS = 3600
    client = client_for(cast.adam)
    page = client.get(url(cast))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-test="team-reasoning-form"' in html
    help_text = html[html.index('data-test="team-reasoning-help"') :].split("</p>")[0]
    for words in ("for 1 hour", "encrypted with this team", "never logged"):
        assert words in help_text, words
    assert checkbox(html) == {"checked", 'id="id_remember_reasoning"'}  # on by default

    response = client.post(url(cast), {"section": "reasoning"})  # unticked
    assert response.status_code == 302 and response["Location"] == url(cast)
    assert remembers(cast) is False
    assert Team.objects.get(pk=cast.acme.pk).name == "Acme"  # the rename form was not posted
    assert "checked" not in checkbox(client.get(url(cast)).content.decode())

    client.post(url(cast), {"section": "reasoning"})  # the same again: nothing to audit
    client.post(url(cast), {"section": "reasoning", "remember_reasoning": "on"})
    assert remembers(cast) is True
    assert changes(cast) == [
        {"remember_reasoning": {"old": True, "new": False}},
        {"remember_reasoning": {"old": False, "new": True}},
    ]
    event = AuditEvent.objects.filter(action="team.settings_changed").latest("created_at")
    assert event.actor == cast.adam


def test_the_duration_follows_the_setting(cast: Cast, settings: Any) -> None:
    settings.BATON_TURN_MEMORY_SECONDS = 900
    html = client_for(cast.alice).get(url(cast)).content.decode()
    assert "for 15 minutes" in html


def test_renaming_still_works_beside_it(cast: Cast) -> None:
    response = client_for(cast.alice).post(url(cast), {"name": "Acme Labs"})
    assert response.status_code == 302
    team = Team.objects.get(pk=cast.acme.pk)
    assert (team.name, team.remember_reasoning) == ("Acme Labs", True)


@pytest.mark.parametrize("who", ["bob", "vera"])
def test_members_and_viewers_see_it_but_cannot_change_it(cast: Cast, who: str) -> None:
    client = client_for(getattr(cast, who))
    html = client.get(url(cast)).content.decode()
    assert {"checked", "disabled"} <= checkbox(html)
    assert 'data-test="team-reasoning-submit"' not in html
    assert client.post(url(cast), {"section": "reasoning"}).status_code == 403
    assert remembers(cast) is True
    assert not changes(cast)


def test_outsiders_get_404(cast: Cast) -> None:
    client = client_for(cast.charlie)
    assert client.post(url(cast), {"section": "reasoning"}).status_code == 404
    assert remembers(cast) is True


def test_the_team_api_reads_and_changes_it(cast: Cast) -> None:
    team_url = f"/api/teams/{cast.acme.pk}/"
    assert api(cast.vera).get(team_url).json()["remember_reasoning"] is True

    refused = api(cast.bob).patch(
        team_url, {"remember_reasoning": False}, content_type="application/json"
    )
    assert refused.status_code == 403
    assert remembers(cast) is True

    changed = api(cast.adam).patch(
        team_url, {"remember_reasoning": False}, content_type="application/json"
    )
    assert changed.status_code == 200, changed.json()
    assert changed.json()["remember_reasoning"] is False
    assert remembers(cast) is False
    assert changes(cast) == [{"remember_reasoning": {"old": True, "new": False}}]

    bad = api(cast.adam).patch(
        team_url, {"remember_reasoning": "perhaps"}, content_type="application/json"
    )
    assert bad.status_code == 400
    assert "remember_reasoning" in bad.json()["error"]["fields"]

    created = api(cast.bob).post(
        "/api/teams/",
        {"name": "Forgetful", "remember_reasoning": False},
        content_type="application/json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["remember_reasoning"] is False
    assert Team.objects.get(pk=created.json()["id"]).remember_reasoning is False
