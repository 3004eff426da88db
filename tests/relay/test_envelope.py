"""Envelope encryption: round trips, bindings, loud failures, keyring parsing."""

from __future__ import annotations

import base64
import secrets

import pytest

from relay.envelope import (
    DecryptionError,
    MasterKeyring,
    decrypt_secret,
    encrypt_secret,
    generate_data_key,
    rewrap_data_key,
    unwrap_data_key,
    wrap_data_key,
    wrapped_key_master_id,
)

TEAM_A = "6f1c2d3e-0000-4000-8000-00000000000a"
TEAM_B = "6f1c2d3e-0000-4000-8000-00000000000b"
SECRET = "sk-live-1234567890abcdefWXYZ"


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def make_keyring(*ids: str) -> tuple[MasterKeyring, dict[str, bytes]]:
    keys = {key_id: secrets.token_bytes(32) for key_id in ids}
    return MasterKeyring.parse(",".join(f"{k}:{b64(v)}" for k, v in keys.items())), keys


def flip_last_char(token: str) -> str:
    last = token[-1]
    return token[:-1] + ("A" if last != "A" else "B")


# --- Keyring ------------------------------------------------------------------


def test_keyring_parses_ids_in_order_and_first_is_primary() -> None:
    ring, keys = make_keyring("k2", "k1")
    assert ring.primary_id == "k2"
    assert ring.ids == ("k2", "k1")
    assert ring.key("k1") == keys["k1"]


def test_keyring_accepts_urlsafe_unpadded_keys_and_whitespace() -> None:
    key = secrets.token_bytes(32)
    urlsafe = base64.urlsafe_b64encode(key).decode().rstrip("=")
    ring = MasterKeyring.parse(f"  a-1:{urlsafe} , b_2:{b64(key)}\n")
    assert ring.ids == ("a-1", "b_2")
    assert ring.key("a-1") == key == ring.key("b_2")


def test_keyring_repr_shows_ids_only() -> None:
    ring, keys = make_keyring("k1")
    assert "k1" in repr(ring)
    assert b64(keys["k1"]) not in repr(ring)


def test_unknown_master_key_id_is_a_decryption_error() -> None:
    ring, _ = make_keyring("k1")
    with pytest.raises(DecryptionError, match="'nope' is not configured"):
        ring.key("nope")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "no master keys configured"),
        ("   \n", "no master keys configured"),
        ("k1:{good},", "entry #2 is empty"),
        ("{good}", "entry #1 has no id"),
        ("bad id!:{good}", "entry #1 has an invalid id"),
        ("{long_id}:{good}", "entry #1 has an invalid id"),
        ("k1:", "'k1' \\(entry #1\\) has no key"),
        ("k1:{good},k1:{good}", "'k1' appears more than once \\(entries #1 and #2\\)"),
        ("k1:{good},k2:not*base64{half}", "'k2' \\(entry #2\\) is not valid base64"),
        ("k1:{mixed}", "'k1' \\(entry #1\\) is not valid base64"),
        ("k1:{half}", "'k1' \\(entry #1\\) decodes to 16 bytes"),
        ("k1:{long}", "'k1' \\(entry #1\\) decodes to 48 bytes"),
    ],
)
def test_keyring_parsing_errors_are_clear_and_never_echo_keys(value: str, message: str) -> None:
    good = b64(secrets.token_bytes(32))
    half = b64(secrets.token_bytes(16))
    long = b64(secrets.token_bytes(48))
    # Both alphabets at once: '+' or '/' from standard, '-' from URL-safe.
    mixed = "-" + good[1:-2].replace("A", "+") + "/="
    filled = value.format(good=good, half=half, long=long, mixed=mixed, long_id="x" * 33)

    with pytest.raises(ValueError, match=message) as info:
        MasterKeyring.parse(filled)

    text = str(info.value)
    for key_text in (good, half, long, mixed):
        assert key_text not in text
        assert key_text[:12] not in text


# --- Data keys ----------------------------------------------------------------


def test_data_key_wrap_round_trip() -> None:
    ring, _ = make_keyring("k1")
    dek = generate_data_key()
    assert len(dek) == 32

    wrapped = wrap_data_key(ring, dek, team_id=TEAM_A)

    assert wrapped.startswith("dk1:k1:")
    assert wrapped_key_master_id(wrapped) == "k1"
    assert unwrap_data_key(ring, wrapped, team_id=TEAM_A) == dek


def test_data_keys_are_random() -> None:
    assert generate_data_key() != generate_data_key()


def test_wrapped_data_key_does_not_unwrap_for_another_team() -> None:
    ring, _ = make_keyring("k1")
    wrapped = wrap_data_key(ring, generate_data_key(), team_id=TEAM_A)

    with pytest.raises(DecryptionError, match="failed authentication"):
        unwrap_data_key(ring, wrapped, team_id=TEAM_B)


def test_wrapped_data_key_does_not_unwrap_under_a_different_master_key_with_same_id() -> None:
    ring, _ = make_keyring("k1")
    other_ring, _ = make_keyring("k1")
    wrapped = wrap_data_key(ring, generate_data_key(), team_id=TEAM_A)

    with pytest.raises(DecryptionError, match="failed authentication"):
        unwrap_data_key(other_ring, wrapped, team_id=TEAM_A)


def test_unwrap_with_missing_master_key_says_which_one() -> None:
    old_ring, _ = make_keyring("old")
    new_ring, _ = make_keyring("new")
    wrapped = wrap_data_key(old_ring, generate_data_key(), team_id=TEAM_A)

    with pytest.raises(DecryptionError, match="'old', which is not configured"):
        unwrap_data_key(new_ring, wrapped, team_id=TEAM_A)


def test_tampered_wrapped_key_fails() -> None:
    ring, _ = make_keyring("k1")
    wrapped = wrap_data_key(ring, generate_data_key(), team_id=TEAM_A)

    with pytest.raises(DecryptionError):
        unwrap_data_key(ring, flip_last_char(wrapped), team_id=TEAM_A)


@pytest.mark.parametrize(
    "wrapped",
    [
        "",
        "garbage",
        "dk2:k1:AAAA",
        "dk1:k1",
        "dk1:k1:",
        "dk1:bad id:AAAA",
        "dk1:k1:AA*A",
        "dk1:k1:AAAA",
    ],
)
def test_malformed_wrapped_keys_fail_loudly(wrapped: str) -> None:
    ring, _ = make_keyring("k1")
    with pytest.raises(DecryptionError):
        unwrap_data_key(ring, wrapped, team_id=TEAM_A)


def test_master_key_rotation_rewraps_under_the_new_primary() -> None:
    old_ring, keys = make_keyring("old")
    dek = generate_data_key()
    wrapped = wrap_data_key(old_ring, dek, team_id=TEAM_A)
    rotated_ring = MasterKeyring.parse(f"new:{b64(secrets.token_bytes(32))},old:{b64(keys['old'])}")

    rewrapped = rewrap_data_key(rotated_ring, wrapped, team_id=TEAM_A)

    assert wrapped_key_master_id(rewrapped) == "new"
    only_new = MasterKeyring.parse(f"new:{b64(rotated_ring.key('new'))}")
    assert unwrap_data_key(only_new, rewrapped, team_id=TEAM_A) == dek


def test_wrap_refuses_a_data_key_of_the_wrong_size() -> None:
    ring, _ = make_keyring("k1")
    with pytest.raises(ValueError, match="32 bytes"):
        wrap_data_key(ring, b"short", team_id=TEAM_A)


# --- Secrets ------------------------------------------------------------------


def test_secret_round_trip() -> None:
    dek = generate_data_key()
    token = encrypt_secret(dek, SECRET, team_id=TEAM_A, credential_id="42")

    assert token.startswith("v1:")
    assert SECRET not in token
    assert decrypt_secret(dek, token, team_id=TEAM_A, credential_id="42") == SECRET


def test_secret_round_trip_keeps_unicode_and_empty_text() -> None:
    dek = generate_data_key()
    for text in ("", "密钥-ключ-🔑"):
        token = encrypt_secret(dek, text, team_id=TEAM_A, credential_id="c")
        assert decrypt_secret(dek, token, team_id=TEAM_A, credential_id="c") == text


def test_two_encryptions_of_the_same_secret_use_different_nonces() -> None:
    dek = generate_data_key()
    first = encrypt_secret(dek, SECRET, team_id=TEAM_A, credential_id="42")
    second = encrypt_secret(dek, SECRET, team_id=TEAM_A, credential_id="42")

    assert first != second
    nonce_first = base64.urlsafe_b64decode(first[3:] + "==")[:12]
    nonce_second = base64.urlsafe_b64decode(second[3:] + "==")[:12]
    assert nonce_first != nonce_second


def test_secret_from_team_a_does_not_decrypt_as_team_b() -> None:
    # Even with the same data key, the associated data binds the team.
    dek = generate_data_key()
    token = encrypt_secret(dek, SECRET, team_id=TEAM_A, credential_id="42")

    with pytest.raises(DecryptionError, match="failed authentication") as info:
        decrypt_secret(dek, token, team_id=TEAM_B, credential_id="42")
    assert SECRET not in str(info.value)


def test_secret_does_not_decrypt_for_another_credential() -> None:
    dek = generate_data_key()
    token = encrypt_secret(dek, SECRET, team_id=TEAM_A, credential_id="42")

    with pytest.raises(DecryptionError, match="failed authentication"):
        decrypt_secret(dek, token, team_id=TEAM_A, credential_id="43")


def test_secret_does_not_decrypt_with_another_data_key() -> None:
    token = encrypt_secret(generate_data_key(), SECRET, team_id=TEAM_A, credential_id="42")

    with pytest.raises(DecryptionError, match="failed authentication"):
        decrypt_secret(generate_data_key(), token, team_id=TEAM_A, credential_id="42")


def test_tampered_secret_fails() -> None:
    dek = generate_data_key()
    token = encrypt_secret(dek, SECRET, team_id=TEAM_A, credential_id="42")
    blob = bytearray(base64.urlsafe_b64decode(token[3:] + "=="))
    blob[15] ^= 0x01  # a ciphertext byte, past the 12-byte nonce
    tampered = "v1:" + base64.urlsafe_b64encode(bytes(blob)).decode().rstrip("=")

    with pytest.raises(DecryptionError, match="failed authentication"):
        decrypt_secret(dek, tampered, team_id=TEAM_A, credential_id="42")


def test_unknown_secret_version_is_refused() -> None:
    dek = generate_data_key()
    token = encrypt_secret(dek, SECRET, team_id=TEAM_A, credential_id="42")

    with pytest.raises(DecryptionError, match="unknown encryption version \\('v2'\\)"):
        decrypt_secret(dek, "v2" + token[2:], team_id=TEAM_A, credential_id="42")


@pytest.mark.parametrize("token", ["", "v1", "v1:", "v1:AAAA", "v1:not*base64", SECRET])
def test_malformed_secrets_fail_loudly(token: str) -> None:
    with pytest.raises(DecryptionError) as info:
        decrypt_secret(generate_data_key(), token, team_id=TEAM_A, credential_id="42")
    assert SECRET not in str(info.value)


def test_ids_containing_the_aad_separator_are_refused() -> None:
    # ("a:b", "c") and ("a", "b:c") would otherwise share associated data.
    with pytest.raises(ValueError, match="team_id must not contain ':'"):
        encrypt_secret(generate_data_key(), SECRET, team_id="a:b", credential_id="c")
