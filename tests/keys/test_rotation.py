"""Master key and team data key rotation, including interrupted runs."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.core.management import call_command

from accounts.models import Team
from relay import envelope
from relay.models import ProviderCredential
from relay.secrets import keyring, reveal_secret
from tests.conftest import Cast
from tests.keys.conftest import make_credential

NEW_MASTER = "new2:" + base64.b64encode(b"n" * 32).decode()


def seed(cast: Cast) -> dict[str, str]:
    """Two credentials in Acme, one in Globex; returns credential id -> plaintext."""
    expected = {}
    for name, team, secret in (
        ("a1", "acme", "sk-acme-one-secret-1111"),
        ("a2", "acme", "sk-acme-two-secret-2222"),
        ("g1", "globex", "sk-globex-secret-3333"),
    ):
        credential = make_credential(
            cast, name=name, provider="openai", region="default", secret=secret, team=team
        )
        expected[str(credential.pk)] = secret
    return expected


def assert_all_decrypt(expected: dict[str, str]) -> None:
    keyring.cache_clear()
    revealed = {
        str(credential.pk): reveal_secret(credential)
        for credential in ProviderCredential.objects.select_related("team")
    }
    assert len(expected) == 3 and revealed == expected


def use_master_keys(settings: Any, value: str) -> None:
    settings.BATON_MASTER_KEYS = value
    keyring.cache_clear()


def test_master_key_rotation_lets_the_old_key_go(cast: Cast, settings: Any) -> None:
    expected = seed(cast)
    old = settings.BATON_MASTER_KEYS
    use_master_keys(settings, f"{NEW_MASTER},{old}")
    call_command("rotate_master_key")
    wrapped_by = [
        envelope.wrapped_key_master_id(team.wrapped_data_key)
        for team in Team.objects.exclude(wrapped_data_key="")
    ]
    assert wrapped_by == ["new2", "new2"]  # Acme and Globex
    use_master_keys(settings, NEW_MASTER)
    assert_all_decrypt(expected)


def test_an_interrupted_master_rotation_finishes_on_rerun(
    cast: Cast, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = seed(cast)
    use_master_keys(settings, f"{NEW_MASTER},{settings.BATON_MASTER_KEYS}")
    real = envelope.rewrap_data_key
    calls = {"n": 0}

    def crash_on_second_team(*args: Any, **kwargs: Any) -> str:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("power cut")
        return real(*args, **kwargs)

    monkeypatch.setattr(envelope, "rewrap_data_key", crash_on_second_team)
    with pytest.raises(RuntimeError, match="power cut"):
        call_command("rotate_master_key")
    ids = sorted(
        envelope.wrapped_key_master_id(t.wrapped_data_key)
        for t in Team.objects.exclude(wrapped_data_key="")
    )
    assert ids == ["new2", "test1"]  # one team done, one not: both still usable
    assert_all_decrypt(expected)

    monkeypatch.setattr(envelope, "rewrap_data_key", real)
    call_command("rotate_master_key")
    use_master_keys(settings, NEW_MASTER)
    assert_all_decrypt(expected)


def test_team_key_rotation_reencrypts_every_secret(cast: Cast) -> None:
    expected = seed(cast)
    before = {c.pk: c.secret_ciphertext for c in ProviderCredential.objects.filter(team=cast.acme)}
    wrapped_before = Team.objects.get(pk=cast.acme.pk).wrapped_data_key
    call_command("rotate_team_key", str(cast.acme.pk))
    after = {c.pk: c.secret_ciphertext for c in ProviderCredential.objects.filter(team=cast.acme)}
    assert len(before) == 2 and before.keys() == after.keys()
    assert all(before[pk] != after[pk] for pk in before)
    assert Team.objects.get(pk=cast.acme.pk).wrapped_data_key != wrapped_before
    assert_all_decrypt(expected)
    assert cast.acme.audit_events.filter(action="team.data_key_rotated").exists()


def test_an_interrupted_team_rotation_loses_nothing(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = seed(cast)
    before = {c.pk: c.secret_ciphertext for c in ProviderCredential.objects.all()}
    wrapped_before = Team.objects.get(pk=cast.acme.pk).wrapped_data_key
    real = envelope.encrypt_secret
    calls = {"n": 0}

    def crash_on_second_credential(*args: Any, **kwargs: Any) -> str:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(envelope, "encrypt_secret", crash_on_second_credential)
    with pytest.raises(RuntimeError, match="killed"):
        call_command("rotate_team_key", str(cast.acme.pk))
    # Nothing half-done: the old data key and ciphertexts are intact.
    assert {c.pk: c.secret_ciphertext for c in ProviderCredential.objects.all()} == before
    assert Team.objects.get(pk=cast.acme.pk).wrapped_data_key == wrapped_before
    assert_all_decrypt(expected)

    monkeypatch.setattr(envelope, "encrypt_secret", real)
    call_command("rotate_team_key", str(cast.acme.pk))
    assert_all_decrypt(expected)


def test_rotating_an_unknown_team_is_a_clear_error(db: None) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No team"):
        call_command("rotate_team_key", "not-a-uuid")
