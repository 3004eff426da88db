from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from relay.models import ProviderCredential
from relay.secrets import MAX_SECRET_LENGTH, reveal_secret
from tests.conftest import Cast, client_for
from tests.keys.conftest import SECRET, counts, form_errors, make_credential


def create_url(cast: Cast) -> str:
    return reverse("credential_create", args=[cast.acme.pk])


def form(**overrides: Any) -> dict[str, Any]:
    data = {
        "name": "OpenAI prod",
        "provider": "openai",
        "region": "",
        "base_url": "",
        "secret": SECRET,
        "api_version": "2024-10-21",
        "enabled": "on",
    }
    data.update(overrides)
    return data


def test_admin_adds_a_credential_that_is_encrypted_and_masked(cast: Cast) -> None:
    client = client_for(cast.adam)
    response = client.post(create_url(cast), form())
    credential = ProviderCredential.objects.get(team=cast.acme)
    assert response.status_code == 302
    assert response["Location"] == reverse("credential_detail", args=[cast.acme.pk, credential.pk])
    assert credential.secret_ciphertext.startswith("v1:")
    assert SECRET not in credential.secret_ciphertext
    assert credential.secret_last4 == "0001"
    assert credential.region == "default"
    assert credential.created_by == cast.adam
    assert reveal_secret(credential) == SECRET
    event = cast.acme.audit_events.get(action="credential.created")
    assert SECRET not in str(event.details)

    for url in (
        reverse("credential_list", args=[cast.acme.pk]),
        reverse("credential_detail", args=[cast.acme.pk, credential.pk]),
    ):
        page = client.get(url)
        assert page.status_code == 200
        assert "…0001" in page.content.decode()
        assert SECRET not in page.content.decode()


def test_the_create_page_offers_enabled_catalog_providers(cast: Cast) -> None:
    from relay.models import Provider

    Provider.objects.filter(slug="stepfun").update(enabled=False)
    page = client_for(cast.alice).get(create_url(cast)).content.decode()
    assert 'value="qwen"' in page
    assert 'value="stepfun"' not in page
    assert 'value="fake"' not in page  # no demo upstream runs in tests


def test_a_region_picks_the_catalog_address(cast: Cast) -> None:
    client_for(cast.alice).post(create_url(cast), form(provider="qwen", region="intl"))
    credential = ProviderCredential.objects.get(team=cast.acme)
    assert credential.region == "intl"
    assert (
        credential.effective_base_url() == "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
    )


def test_azure_extras_are_parsed_and_kept(cast: Cast, fake_url: str) -> None:
    base = fake_url.removesuffix("/v1") + "/azure"
    client_for(cast.alice).post(
        create_url(cast),
        form(
            provider="azure",
            base_url=base,
            api_version="v1",
            deployments="gpt-4o = prod-4o\n# a comment\n\ngpt-4o-mini=mini",
            organization="org-ignored",
        ),
    )
    credential = ProviderCredential.objects.get(team=cast.acme)
    assert credential.base_url == base
    assert credential.extras == {
        "api_version": "v1",
        "deployments": {"gpt-4o": "prod-4o", "gpt-4o-mini": "mini"},
    }


def test_openai_extras_are_kept(cast: Cast) -> None:
    client_for(cast.alice).post(create_url(cast), form(organization="org-abc", project="proj_1"))
    credential = ProviderCredential.objects.get(team=cast.acme)
    assert credential.extras == {"organization": "org-abc", "project": "proj_1"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"provider": "custom", "base_url": "not a url"}, "base_url"),
        ({"provider": "custom", "base_url": "ftp://example.com/v1"}, "base_url"),
        ({"provider": "custom", "base_url": "https://user:pw@example.com/v1"}, "base_url"),
        ({"provider": "custom", "base_url": ""}, "base_url"),
        ({"provider": "nope"}, "provider"),
        ({"secret": ""}, "secret"),
        ({"secret": "   "}, "secret"),
        ({"secret": "x" * (MAX_SECRET_LENGTH + 1)}, "secret"),
        ({"secret": "sk-line\nbreak-inside"}, "secret"),
        ({"region": "mars"}, "region"),
        ({"provider": "qwen", "region": "default"}, "region"),
        ({"name": ""}, "name"),
        (
            {"provider": "azure", "base_url": "https://r.example.com", "api_version": "latest"},
            "api_version",
        ),
        (
            {"provider": "azure", "base_url": "https://r.example.com", "deployments": "gpt-4o"},
            "deployments",
        ),
        (
            {"provider": "azure", "base_url": "https://r.example.com", "deployments": "gpt-4o=a b"},
            "deployments",
        ),
        ({"organization": "org\r\nX-Evil: 1"}, "organization"),
    ],
)
def test_bad_input_is_a_form_error_and_saves_nothing(
    cast: Cast, overrides: dict[str, Any], field: str
) -> None:
    before = counts()
    response = client_for(cast.alice).post(create_url(cast), form(**overrides))
    assert response.status_code == 200
    errors = form_errors(response)
    assert field in errors, errors
    assert counts() == before
    assert SECRET not in response.content.decode()  # the secret field is never echoed


def test_a_duplicate_name_is_refused(cast: Cast) -> None:
    make_credential(cast, name="OpenAI prod", provider="openai", region="default")
    before = counts()
    response = client_for(cast.alice).post(create_url(cast), form(name="openai PROD"))
    assert "name" in form_errors(response)
    assert counts() == before


def test_loopback_base_urls_are_refused_unless_allowed(cast: Cast, settings: Any) -> None:
    settings.BATON_ALLOW_LOOPBACK_UPSTREAMS = False
    settings.BATON_ALLOW_PRIVATE_UPSTREAMS = False
    for url in (
        "http://127.0.0.1:8001/v1",
        "http://localhost/v1",
        "http://0x7f000001/v1",
        "http://169.254.169.254/",
    ):
        response = client_for(cast.alice).post(
            create_url(cast), form(provider="custom", base_url=url)
        )
        assert "base_url" in form_errors(response), url
    assert not ProviderCredential.objects.exists()


def test_editing_changes_settings_and_is_audited(cast: Cast) -> None:
    credential = make_credential(cast, name="Qwen", provider="qwen", region="cn")
    response = client_for(cast.adam).post(
        reverse("credential_detail", args=[cast.acme.pk, credential.pk]),
        {"name": "Qwen intl", "region": "intl", "base_url": ""},
    )
    assert response.status_code == 302
    credential.refresh_from_db()
    assert (credential.name, credential.region, credential.enabled) == ("Qwen intl", "intl", False)
    event = cast.acme.audit_events.get(action="credential.updated")
    assert event.actor == cast.adam
    assert event.details["changes"]["region"] == {"old": "cn", "new": "intl"}
    assert reveal_secret(credential) == SECRET


def test_replacing_the_secret_is_its_own_audited_action(cast: Cast) -> None:
    credential = make_credential(cast)
    new_secret = "sk-live-REPLACEMENT-secret-9999"
    response = client_for(cast.alice).post(
        reverse("credential_secret", args=[cast.acme.pk, credential.pk]), {"secret": new_secret}
    )
    assert response.status_code == 302
    credential.refresh_from_db()
    assert reveal_secret(credential) == new_secret
    assert credential.secret_last4 == "9999"
    event = cast.acme.audit_events.get(action="credential.secret_replaced")
    assert event.details == {"old": "…0001", "new": "…9999"}
    assert new_secret not in str(event.details)


def test_an_empty_replacement_secret_is_refused(cast: Cast) -> None:
    credential = make_credential(cast)
    response = client_for(cast.alice).post(
        reverse("credential_secret", args=[cast.acme.pk, credential.pk]), {"secret": ""}
    )
    assert response.status_code == 400
    credential.refresh_from_db()
    assert reveal_secret(credential) == SECRET


def test_deleting_a_credential(cast: Cast) -> None:
    credential = make_credential(cast)
    url = reverse("credential_delete", args=[cast.acme.pk, credential.pk])
    client = client_for(cast.alice)
    assert client.get(url).status_code == 200
    assert client.post(url).status_code == 302
    assert not ProviderCredential.objects.exists()
    event = cast.acme.audit_events.get(action="credential.deleted")
    assert event.target_label == "Fake"


def test_viewers_and_members_see_the_masked_list_without_buttons(cast: Cast) -> None:
    make_credential(cast)
    for user in (cast.vera, cast.bob):
        page = client_for(user).get(reverse("credential_list", args=[cast.acme.pk]))
        html = page.content.decode()
        assert page.status_code == 200
        assert "…0001" in html
        assert 'data-test="credential-add"' not in html
        assert 'data-test="credential-test"' not in html
