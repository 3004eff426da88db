"""Envelope encryption for provider credentials.

Three layers of keys:

* **Master keys** come from the environment (``BATON_MASTER_KEYS``) as an
  ordered keyring ``"id1:base64key,id2:base64key"``. The first key wraps new
  data keys; every key in the ring can unwrap, so rotating means putting a new
  key first, re-wrapping (``wrapped_key_master_id`` tells which rows still need
  it) and then dropping the old key.
* **Data keys**: one random AES-256 key per team, stored only wrapped by a
  master key (``"dk1:{master_id}:{payload}"``). The associated data binds the
  wrapped key to its team, so a wrapped key copied onto another team's row
  does not unwrap.
* **Secrets** (provider API keys) are encrypted with the team's data key
  (``"v1:{payload}"``). The associated data binds the ciphertext to its team
  *and* credential, so a ciphertext moved to another credential row, even
  within the same team, fails to decrypt instead of silently serving the
  wrong key to the wrong upstream.

All ciphers are AES-256-GCM with a fresh random 96-bit nonce per encryption;
payloads are unpadded URL-safe base64 of ``nonce || ciphertext || tag``.

Every failure raises :class:`DecryptionError` (loud, never a silent fallback
to the ciphertext or to an empty string). Messages name ids and positions but
never contain key material or plaintext, because they end up in logs.

This module is deliberately free of Django imports: the management commands,
the relay and the tests all use it with plain values.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "DATA_KEY_BYTES",
    "DecryptionError",
    "MasterKeyring",
    "decrypt_secret",
    "encrypt_secret",
    "generate_data_key",
    "rewrap_data_key",
    "unwrap_data_key",
    "wrap_data_key",
    "wrapped_key_master_id",
]

DATA_KEY_BYTES = 32  # AES-256
MASTER_KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # the 96-bit nonce GCM is designed for
TAG_BYTES = 16

WRAPPED_KEY_PREFIX = "dk1"
CIPHERTEXT_VERSION = "v1"

_MASTER_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
# Only used to decide whether an unknown version label is safe to echo back.
_VERSION_LABEL_RE = re.compile(r"[a-z0-9]{1,8}")

_DEK_AAD_PREFIX = b"baton:dek:v1:"
_SECRET_AAD_PREFIX = b"baton:secret:v1:"


class DecryptionError(Exception):
    """A wrapped key or secret could not be decrypted.

    Raised for malformed input, unknown versions or master key ids, and
    authentication failures (wrong key, wrong team or credential, tampering).
    The message never contains key material or plaintext.
    """


def _b64encode(data: bytes) -> str:
    # Unpadded: the stored tokens contain no '=' and stay copy-paste friendly.
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Strictly decode standard or URL-safe base64, padded or not.

    ``base64.urlsafe_b64decode`` silently discards characters outside the
    alphabet, which would let a corrupted value decode to *something*; here
    any stray character is an error (``binascii.Error``, a ``ValueError``).
    """
    if not text.isascii():
        raise binascii.Error("non-ASCII characters")
    has_std = "+" in text or "/" in text
    has_url = "-" in text or "_" in text
    if has_std and has_url:
        raise binascii.Error("mixes the standard and URL-safe alphabets")
    text = text.rstrip("=")
    if len(text) % 4 == 1:
        raise binascii.Error("invalid length")
    normalised = text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4)
    return base64.b64decode(normalised, validate=True)


class MasterKeyring:
    """The ordered set of master keys; the first one (primary) wraps new keys.

    Build it with :meth:`parse`. ``repr()`` shows only the ids.
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: dict[str, bytes]) -> None:
        if not keys:
            raise ValueError("a master keyring needs at least one key")
        for key_id, key in keys.items():
            if not _MASTER_ID_RE.fullmatch(key_id):
                raise ValueError(
                    "master key ids must be 1-32 characters of letters, digits, '-' or '_'"
                )
            if len(key) != MASTER_KEY_BYTES:
                raise ValueError(
                    f"master key {key_id!r} is {len(key)} bytes; it must be exactly "
                    f"{MASTER_KEY_BYTES} bytes (AES-256)"
                )
        # A copy, so the caller cannot change the ring after validation.
        self._keys: dict[str, bytes] = dict(keys)

    @classmethod
    def parse(cls, value: str) -> MasterKeyring:
        """Parse ``"id1:BASE64KEY,id2:BASE64KEY"`` (standard or URL-safe base64).

        Whitespace around the value and around entries is ignored (env files
        often carry a trailing newline). Errors name the entry's position and,
        when it is well formed, its id; they never echo key text, because a
        malformed entry might be a key pasted without its id.
        """
        value = value.strip()
        if not value:
            raise ValueError(
                "no master keys configured: expected 'id:base64key[,id2:base64key...]'"
            )
        keys: dict[str, bytes] = {}
        positions: dict[str, int] = {}
        for position, raw_entry in enumerate(value.split(","), start=1):
            entry = raw_entry.strip()
            if not entry:
                raise ValueError(f"master key entry #{position} is empty (a stray comma?)")
            key_id, sep, key_text = entry.partition(":")
            key_id = key_id.strip()
            key_text = key_text.strip()
            if not sep:
                raise ValueError(f"master key entry #{position} has no id: expected 'id:base64key'")
            if not _MASTER_ID_RE.fullmatch(key_id):
                raise ValueError(
                    f"master key entry #{position} has an invalid id: ids must be 1-32 "
                    "characters of letters, digits, '-' or '_'"
                )
            if key_id in positions:
                raise ValueError(
                    f"master key id {key_id!r} appears more than once "
                    f"(entries #{positions[key_id]} and #{position})"
                )
            if not key_text:
                raise ValueError(f"master key {key_id!r} (entry #{position}) has no key after ':'")
            try:
                key = _b64decode(key_text)
            except (binascii.Error, ValueError):
                raise ValueError(
                    f"master key {key_id!r} (entry #{position}) is not valid base64"
                ) from None  # the decoder's message could quote key characters
            if len(key) != MASTER_KEY_BYTES:
                raise ValueError(
                    f"master key {key_id!r} (entry #{position}) decodes to {len(key)} bytes; "
                    f"it must be exactly {MASTER_KEY_BYTES} random bytes (AES-256), e.g. "
                    "`head -c32 /dev/urandom | base64`"
                )
            positions[key_id] = position
            keys[key_id] = key
        return cls(keys)

    @property
    def primary_id(self) -> str:
        """The id of the key that wraps new data keys (the first one)."""
        return next(iter(self._keys))

    @property
    def ids(self) -> tuple[str, ...]:
        """All key ids, primary first."""
        return tuple(self._keys)

    def key(self, key_id: str) -> bytes:
        """The raw key for ``key_id``; :class:`DecryptionError` if it is not configured."""
        try:
            return self._keys[key_id]
        except KeyError:
            raise DecryptionError(
                f"master key {key_id!r} is not configured (configured: {', '.join(self.ids)})"
            ) from None

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"MasterKeyring(ids={list(self._keys)!r})"


def generate_data_key() -> bytes:
    """A fresh random 256-bit data key."""
    return secrets.token_bytes(DATA_KEY_BYTES)


def _check_key(key: bytes, what: str) -> None:
    # A programming error rather than a decryption failure, hence ValueError.
    if len(key) != DATA_KEY_BYTES:
        raise ValueError(f"{what} must be {DATA_KEY_BYTES} bytes, got {len(key)}")


def _check_id(value: str, what: str) -> None:
    if not value:
        raise ValueError(f"{what} must not be empty")
    if ":" in value:
        # The AAD joins ids with ':'; a colon inside one would make two
        # different (team, credential) pairs produce the same AAD.
        raise ValueError(f"{what} must not contain ':'")


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> str:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return _b64encode(nonce + AESGCM(key).encrypt(nonce, plaintext, aad))


def _open(key: bytes, payload: str, aad: bytes, what: str) -> bytes:
    """Decrypt an unpadded base64 ``nonce || ciphertext`` payload, loudly."""
    try:
        blob = _b64decode(payload)
    except (binascii.Error, ValueError):
        raise DecryptionError(f"{what} is malformed: its payload is not valid base64") from None
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionError(f"{what} is malformed: its payload is too short")
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except InvalidTag:
        raise DecryptionError(
            f"{what} failed authentication: wrong key, wrong team or credential, "
            "or the stored value was altered"
        ) from None


def _dek_aad(team_id: str) -> bytes:
    return _DEK_AAD_PREFIX + team_id.encode("utf-8")


def wrap_data_key(keyring: MasterKeyring, dek: bytes, *, team_id: str) -> str:
    """Wrap a team's data key under the primary master key.

    Returns ``"dk1:{master_id}:{payload}"``; the master id lets any key in the
    ring unwrap it later, and lets rotation skip keys already re-wrapped.
    """
    _check_key(dek, "a data key")
    _check_id(team_id, "team_id")
    master_id = keyring.primary_id
    payload = _seal(keyring.key(master_id), dek, _dek_aad(team_id))
    return f"{WRAPPED_KEY_PREFIX}:{master_id}:{payload}"


def _split_wrapped(wrapped: str) -> tuple[str, str]:
    parts = wrapped.split(":")
    if len(parts) != 3 or parts[0] != WRAPPED_KEY_PREFIX:
        raise DecryptionError(
            f"wrapped data key is malformed: expected '{WRAPPED_KEY_PREFIX}:<master id>:<payload>'"
        )
    _, master_id, payload = parts
    if not _MASTER_ID_RE.fullmatch(master_id) or not payload:
        raise DecryptionError("wrapped data key is malformed: bad master key id or empty payload")
    return master_id, payload


def wrapped_key_master_id(wrapped: str) -> str:
    """The id of the master key that wrapped ``wrapped`` (no decryption)."""
    return _split_wrapped(wrapped)[0]


def unwrap_data_key(keyring: MasterKeyring, wrapped: str, *, team_id: str) -> bytes:
    """Recover a team's data key; :class:`DecryptionError` on any failure."""
    _check_id(team_id, "team_id")
    master_id, payload = _split_wrapped(wrapped)
    if master_id not in keyring:
        raise DecryptionError(
            f"the data key of team {team_id} was wrapped with master key {master_id!r}, "
            f"which is not configured (configured: {', '.join(keyring.ids)})"
        )
    dek = _open(
        keyring.key(master_id),
        payload,
        _dek_aad(team_id),
        f"the data key of team {team_id} (master key {master_id!r})",
    )
    if len(dek) != DATA_KEY_BYTES:
        # Authenticated but the wrong size: written by something else entirely.
        raise DecryptionError(f"the data key of team {team_id} has the wrong length")
    return dek


def rewrap_data_key(keyring: MasterKeyring, wrapped: str, *, team_id: str) -> str:
    """Re-wrap a data key under the current primary master key (master key rotation).

    The data key itself does not change, so the team's secrets stay valid.
    """
    return wrap_data_key(
        keyring, unwrap_data_key(keyring, wrapped, team_id=team_id), team_id=team_id
    )


def _secret_aad(team_id: str, credential_id: str) -> bytes:
    return _SECRET_AAD_PREFIX + team_id.encode("utf-8") + b":" + credential_id.encode("utf-8")


def encrypt_secret(dek: bytes, plaintext: str, *, team_id: str, credential_id: str) -> str:
    """Encrypt a credential's secret with the team's data key.

    Returns ``"v1:{payload}"``. The version prefix lets a future scheme coexist
    with stored v1 values.
    """
    _check_key(dek, "a data key")
    _check_id(team_id, "team_id")
    _check_id(credential_id, "credential_id")
    payload = _seal(dek, plaintext.encode("utf-8"), _secret_aad(team_id, credential_id))
    return f"{CIPHERTEXT_VERSION}:{payload}"


def decrypt_secret(dek: bytes, token: str, *, team_id: str, credential_id: str) -> str:
    """Decrypt a secret made by :func:`encrypt_secret`; :class:`DecryptionError` on failure."""
    _check_key(dek, "a data key")
    _check_id(team_id, "team_id")
    _check_id(credential_id, "credential_id")
    what = f"the secret of credential {credential_id} (team {team_id})"
    version, sep, payload = token.partition(":")
    if not sep or not payload:
        raise DecryptionError(f"{what} is malformed: expected '<version>:<payload>'")
    if version != CIPHERTEXT_VERSION:
        label = repr(version) if _VERSION_LABEL_RE.fullmatch(version) else "an unrecognised label"
        raise DecryptionError(f"{what} uses an unknown encryption version ({label})")
    plaintext = _open(dek, payload, _secret_aad(team_id, credential_id), what)
    try:
        return plaintext.decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptionError(f"{what} did not decrypt to UTF-8 text") from None


_TEAM_DATA_AAD_PREFIX = b"baton:team-data:v1:"


def seal_team_data(dek: bytes, plaintext: bytes, *, team_id: str, purpose: str) -> str:
    """Encrypt short-lived team content (a conversation's reasoning kept between turns)
    with the team's data key. The associated data binds it to the team and its purpose,
    so it never opens as anything else."""
    _check_key(dek, "a data key")
    _check_id(team_id, "team_id")
    _check_id(purpose, "purpose")
    aad = _TEAM_DATA_AAD_PREFIX + team_id.encode("utf-8") + b":" + purpose.encode("utf-8")
    return f"{CIPHERTEXT_VERSION}:{_seal(dek, plaintext, aad)}"


def open_team_data(dek: bytes, token: str, *, team_id: str, purpose: str) -> bytes:
    """Decrypt what :func:`seal_team_data` made; :class:`DecryptionError` on failure."""
    _check_key(dek, "a data key")
    _check_id(team_id, "team_id")
    _check_id(purpose, "purpose")
    version, sep, payload = token.partition(":")
    what = f"team data ({purpose}) of team {team_id}"
    if not sep or version != CIPHERTEXT_VERSION:
        raise DecryptionError(f"{what} is malformed or of an unknown version")
    aad = _TEAM_DATA_AAD_PREFIX + team_id.encode("utf-8") + b":" + purpose.encode("utf-8")
    return _open(dek, payload, aad, what)
