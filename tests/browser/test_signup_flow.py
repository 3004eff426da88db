"""A new user signs up, creates a team and invites a member, in a real browser."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail

from accounts.models import Invitation, Membership, User

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a sturdy passphrase 42"


# The path only: mail links are https (ACCOUNT_DEFAULT_HTTP_PROTOCOL), the live server is not.
CONFIRM_LINK = re.compile(r"https?://[^/\s]+(/accounts/confirm-email/[^/\s]+/)")


def fill_sign_up(page: Any, email: str) -> None:
    page.goto("/")
    page.click("[data-test=landing-signup]")
    page.fill("input[name=email]", email)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("[data-test=signup-submit]")
    page.wait_for_url(re.compile(r"/accounts/confirm-email/$"))


def sign_up(page: Any, email: str) -> None:
    """Sign up, then confirm the address from the mail, which signs in."""
    fill_sign_up(page, email)
    links = [
        link
        for message in mail.outbox
        if email in message.to
        for link in CONFIRM_LINK.findall(str(message.body))
    ]
    assert len(links) == 1, links
    page.goto(links[0])
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(r"/t/[0-9a-f-]+/$"))


def test_sign_up_create_team_and_invite(page_factory: Any, mailoutbox: list[Any]) -> None:
    page = page_factory()
    sign_up(page, "founder@example.com")
    founder = User.objects.get(email="founder@example.com")
    assert Membership.objects.get(user=founder).team.is_personal
    assert page.locator("[data-test=getting-started]").is_visible()

    page.click("[data-test=team-create-link]")
    page.fill("input[name=name]", "Rocket Lab")
    page.click("[data-test=team-create-submit]")
    page.wait_for_url(re.compile(r"/t/[0-9a-f-]+/$"))
    assert "Rocket Lab" in page.locator("[data-test=team-name]").inner_text()

    page.click("[data-test=nav-members]")
    page.fill("[data-test=invite-form] input[name=email]", "teammate@example.com")
    page.select_option("[data-test=invite-role]", "admin")
    page.click("[data-test=invite-submit]")
    link = page.locator("[data-test=invite-link]").inner_text().strip()
    invitation = Invitation.objects.get(email="teammate@example.com")
    assert invitation.team.name == "Rocket Lab" and invitation.role == "admin"
    assert any(link in mail.body for mail in mailoutbox if "teammate@example.com" in mail.to)

    # The teammate signs up and accepts in a second browser.
    teammate = page_factory()
    sign_up(teammate, "teammate@example.com")
    teammate.goto(link)
    teammate.click("[data-test=invitation-accept]")
    teammate.wait_for_url(re.compile(r"/t/[0-9a-f-]+/$"))
    assert (
        Membership.objects.get(user__email="teammate@example.com", team=invitation.team).role
        == "admin"
    )


def test_pages_speak_simplified_chinese(page_factory: Any) -> None:
    page = page_factory(locale="zh-CN")
    page.goto("/accounts/signup/")
    assert "注册" in page.content()
    sign_up(page, "zh@example.com")
    assert "成员" in page.locator("[data-test=nav-members]").inner_text()
    page.click("[data-test=user-menu-toggle]")
    with page.expect_navigation():
        page.select_option("[data-test=language-select]", "en")
    assert "Members" in page.locator("[data-test=nav-members]").inner_text()


def test_a_taken_address_gets_the_same_answer_as_a_new_one(page_factory: Any) -> None:
    User.objects.create_user("taken@example.com", PASSWORD)
    answers = []
    for email in ("taken@example.com", "new@example.com"):
        page = page_factory()
        fill_sign_up(page, email)
        answers.append(page.locator("main").inner_text().replace(email, "<email>"))
    assert answers[0] == answers[1]
    assert "already" not in answers[0]
    assert User.objects.filter(email="taken@example.com").count() == 1
    # The owner of the taken address is told by mail instead.
    assert any("already" in m.body for m in mail.outbox if "taken@example.com" in m.to)
