"""The API docs page in a real browser: Swagger UI renders the schema from
local assets, and its Authorize dialog takes a personal access token that
then authenticates "Try it out" (the schema offered only the session cookie)."""

from __future__ import annotations

from typing import Any

import pytest

from accounts import actions
from accounts.models import User
from tests.api.conftest import token_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_docs_page_authorizes_with_an_access_token(page_factory: Any) -> None:
    user = User.objects.create_user("script@example.com", "a sturdy passphrase 42")
    actions.create_team(user, name="Scripted")
    token = token_for(user)

    page = page_factory()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    page.on(
        "response",
        lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None,
    )
    page.goto("/api/docs/")
    assert "Baton management API" in page.locator(".swagger-ui .info .title").inner_text()

    page.click(".swagger-ui .btn.authorize")
    dialog = page.locator(".swagger-ui .auth-container", has_text="personalAccessToken")
    assert "Bearer" in dialog.inner_text()
    dialog.locator("input").fill(token)
    dialog.locator("button.authorize").click()
    page.click(".swagger-ui .btn-done")

    operation = page.locator("#operations-teams-teams_list")
    operation.locator(".opblock-summary").click()
    operation.locator(".try-out__btn").click()
    operation.locator(".execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status").first
    assert status.inner_text().strip() == "200"
    assert "Scripted" in operation.locator(".live-responses-table .microlight").first.inner_text()
    assert problems == []
