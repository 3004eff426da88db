"""The routes management API: /api/teams/<team_id>/routes/."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from relay.models import ModelRoute, RouteTarget
from tests.conftest import Cast, client_for
from tests.routes.conftest import Keys, json_post, targets_of


def list_url(cast: Cast) -> str:
    return reverse("route-list", args=[cast.acme.pk])


def detail_url(cast: Cast, pk: Any) -> str:
    return reverse("route-detail", args=[cast.acme.pk, pk])


def target(credential: Any, model: str, priority: int = 0, weight: int = 1) -> dict[str, Any]:
    return {
        "credential": str(getattr(credential, "pk", credential)),
        "upstream_model": model,
        "priority": priority,
        "weight": weight,
    }


def body(keys: Keys, **overrides: Any) -> dict[str, Any]:
    return {
        "alias": "gpt-4o",
        "description": "chat",
        "targets": [target(keys.qwen, "qwen-plus"), target(keys.zhipu, "glm-4.6", 1)],
        **overrides,
    }


def test_create_list_retrieve(cast: Cast, keys: Keys) -> None:
    response = json_post(client_for(cast.adam), list_url(cast), body(keys))
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["alias"] == "gpt-4o" and data["description"] == "chat"
    assert [
        (t["credential_name"], t["provider"], t["upstream_model"], t["priority"])
        for t in data["targets"]
    ] == [
        ("Qwen", "qwen", "qwen-plus", 0),
        ("GLM", "zhipu", "glm-4.6", 1),
    ]
    assert data["targets"][0]["credential"] == str(keys.qwen.pk)
    assert data["targets"][0]["provider_name"] == "Alibaba Qwen (DashScope)"
    route = ModelRoute.objects.get(pk=data["id"])
    assert route.team == cast.acme
    assert (
        AuditEvent.objects.filter(team=cast.acme, action="route.created", actor=cast.adam).count()
        == 1
    )

    viewer = client_for(cast.vera)
    listed = viewer.get(list_url(cast))
    assert listed.status_code == 200
    assert [r["alias"] for r in listed.json()["results"]] == ["gpt-4o"]
    one = viewer.get(detail_url(cast, route.pk))
    assert one.status_code == 200 and one.json()["targets"] == data["targets"]


def test_put_replaces_targets_and_patch_keeps_what_is_not_sent(cast: Cast, keys: Keys) -> None:
    client = client_for(cast.alice)
    pk = json_post(client, list_url(cast), body(keys)).json()["id"]
    route = ModelRoute.objects.get(pk=pk)

    response = client.put(
        detail_url(cast, pk),
        {"alias": "gpt-4o", "targets": [target(keys.deepseek, "deepseek-chat", 0, 7)]},
        content_type="application/json",
    )
    assert response.status_code == 200, response.json()
    assert targets_of(route) == [("DeepSeek", "deepseek-chat", 0, 7)]
    assert response.json()["targets"][0]["weight"] == 7

    response = client.patch(
        detail_url(cast, pk), {"alias": "gpt-4.1"}, content_type="application/json"
    )
    assert response.status_code == 200, response.json()
    route.refresh_from_db()
    assert route.alias == "gpt-4.1"
    assert targets_of(route) == [("DeepSeek", "deepseek-chat", 0, 7)]

    response = client.patch(
        detail_url(cast, pk),
        {"targets": [target(keys.qwen, "qwen-max"), target(keys.zhipu, "glm-4.5", 2)]},
        content_type="application/json",
    )
    assert response.status_code == 200, response.json()
    assert targets_of(route) == [("Qwen", "qwen-max", 0, 1), ("GLM", "glm-4.5", 2, 1)]
    assert AuditEvent.objects.filter(team=cast.acme, action="route.updated").count() == 3


def test_delete(cast: Cast, keys: Keys) -> None:
    client = client_for(cast.alice)
    pk = json_post(client, list_url(cast), body(keys)).json()["id"]
    response = client.delete(detail_url(cast, pk))
    assert response.status_code == 204
    assert not ModelRoute.objects.filter(pk=pk).exists()
    assert not RouteTarget.objects.exists()
    assert AuditEvent.objects.get(team=cast.acme, action="route.deleted").target_id == str(pk)


def test_another_teams_credential_is_a_400_and_nothing_is_saved(cast: Cast, keys: Keys) -> None:
    response = json_post(
        client_for(cast.alice),
        list_url(cast),
        body(keys, targets=[target(keys.qwen, "qwen-plus"), target(keys.globex, "qwen-plus", 1)]),
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request"
    # DRF keys a list's errors by the index of the failing item.
    assert list(error["fields"]["targets"]) == ["1"]
    assert (
        "Not one of this team's provider keys" in error["fields"]["targets"]["1"]["credential"][0]
    )
    assert "Globex" not in response.content.decode()
    assert not ModelRoute.objects.exists() and not RouteTarget.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="route.").exists()


def test_updating_with_another_teams_credential_changes_nothing(cast: Cast, keys: Keys) -> None:
    client = client_for(cast.alice)
    pk = json_post(client, list_url(cast), body(keys)).json()["id"]
    response = client.patch(
        detail_url(cast, pk),
        {"targets": [target(keys.globex, "qwen-plus")]},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert targets_of(ModelRoute.objects.get(pk=pk)) == [
        ("Qwen", "qwen-plus", 0, 1),
        ("GLM", "glm-4.6", 1, 1),
    ]


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"alias": ""}, ["alias"]),
        ({"alias": "gpt 4o"}, ["alias"]),
        ({"alias": "a" * 129}, ["alias"]),
        ({"targets": []}, ["targets"]),
        ({"targets": "nope"}, ["targets"]),
        ({"targets": [{"upstream_model": "qwen-plus"}]}, ["targets", 0, "credential"]),
        (
            {"targets": [{"credential": "not-a-uuid", "upstream_model": "x"}]},
            ["targets", 0, "credential"],
        ),
        (
            {"targets": [{"credential": str(uuid.uuid4()), "upstream_model": "x"}]},
            ["targets", 0, "credential"],
        ),
        (
            {"targets": [{"credential": "QWEN", "upstream_model": ""}]},
            ["targets", 0, "upstream_model"],
        ),
        (
            {"targets": [{"credential": "QWEN", "upstream_model": "m" * 129}]},
            ["targets", 0, "upstream_model"],
        ),
        (
            {"targets": [{"credential": "QWEN", "upstream_model": "x", "priority": 101}]},
            ["targets", 0, "priority"],
        ),
        (
            {"targets": [{"credential": "QWEN", "upstream_model": "x", "priority": -1}]},
            ["targets", 0, "priority"],
        ),
        (
            {"targets": [{"credential": "QWEN", "upstream_model": "x", "weight": 0}]},
            ["targets", 0, "weight"],
        ),
        (
            {"targets": [{"credential": "QWEN", "upstream_model": "x", "weight": 1001}]},
            ["targets", 0, "weight"],
        ),
        (
            {
                "targets": [
                    {"credential": "QWEN", "upstream_model": "x"},
                    {"credential": "QWEN", "upstream_model": "x", "priority": 1},
                ]
            },
            ["targets"],
        ),
    ],
)
def test_bad_input_is_a_json_field_error(
    cast: Cast, keys: Keys, overrides: dict[str, Any], path: list[Any]
) -> None:
    data = body(keys, **overrides)
    if isinstance(data["targets"], list):
        for item in data["targets"]:
            if item.get("credential") == "QWEN":
                item["credential"] = str(keys.qwen.pk)
    response = json_post(client_for(cast.alice), list_url(cast), data)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["type"] == "invalid_request"
    node: Any = error["fields"]
    for step in path:
        node = node[str(step)]
    assert node, error
    assert not ModelRoute.objects.exists()


def test_a_duplicate_alias_is_a_field_error(cast: Cast, keys: Keys) -> None:
    client = client_for(cast.alice)
    assert json_post(client, list_url(cast), body(keys)).status_code == 201
    response = json_post(client, list_url(cast), body(keys))
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["alias"] == [
        "This team already has a model alias named “gpt-4o”."
    ]
    other = json_post(client, list_url(cast), body(keys, alias="o3")).json()["id"]
    response = client.patch(
        detail_url(cast, other), {"alias": "gpt-4o"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert ModelRoute.objects.count() == 2


def test_members_and_viewers_read_but_cannot_write(cast: Cast, keys: Keys) -> None:
    pk = json_post(client_for(cast.alice), list_url(cast), body(keys)).json()["id"]
    for user in (cast.bob, cast.vera):
        client = client_for(user)
        assert client.get(list_url(cast)).status_code == 200
        response = json_post(client, list_url(cast), body(keys, alias="o3"))
        assert response.status_code == 403
        assert response.json()["error"]["type"] == "permission_denied"
        assert (
            client.patch(
                detail_url(cast, pk), {"alias": "x"}, content_type="application/json"
            ).status_code
            == 403
        )
        assert (
            client.put(
                detail_url(cast, pk), body(keys), content_type="application/json"
            ).status_code
            == 403
        )
        assert client.delete(detail_url(cast, pk)).status_code == 403
    assert list(ModelRoute.objects.values_list("alias", flat=True)) == ["gpt-4o"]


def test_outsiders_get_404(cast: Cast, keys: Keys) -> None:
    pk = json_post(client_for(cast.alice), list_url(cast), body(keys)).json()["id"]
    outsider = client_for(cast.charlie)
    for method in ("get", "put", "patch", "delete"):
        response = getattr(outsider, method)(detail_url(cast, pk), content_type="application/json")
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found"
    assert json_post(outsider, list_url(cast), body(keys)).status_code == 404
    # Through his own team: Acme's route is not there either.
    theirs = reverse("route-detail", args=[cast.globex.pk, pk])
    assert outsider.get(theirs).status_code == 404
    assert outsider.delete(theirs).status_code == 404
    assert ModelRoute.objects.filter(pk=pk).exists()


def test_the_schema_documents_routes(cast: Cast, catalog: None) -> None:
    response = client_for(cast.alice).get(reverse("api-schema") + "?format=json")
    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    assert "/api/teams/{team_id}/routes/" in paths
    assert "/api/teams/{team_id}/routes/{id}/" in paths
    target_schema = schema["components"]["schemas"]["RouteTarget"]
    assert target_schema["properties"]["credential"]["format"] == "uuid"
