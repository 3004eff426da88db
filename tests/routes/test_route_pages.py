"""The model alias pages: list, create, edit, delete; rules, roles and audit."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from accounts.models import AuditEvent
from relay import routes
from relay.models import ModelRoute, RouteTarget
from relay.route_forms import TargetSpec
from tests.conftest import Cast, client_for
from tests.routes.conftest import Keys, targets_of


def list_url(cast: Cast) -> str:
    return reverse("route_list", args=[cast.acme.pk])


def create_url(cast: Cast) -> str:
    return reverse("route_create", args=[cast.acme.pk])


def edit_url(cast: Cast, route: ModelRoute) -> str:
    return reverse("route_edit", args=[cast.acme.pk, route.pk])


def delete_url(cast: Cast, route: ModelRoute) -> str:
    return reverse("route_delete", args=[cast.acme.pk, route.pk])


def form_data(
    alias: str = "gpt-4o",
    rows: list[dict[str, Any]] | None = None,
    *,
    initial: int = 0,
    description: str = "",
) -> dict[str, Any]:
    """A POST body: the alias fields and the targets formset."""
    rows = rows if rows is not None else []
    data: dict[str, Any] = {
        "alias": alias,
        "description": description,
        "targets-TOTAL_FORMS": str(len(rows)),
        "targets-INITIAL_FORMS": str(initial),
        "targets-MIN_NUM_FORMS": "0",
        "targets-MAX_NUM_FORMS": "20",
    }
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"targets-{index}-{key}"] = value
    return data


def row(
    credential: Any = "", model: str = "", priority: Any = 0, weight: Any = 1, **extra: Any
) -> dict[str, Any]:
    pk = getattr(credential, "pk", credential)
    return {
        "credential": str(pk),
        "upstream_model": model,
        "priority": str(priority),
        "weight": str(weight),
        **extra,
    }


def errors(response: Any) -> dict[str, Any]:
    form = response.context["form"]
    formset = response.context["formset"]
    return {
        "form": {k: [str(e) for e in v] for k, v in form.errors.items()},
        "rows": [{k: [str(e) for e in v] for k, v in f.errors.items()} for f in formset.forms],
        "formset": [str(e) for e in formset.non_form_errors()],
    }


def make_route(cast: Cast, keys: Keys, alias: str = "gpt-4o") -> ModelRoute:
    return routes.create_route(
        cast.membership(cast.alice),
        alias=alias,
        targets=[
            TargetSpec(keys.qwen, "qwen-plus", 0, 1),
            TargetSpec(keys.zhipu, "glm-4.6", 1, 1),
        ],
    )


def test_admin_creates_an_alias_with_ordered_targets(cast: Cast, keys: Keys) -> None:
    client = client_for(cast.adam)
    page = client.get(create_url(cast))
    assert page.status_code == 200
    assert "Qwen" in page.content.decode()

    response = client.post(
        create_url(cast),
        form_data(
            "gpt-4o",
            [
                row(keys.qwen, "qwen-plus", 0, 3),
                row(keys.zhipu, "glm-4.6", 1),
                row(),  # a blank extra row is ignored
            ],
            description="Main chat model",
        ),
    )
    assert response.status_code == 302, errors(response)
    assert response["Location"] == list_url(cast)
    route = ModelRoute.objects.get(team=cast.acme, alias="gpt-4o")
    assert route.description == "Main chat model"
    assert targets_of(route) == [("Qwen", "qwen-plus", 0, 3), ("GLM", "glm-4.6", 1, 1)]
    assert all(t.team_id == cast.acme.pk for t in RouteTarget.objects.filter(route=route))

    event = AuditEvent.objects.get(team=cast.acme, action="route.created")
    assert event.actor == cast.adam
    assert event.target_id == str(route.pk)
    assert [t["upstream_model"] for t in event.details["targets"]] == ["qwen-plus", "glm-4.6"]


def test_everyone_in_the_team_reads_the_list(cast: Cast, keys: Keys) -> None:
    make_route(cast, keys)
    for user in (cast.alice, cast.bob, cast.vera):
        page = client_for(user).get(list_url(cast))
        assert page.status_code == 200
        html = page.content.decode()
        assert 'data-alias="gpt-4o"' in html
        assert "qwen-plus" in html and "glm-4.6" in html
        # Models the team's keys offer directly, from the catalog.
        assert "qwen3-max" in html and "text-embedding-v4" in html and "deepseek-reasoner" in html
        can_edit = user == cast.alice
        assert (reverse("route_create", args=[cast.acme.pk]) in html) is can_edit


def test_the_list_without_credentials_links_to_provider_keys(cast: Cast, catalog: None) -> None:
    page = client_for(cast.alice).get(list_url(cast))
    assert page.status_code == 200
    assert reverse("credential_list", args=[cast.acme.pk]) in page.content.decode()


def test_admin_edits_targets_and_the_change_is_audited(cast: Cast, keys: Keys) -> None:
    route = make_route(cast, keys)
    client = client_for(cast.adam)
    assert client.get(edit_url(cast, route)).status_code == 200
    response = client.post(
        edit_url(cast, route),
        form_data(
            "gpt-4o",
            [
                row(keys.qwen, "qwen-plus", 0),
                row(keys.zhipu, "glm-4.6", 1, DELETE="on"),  # removed
                row(keys.deepseek, "deepseek-chat", 2, 5),  # added
            ],
            initial=2,
        ),
    )
    assert response.status_code == 302, errors(response)
    assert targets_of(route) == [("Qwen", "qwen-plus", 0, 1), ("DeepSeek", "deepseek-chat", 2, 5)]
    event = AuditEvent.objects.get(team=cast.acme, action="route.updated")
    changes = event.details["changes"]
    assert [t["upstream_model"] for t in changes["targets"]["old"]] == ["qwen-plus", "glm-4.6"]
    assert [t["upstream_model"] for t in changes["targets"]["new"]] == [
        "qwen-plus",
        "deepseek-chat",
    ]


def test_renaming_an_alias(cast: Cast, keys: Keys) -> None:
    route = make_route(cast, keys)
    response = client_for(cast.alice).post(
        edit_url(cast, route),
        form_data(
            "gpt-4.1", [row(keys.qwen, "qwen-plus", 0), row(keys.zhipu, "glm-4.6", 1)], initial=2
        ),
    )
    assert response.status_code == 302, errors(response)
    route.refresh_from_db()
    assert route.alias == "gpt-4.1"
    event = AuditEvent.objects.get(team=cast.acme, action="route.updated")
    assert event.details["changes"] == {"alias": {"old": "gpt-4o", "new": "gpt-4.1"}}


def test_saving_without_changes_writes_no_audit_event(cast: Cast, keys: Keys) -> None:
    route = make_route(cast, keys)
    response = client_for(cast.alice).post(
        edit_url(cast, route),
        form_data(
            "gpt-4o", [row(keys.qwen, "qwen-plus", 0), row(keys.zhipu, "glm-4.6", 1)], initial=2
        ),
    )
    assert response.status_code == 302
    assert not AuditEvent.objects.filter(action="route.updated").exists()


def test_admin_deletes_an_alias(cast: Cast, keys: Keys) -> None:
    route = make_route(cast, keys)
    client = client_for(cast.adam)
    confirm = client.get(delete_url(cast, route))
    assert confirm.status_code == 200
    assert "qwen-plus" in confirm.content.decode()
    response = client.post(delete_url(cast, route))
    assert response.status_code == 302
    assert not ModelRoute.objects.filter(pk=route.pk).exists()
    assert not RouteTarget.objects.filter(route_id=route.pk).exists()
    event = AuditEvent.objects.get(team=cast.acme, action="route.deleted")
    assert event.target_label == "gpt-4o"
    assert len(event.details["targets"]) == 2


def test_another_teams_credential_is_refused_and_nothing_is_saved(cast: Cast, keys: Keys) -> None:
    response = client_for(cast.alice).post(
        create_url(cast),
        form_data("gpt-4o", [row(keys.qwen, "qwen-plus", 0), row(keys.globex, "qwen-plus", 1)]),
    )
    assert response.status_code == 400
    assert errors(response)["rows"][1]["credential"] == ["Choose one of this team's provider keys."]
    assert not ModelRoute.objects.exists()
    assert not RouteTarget.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="route.").exists()


def test_editing_cannot_smuggle_in_another_teams_credential(cast: Cast, keys: Keys) -> None:
    route = make_route(cast, keys)
    response = client_for(cast.alice).post(
        edit_url(cast, route),
        form_data(
            "gpt-4o", [row(keys.globex, "qwen-plus", 0), row(keys.zhipu, "glm-4.6", 1)], initial=2
        ),
    )
    assert response.status_code == 400
    assert targets_of(route) == [("Qwen", "qwen-plus", 0, 1), ("GLM", "glm-4.6", 1, 1)]


def test_a_duplicate_alias_is_a_form_error(cast: Cast, keys: Keys) -> None:
    make_route(cast, keys)
    other = make_route(cast, keys, alias="gpt-4o-mini")
    client = client_for(cast.alice)
    response = client.post(create_url(cast), form_data("gpt-4o", [row(keys.qwen, "qwen-flash")]))
    assert response.status_code == 400
    assert errors(response)["form"]["alias"] == [
        "This team already has a model alias named “gpt-4o”."
    ]
    # Renaming onto an existing alias too.
    response = client.post(
        edit_url(cast, other),
        form_data(
            "gpt-4o", [row(keys.qwen, "qwen-plus"), row(keys.zhipu, "glm-4.6", 1)], initial=2
        ),
    )
    assert response.status_code == 400
    assert "alias" in errors(response)["form"]
    assert ModelRoute.objects.filter(team=cast.acme).count() == 2


def test_the_same_alias_in_another_team_is_fine(cast: Cast, keys: Keys) -> None:
    routes.create_route(
        cast.membership(cast.charlie, cast.globex),
        alias="gpt-4o",
        targets=[TargetSpec(keys.globex, "qwen-plus")],
    )
    response = client_for(cast.alice).post(
        create_url(cast), form_data("gpt-4o", [row(keys.qwen, "qwen-plus")])
    )
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("alias", "target", "where"),
    [
        ("", {"model": "qwen-plus"}, ("form", "alias")),
        ("gpt 4o", {"model": "qwen-plus"}, ("form", "alias")),
        ("gpt-4o\t", {"model": "qwen-plus"}, None),  # surrounding whitespace is trimmed
        ("x" * 129, {"model": "qwen-plus"}, ("form", "alias")),
        ("x" * 128, {"model": "qwen-plus"}, None),
        ("gpt-4o", {"model": ""}, ("row", "upstream_model")),
        ("gpt-4o", {"model": "m" * 129}, ("row", "upstream_model")),
        ("gpt-4o", {"model": "qwen-plus", "priority": -1}, ("row", "priority")),
        ("gpt-4o", {"model": "qwen-plus", "priority": 101}, ("row", "priority")),
        ("gpt-4o", {"model": "qwen-plus", "priority": 100}, None),
        ("gpt-4o", {"model": "qwen-plus", "priority": "x"}, ("row", "priority")),
        ("gpt-4o", {"model": "qwen-plus", "weight": 0}, ("row", "weight")),
        ("gpt-4o", {"model": "qwen-plus", "weight": 1001}, ("row", "weight")),
        ("gpt-4o", {"model": "qwen-plus", "weight": 1000}, None),
        ("gpt-4o", {"model": "qwen-plus", "credential": "not-a-uuid"}, ("row", "credential")),
        ("gpt-4o", {"model": "qwen-plus", "credential": ""}, ("row", "credential")),
    ],
)
def test_input_rules(
    cast: Cast,
    keys: Keys,
    alias: str,
    target: dict[str, Any],
    where: tuple[str, str] | None,
) -> None:
    values = {"credential": keys.qwen, "priority": 0, "weight": 1, **target}
    response = client_for(cast.alice).post(
        create_url(cast),
        form_data(
            alias,
            [row(values["credential"], values["model"], values["priority"], values["weight"])],
        ),
    )
    if where is None:
        assert response.status_code == 302, errors(response)
        assert ModelRoute.objects.filter(team=cast.acme).count() == 1
        return
    assert response.status_code == 400
    found = errors(response)
    if where[0] == "form":
        assert where[1] in found["form"], found
    else:
        assert where[1] in found["rows"][0], found
    assert not ModelRoute.objects.exists()


def test_at_least_one_target(cast: Cast, keys: Keys) -> None:
    client = client_for(cast.alice)
    response = client.post(create_url(cast), form_data("gpt-4o", [row(), row()]))
    assert response.status_code == 400
    assert errors(response)["formset"] == ["Add at least one target: a provider key and a model."]

    route = make_route(cast, keys)
    response = client.post(
        edit_url(cast, route),
        form_data(
            "gpt-4o",
            [
                row(keys.qwen, "qwen-plus", 0, DELETE="on"),
                row(keys.zhipu, "glm-4.6", 1, DELETE="on"),
            ],
            initial=2,
        ),
    )
    assert response.status_code == 400
    assert len(targets_of(route)) == 2


def test_a_target_listed_twice_is_an_error(cast: Cast, keys: Keys) -> None:
    response = client_for(cast.alice).post(
        create_url(cast),
        form_data("gpt-4o", [row(keys.qwen, "qwen-plus", 0), row(keys.qwen, "qwen-plus", 1)]),
    )
    assert response.status_code == 400
    assert "listed twice" in errors(response)["formset"][0]


def test_the_database_refuses_a_target_listed_twice_by_any_writer(cast: Cast, keys: Keys) -> None:
    route = ModelRoute.objects.create(team=cast.acme, alias="gpt-4o")
    RouteTarget.objects.create(
        team=cast.acme, route=route, credential=keys.qwen, upstream_model="qwen-plus"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        RouteTarget.objects.create(
            team=cast.acme,
            route=route,
            credential=keys.qwen,
            upstream_model="qwen-plus",
            priority=1,
        )
    assert route.targets.count() == 1


def test_members_and_viewers_cannot_edit(cast: Cast, keys: Keys) -> None:
    route = make_route(cast, keys)
    for user in (cast.bob, cast.vera):
        client = client_for(user)
        assert client.get(create_url(cast)).status_code == 403
        assert client.get(edit_url(cast, route)).status_code == 403
        assert client.get(delete_url(cast, route)).status_code == 403
        body = form_data("gpt-4o-mini", [row(keys.qwen, "qwen-flash")])
        assert client.post(create_url(cast), body).status_code == 403
        assert client.post(edit_url(cast, route), body).status_code == 403
        assert client.post(delete_url(cast, route)).status_code == 403
    assert list(ModelRoute.objects.values_list("alias", flat=True)) == ["gpt-4o"]
    assert len(targets_of(route)) == 2


def test_outsiders_and_other_teams_routes_are_404(cast: Cast, keys: Keys) -> None:
    route = make_route(cast, keys)
    outsider = client_for(cast.charlie)
    for url in (list_url(cast), create_url(cast), edit_url(cast, route), delete_url(cast, route)):
        assert outsider.get(url).status_code == 404
        assert outsider.post(url).status_code == 404
    # Charlie's own team, Acme's route id: still 404, and the route survives.
    theirs = reverse("route_delete", args=[cast.globex.pk, route.pk])
    assert outsider.post(theirs).status_code == 404
    assert ModelRoute.objects.filter(pk=route.pk).exists()


def test_the_action_refuses_a_foreign_credential_even_without_the_form(
    cast: Cast, keys: Keys
) -> None:
    from accounts.actions import TeamRuleError

    with pytest.raises(TeamRuleError):
        routes.create_route(
            cast.membership(cast.alice),
            alias="gpt-4o",
            targets=[TargetSpec(keys.globex, "qwen-plus")],
        )
    with pytest.raises(TeamRuleError):
        routes.create_route(
            cast.membership(cast.bob),
            alias="gpt-4o",
            targets=[TargetSpec(keys.qwen, "qwen-plus")],
        )
    assert not ModelRoute.objects.exists()
