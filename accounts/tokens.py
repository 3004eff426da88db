"""Secret tokens that are shown once and stored only as a keyed digest.

A token is ``<prefix><random>``. The prefix makes it recognisable to secret
scanners; the first characters of the random part double as a lookup key so a
presented token finds its row with one indexed query (or one dictionary hit),
and the HMAC (keyed by ``BATON_API_KEY_PEPPER``, not ``SECRET_KEY``) proves it.
A database dump therefore holds nothing that authenticates.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

from django.conf import settings

_ALPHABET = string.ascii_letters + string.digits
RANDOM_LENGTH = 32  # 32 base62 characters: about 190 bits
LOOKUP_LENGTH = 12


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown to the user once, never stored
    lookup: str
    digest: str
    last4: str


def digest(token: str) -> str:
    pepper = settings.BATON_API_KEY_PEPPER.encode()
    return hmac.new(pepper, token.encode(), hashlib.sha256).hexdigest()


def issue(prefix: str) -> IssuedToken:
    random_part = "".join(secrets.choice(_ALPHABET) for _ in range(RANDOM_LENGTH))
    token = prefix + random_part
    return IssuedToken(
        token=token, lookup=random_part[:LOOKUP_LENGTH], digest=digest(token), last4=token[-4:]
    )


def split(token: str, prefix: str) -> str | None:
    """The lookup key of a presented token, or None if it cannot be one of ours."""
    if not token.startswith(prefix) or len(token) != len(prefix) + RANDOM_LENGTH:
        return None
    return token[len(prefix) : len(prefix) + LOOKUP_LENGTH]


def matches(token: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(token), stored_digest)
