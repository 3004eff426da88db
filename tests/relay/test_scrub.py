"""wire/scrub.py: what of a provider secret may appear in text passed on from the provider."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from relay import credential_test
from wire.base import MAX_MESSAGE_CHARS, UpstreamError
from wire.scrub import MIN_RUN, scrub

SECRET = "sk-proj-Zx81+Qm/Tb47=Lw0pHc3Vn6Ry"
HINT = "…" + SECRET[-4:]
LOWER_ESCAPES = re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(SECRET, safe=""))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Incorrect API key provided: {SECRET}.", f"Incorrect API key provided: {HINT}."),
        (f"key {SECRET[:12]}... is invalid", f"key {HINT}... is invalid"),  # a prefix
        (f"key ...{SECRET[-10:]} is invalid", f"key ...{HINT} is invalid"),  # a suffix
        (f"({SECRET[9:20]})", f"({HINT})"),  # from the middle
        (f"{SECRET}{SECRET} and {SECRET[:MIN_RUN]}", f"{HINT} and {HINT}"),
        (f"key={quote(SECRET, safe='')}", f"key={HINT}"),
        (f"key={quote(SECRET)}", f"key={HINT}"),  # '/' left as it is
        (f"key={LOWER_ESCAPES}", f"key={HINT}"),
        # One character changed: both halves are still runs of the secret.
        (f"{SECRET[:14]}#{SECRET[15:]}", f"{HINT}#{HINT}"),
        (f"key={LOWER_ESCAPES[:14]}...", f"key={HINT}..."),
    ],
)
def test_every_echo_of_the_secret_is_replaced(text: str, expected: str) -> None:
    assert scrub(text, SECRET) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Rate limit reached for requests",
        f"Incorrect API key provided: {SECRET[:7]}{'*' * 20}{SECRET[-4:]}.",  # OpenAI's own mask
    ],
)
def test_text_without_an_echo_is_left_alone(text: str) -> None:
    assert scrub(text, SECRET) == text


def test_short_secrets_are_matched_whole_and_tiny_ones_not_at_all() -> None:
    assert scrub("your key abc123 is wrong", "abc123") == "your key …c123 is wrong"
    assert scrub("your key abc12 is wrong", "abc123") == "your key abc12 is wrong"
    assert scrub("a b c", "a") == "a b c"
    assert scrub("anything", "") == "anything"


def test_an_upstream_error_is_scrubbed_in_every_field_and_its_args() -> None:
    error = UpstreamError(
        401,
        f"bad key {SECRET} " + "x" * (2 * MAX_MESSAGE_CHARS),
        kind="auth",
        code=f"key:{SECRET[:10]}",
        param=quote(SECRET, safe=""),
    )
    assert error.scrub_secret(SECRET) is error
    assert error.message.startswith(f"bad key {HINT} x") and len(error.message) < 2001
    assert (error.code, error.param) == (f"key:{HINT}", HINT)
    assert SECRET[:10] not in str(error) and SECRET[:10] not in repr(error)
    assert SECRET[:10] not in error.openai_body().decode()


def test_the_credential_test_uses_the_same_scrubber() -> None:
    assert credential_test.scrub is scrub
