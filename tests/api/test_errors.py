"""Every error under /api/ is JSON in the API's shape, with DEBUG off as in
production: unexpected exceptions in a view or before it, unknown URLs, and
requests Django itself refuses. Pages keep their HTML error pages."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.test import Client

from accounts.api.serializers import TeamSerializer
from tests.api.conftest import token_for
from tests.conftest import Cast

pytestmark = pytest.mark.usefixtures("_production_errors")


@pytest.fixture
def _production_errors(settings: Any) -> None:
    settings.DEBUG = False


def client(cast: Cast) -> Client:
    return Client(
        raise_request_exception=False,
        headers={"authorization": f"Bearer {token_for(cast.alice)}"},
    )


def assert_api_error(response: Any, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/json", response["Content-Type"]
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == kind and error["message"], error
    return error


class Boom(RuntimeError):
    pass


def _explode(*args: Any, **kwargs: Any) -> Any:
    raise Boom("secret internals: sk-should-not-leak")


def test_an_exception_in_a_view_is_a_json_500(
    cast: Cast, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(TeamSerializer, "to_representation", _explode)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client(cast).get("/api/teams/")
    error = assert_api_error(response, 500, "server_error")
    assert "sk-should-not-leak" not in response.content.decode()
    assert "fields" not in error
    # Logged once, with the traceback, as Django logs its own 500s.
    logged = [r for r in caplog.records if r.name == "django.request"]
    assert len(logged) == 1 and logged[0].exc_info and logged[0].exc_info[0] is Boom


def test_an_exception_in_a_write_is_a_json_500(cast: Cast, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("accounts.actions.create_team", _explode)
    response = client(cast).post("/api/teams/", {"name": "X"}, content_type="application/json")
    assert_api_error(response, 500, "server_error")


def test_the_test_client_still_sees_the_exception(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests keep their tracebacks: the handler signals the exception as Django does."""
    monkeypatch.setattr(TeamSerializer, "to_representation", _explode)
    strict = Client(headers={"authorization": f"Bearer {token_for(cast.alice)}"})
    with pytest.raises(Boom):
        strict.get("/api/teams/")


def test_an_exception_before_the_view_is_a_json_500(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.contrib.messages.middleware import MessageMiddleware

    monkeypatch.setattr(MessageMiddleware, "process_request", _explode)
    assert_api_error(client(cast).get("/api/teams/"), 500, "server_error")
    page = client(cast).get("/")
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    "path",
    ["/api/nope/", "/api/teams/not-a-uuid/", "/api/teams/00000000-0000-0000-0000-000000000000/x/"],
)
def test_unknown_api_urls_are_a_json_404(cast: Cast, path: str) -> None:
    assert_api_error(client(cast).get(path), 404, "not_found")


def test_unknown_pages_keep_the_html_404(cast: Cast) -> None:
    response = client(cast).get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_a_refused_host_is_a_json_400(cast: Cast) -> None:
    response = client(cast).get("/api/teams/", headers={"host": "evil.example"})
    assert_api_error(response, 400, "invalid_request")


def test_a_body_over_the_upload_limit_is_a_json_413(cast: Cast, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = client(cast).post(
        "/api/teams/", {"name": "x" * 2000}, content_type="application/json"
    )
    assert_api_error(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,  # past Python's recursion limit: was a 500
        '{"name": ' + "[" * 33 + "]" * 33 + "}",
    ],
)
def test_json_nested_too_deeply_is_a_400(cast: Cast, body: str) -> None:
    response = client(cast).post("/api/teams/", body, content_type="application/json")
    error = assert_api_error(response, 400, "invalid_request")
    assert "nested" in error["message"]


def test_json_nested_as_deep_as_allowed_is_parsed(cast: Cast) -> None:
    body = '{"name": "Deep", "x": ' + "[" * 30 + "]" * 30 + "}"
    response = client(cast).post("/api/teams/", body, content_type="application/json")
    assert response.status_code == 201
