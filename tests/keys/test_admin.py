from __future__ import annotations

from django.urls import reverse

from accounts import apikeys
from accounts.models import User
from tests.conftest import Cast
from tests.keys.conftest import SECRET, make_credential


def test_the_admin_never_shows_a_secret_or_its_ciphertext(cast: Cast, client: object) -> None:
    credential = make_credential(cast)
    issued = apikeys.create_api_key(cast.membership(cast.alice), name="ci")
    admin = User.objects.create_superuser("root@example.com", "a-long-admin-password")
    client.force_login(admin)  # type: ignore[attr-defined]
    pages = [
        reverse("admin:relay_providercredential_changelist"),
        reverse("admin:relay_providercredential_change", args=[credential.pk]),
        reverse("admin:accounts_apikey_changelist"),
        reverse("admin:accounts_apikey_change", args=[issued.api_key.pk]),
        reverse("admin:relay_provider_change", args=["qwen"]),
    ]
    for url in pages:
        response = client.get(url)  # type: ignore[attr-defined]
        assert response.status_code == 200, url
        html = response.content.decode()
        assert SECRET not in html
        assert credential.secret_ciphertext not in html
        assert issued.key not in html
        assert issued.api_key.digest not in html
    assert "…0001" in client.get(pages[1]).content.decode()  # type: ignore[attr-defined]
    assert client.get(reverse("admin:relay_providercredential_add")).status_code == 403  # type: ignore[attr-defined]


def test_the_catalog_is_editable_in_the_admin(cast: Cast, client: object) -> None:
    from relay.models import Provider

    admin = User.objects.create_superuser("root@example.com", "a-long-admin-password")
    client.force_login(admin)  # type: ignore[attr-defined]
    url = reverse("admin:relay_provider_change", args=["stepfun"])
    provider = Provider.objects.get(slug="stepfun")
    response = client.post(  # type: ignore[attr-defined]
        url,
        {
            "name": "StepFun",
            "family": "openai",
            "enabled": "",
            "sort_order": provider.sort_order,
            "docs_url": "",
            "regions": '{"cn": "https://api.stepfun.com/v1"}',
            "default_region": "cn",
            "auth_style": "bearer",
            "has_models_endpoint": "on",
            "known_models": '["step-3.5-flash"]',
            "embedding_models": "[]",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    provider.refresh_from_db()
    assert provider.enabled is False
    assert provider.regions == {"cn": "https://api.stepfun.com/v1"}
