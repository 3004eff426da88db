"""Who may do what with provider credentials and API keys."""

from __future__ import annotations

from django.urls import reverse

from accounts import apikeys
from accounts.models import ApiKey
from relay.models import ProviderCredential
from tests.conftest import Cast, client_for
from tests.keys.conftest import SECRET, json_post, make_credential


def issue(cast: Cast, user: object, name: str) -> ApiKey:
    return apikeys.create_api_key(cast.membership(user), name=name).api_key  # type: ignore[arg-type]


def test_viewers_cannot_create_api_keys(cast: Cast) -> None:
    client = client_for(cast.vera)
    assert client.get(reverse("api_key_list", args=[cast.acme.pk])).status_code == 200
    assert client.get(reverse("api_key_create", args=[cast.acme.pk])).status_code == 403
    assert (
        client.post(reverse("api_key_create", args=[cast.acme.pk]), {"name": "x"}).status_code
        == 403
    )
    assert (
        json_post(client, reverse("api-key-list", args=[cast.acme.pk]), {"name": "x"}).status_code
        == 403
    )
    assert not ApiKey.objects.exists()
    page = client.get(reverse("api_key_list", args=[cast.acme.pk])).content.decode()
    assert 'data-test="api-key-add"' not in page


def test_viewers_see_masked_keys_without_buttons(cast: Cast) -> None:
    api_key = issue(cast, cast.bob, "bob's")
    page = client_for(cast.vera).get(reverse("api_key_list", args=[cast.acme.pk])).content.decode()
    assert api_key.masked in page
    assert 'data-test="api-key-revoke"' not in page
    revoke = reverse("api_key_revoke", args=[cast.acme.pk, api_key.pk])
    assert client_for(cast.vera).post(revoke).status_code == 403
    assert (
        json_post(
            client_for(cast.vera), reverse("api-key-revoke", args=[cast.acme.pk, api_key.pk]), {}
        ).status_code
        == 403
    )


def test_members_revoke_their_own_keys_but_not_others(cast: Cast) -> None:
    own = issue(cast, cast.bob, "bob's")
    admins = issue(cast, cast.adam, "adam's")
    client = client_for(cast.bob)
    page = client.get(reverse("api_key_list", args=[cast.acme.pk])).content.decode()
    assert page.count('data-test="api-key-revoke"') == 1

    assert client.post(reverse("api_key_revoke", args=[cast.acme.pk, admins.pk])).status_code == 403
    assert (
        json_post(client, reverse("api-key-revoke", args=[cast.acme.pk, admins.pk]), {}).status_code
        == 403
    )
    assert (
        client.post(
            reverse("api_key_edit", args=[cast.acme.pk, admins.pk]), {"name": "mine"}
        ).status_code
        == 403
    )
    assert (
        client.patch(
            reverse("api-key-detail", args=[cast.acme.pk, admins.pk]),
            {"name": "mine"},
            content_type="application/json",
        ).status_code
        == 403
    )
    admins.refresh_from_db()
    assert admins.revoked_at is None and admins.name == "adam's"

    assert client.post(reverse("api_key_revoke", args=[cast.acme.pk, own.pk])).status_code == 302
    own.refresh_from_db()
    assert own.revoked_by == cast.bob


def test_admins_revoke_anyones_key(cast: Cast) -> None:
    bobs = issue(cast, cast.bob, "bob's")
    alices = issue(cast, cast.alice, "alice's")
    assert (
        client_for(cast.adam)
        .post(reverse("api_key_revoke", args=[cast.acme.pk, bobs.pk]))
        .status_code
        == 302
    )
    assert (
        json_post(
            client_for(cast.adam), reverse("api-key-revoke", args=[cast.acme.pk, alices.pk]), {}
        ).status_code
        == 200
    )
    assert ApiKey.objects.filter(revoked_by=cast.adam).count() == 2


def test_members_cannot_manage_credentials(cast: Cast) -> None:
    credential = make_credential(cast)
    client = client_for(cast.bob)
    for name, args in (
        ("credential_create", [cast.acme.pk]),
        ("credential_detail", [cast.acme.pk, credential.pk]),
        ("credential_secret", [cast.acme.pk, credential.pk]),
        ("credential_test", [cast.acme.pk, credential.pk]),
        ("credential_delete", [cast.acme.pk, credential.pk]),
    ):
        assert (
            client.post(
                reverse(name, args=args), {"secret": "sk-x-xxxxxxxx", "name": "x"}
            ).status_code
            == 403
        ), name
    api = reverse("credential-list", args=[cast.acme.pk])
    assert (
        json_post(client, api, {"name": "x", "provider": "openai", "secret": SECRET}).status_code
        == 403
    )
    detail = reverse("credential-detail", args=[cast.acme.pk, credential.pk])
    assert client.delete(detail).status_code == 403
    assert (
        json_post(
            client, reverse("credential-test", args=[cast.acme.pk, credential.pk]), {}
        ).status_code
        == 403
    )
    assert client.get(api).status_code == 200  # reading the masked list is fine
    assert ProviderCredential.objects.count() == 1
    assert (
        not cast.acme.audit_events.filter(action__startswith="credential.")
        .exclude(action="credential.created")
        .exists()
    )


def test_viewers_cannot_manage_credentials(cast: Cast) -> None:
    client = client_for(cast.vera)
    assert client.get(reverse("credential_create", args=[cast.acme.pk])).status_code == 403
    api = reverse("credential-list", args=[cast.acme.pk])
    assert (
        json_post(client, api, {"name": "x", "provider": "openai", "secret": SECRET}).status_code
        == 403
    )
    assert not ProviderCredential.objects.exists()
