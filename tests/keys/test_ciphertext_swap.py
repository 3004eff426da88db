"""A ciphertext moved to another team's credential fails loudly."""

from __future__ import annotations

import logging

import pytest

from relay.models import CredentialStatus, ProviderCredential
from relay.secrets import CredentialBroken, reveal_secret
from tests.conftest import Cast
from tests.keys.conftest import SECRET, make_credential


def test_a_ciphertext_copied_to_another_team_does_not_decrypt(
    cast: Cast, caplog: pytest.LogCaptureFixture
) -> None:
    acme = make_credential(cast, name="Acme key", provider="openai", region="default")
    globex = make_credential(
        cast,
        name="Globex key",
        provider="openai",
        region="default",
        secret="sk-globex-own-secret-5555",
        team="globex",
    )
    ProviderCredential.objects.filter(pk=globex.pk).update(secret_ciphertext=acme.secret_ciphertext)
    globex.refresh_from_db()

    with caplog.at_level(logging.DEBUG), pytest.raises(CredentialBroken) as raised:
        reveal_secret(globex)

    assert SECRET not in str(raised.value)
    globex.refresh_from_db()
    assert globex.status == CredentialStatus.BROKEN
    event = cast.globex.audit_events.get(action="credential.decrypt_failed")
    assert event.target_id == str(globex.pk)
    assert not cast.acme.audit_events.filter(action="credential.decrypt_failed").exists()

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors, "a decryption failure must be logged as an error"
    message = errors[0].getMessage()
    assert str(globex.pk) in message
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        assert "sk-globex-own-secret-5555" not in record.getMessage()

    # The original still decrypts where it belongs.
    assert reveal_secret(acme) == SECRET
