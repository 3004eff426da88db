"""The "Test" action: a minimal request through the adapter and the SSRF guard."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.urls import reverse

from relay.models import CredentialStatus, Provider, ProviderCredential
from relay.netguard import AddressPolicy
from tests.conftest import Cast, client_for
from tests.keys.conftest import SECRET, free_port_url, make_credential


def run_test(cast: Cast, credential: ProviderCredential) -> Any:
    return client_for(cast.alice).post(
        reverse("credential_test", args=[cast.acme.pk, credential.pk]), follow=True
    )


def test_a_working_key_records_its_latency(cast: Cast, fake_url: str) -> None:
    credential = make_credential(cast, base_url=fake_url)
    response = run_test(cast, credential)
    credential.refresh_from_db()
    assert credential.last_test_ok is True
    assert credential.last_tested_at is not None
    assert "ms" in credential.last_test_message
    assert credential.last_test_message in response.content.decode()
    event = cast.acme.audit_events.get(action="credential.tested")
    assert event.details["ok"] is True
    assert isinstance(event.details["latency_ms"], int)


def test_a_rejected_key_records_the_providers_message(cast: Cast, fake_url: str) -> None:
    bad_secret = "bad-key-that-the-fake-rejects-4242"
    credential = make_credential(cast, base_url=fake_url, secret=bad_secret)
    response = run_test(cast, credential)
    credential.refresh_from_db()
    assert credential.last_test_ok is False
    assert credential.last_test_message.startswith("HTTP 401")
    assert bad_secret not in credential.last_test_message
    assert bad_secret not in response.content.decode()
    assert cast.acme.audit_events.get(action="credential.tested").details["ok"] is False


def test_providers_without_a_models_list_get_a_one_token_chat(cast: Cast, fake_url: str) -> None:
    minimax = Provider.objects.get(slug="minimax")
    assert minimax.has_models_endpoint is False
    base = fake_url.removesuffix("/v1") + "/minimax/v1"
    credential = make_credential(cast, provider="minimax", base_url=base)
    run_test(cast, credential)
    credential.refresh_from_db()
    assert credential.last_test_ok is True, credential.last_test_message


def test_an_unreachable_upstream_is_a_clear_failure(cast: Cast, fake_url: str) -> None:
    credential = make_credential(cast, base_url=free_port_url())
    run_test(cast, credential)
    credential.refresh_from_db()
    assert credential.last_test_ok is False
    assert "Could not connect" in credential.last_test_message


def test_the_network_guard_applies_at_send_time(cast: Cast, fake_url: str, settings: Any) -> None:
    # Saved while loopback was allowed; the operator has closed it since.
    credential = make_credential(cast, base_url=fake_url)
    settings.BATON_ALLOW_LOOPBACK_UPSTREAMS = False
    run_test(cast, credential)
    credential.refresh_from_db()
    assert credential.last_test_ok is False
    assert "network guard" in credential.last_test_message


def test_a_credential_that_cannot_be_decrypted_says_so(cast: Cast, fake_url: str) -> None:
    credential = make_credential(cast, base_url=fake_url)
    other = make_credential(cast, name="Other", base_url=fake_url)
    ProviderCredential.objects.filter(pk=credential.pk).update(
        secret_ciphertext=other.secret_ciphertext
    )
    response = run_test(cast, credential)
    credential.refresh_from_db()
    assert credential.status == CredentialStatus.BROKEN
    assert credential.last_test_ok is False
    assert "cannot be decrypted" in response.content.decode()
    assert 'data-test="credential-broken-alert"' in response.content.decode()


def test_replacing_the_secret_repairs_a_broken_credential(cast: Cast, fake_url: str) -> None:
    credential = make_credential(cast, base_url=fake_url)
    ProviderCredential.objects.filter(pk=credential.pk).update(status=CredentialStatus.BROKEN)
    client_for(cast.alice).post(
        reverse("credential_secret", args=[cast.acme.pk, credential.pk]), {"secret": SECRET}
    )
    credential.refresh_from_db()
    assert credential.status == CredentialStatus.OK
    run_test(cast, credential)
    credential.refresh_from_db()
    assert credential.last_test_ok is True


def test_probe_is_bounded_by_its_timeout(cast: Cast, fake_server: Any, settings: Any) -> None:
    from asgiref.sync import async_to_sync

    from relay import credential_test

    settings.BATON_ALLOW_LOOPBACK_UPSTREAMS = True
    # The fake never answers; the probe gives up after 0.2 s.
    credential = make_credential(cast, base_url=f"{fake_server.base_url}/_f/hang/v1")
    job = credential_test.plan(credential, SECRET)
    result = async_to_sync(credential_test.probe)(
        job, policy=AddressPolicy(allow_loopback=True), timeout=0.2
    )
    assert result.ok is False
    assert "No answer within" in result.message


def test_a_partial_or_encoded_echo_of_the_key_is_not_kept(cast: Cast, fake_url: str) -> None:
    secret = "sk-live-Echo+Partial/Key=0042"
    for form in ("prefix", "url"):
        base = fake_url.removesuffix("/v1") + f"/_f/status=401,echo_key={form}/v1"
        credential = make_credential(cast, name=f"Echo {form}", base_url=base, secret=secret)
        response = run_test(cast, credential)
        credential.refresh_from_db()
        assert "The key used was" in credential.last_test_message
        for leaked in (secret[:12], quote(secret, safe="")[:12], quote(secret, safe="")[8:20]):
            assert leaked not in credential.last_test_message
            assert leaked not in response.content.decode()
