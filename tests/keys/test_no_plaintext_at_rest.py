"""A full dump of the database holds no provider secret and no API key."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse

from tests.conftest import Cast, client_for
from tests.keys.conftest import json_post

PAGE_SECRET = "sk-PAGE-plaintext-Zq8wX1vB7nM3kL5p"
API_SECRET = "sk-API-plaintext-Hy6tR2eW9qA4sD0f"
REPLACED_SECRET = "sk-REPLACED-plaintext-Jk3Lm8Nb5Vc1"


def _pg_dump() -> str:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"))
    found = candidates[-1] if candidates else shutil.which("pg_dump")
    if not found:
        pytest.skip("pg_dump is not installed")
    return found


def dump_database() -> str:
    if connection.vendor != "postgresql":
        pytest.skip("the dump test needs PostgreSQL (run it through scripts/services.py)")
    db = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
    result = subprocess.run(
        [
            _pg_dump(),
            "--data-only",
            "--no-owner",
            "-h",
            db.get("HOST") or "127.0.0.1",
            "-p",
            str(db.get("PORT") or 5432),
            "-U",
            db["USER"],
            db["NAME"],
        ],
        capture_output=True,
        check=True,
        env=env,
        timeout=60,
    )
    return result.stdout.decode()


# Committed rows are what pg_dump sees (the cast fixture re-seeds the catalog).
@pytest.mark.django_db(transaction=True)
def test_a_database_dump_contains_no_plaintext_secret_or_key(cast: Cast, tmp_path: Path) -> None:
    client = client_for(cast.alice)
    client.post(
        reverse("credential_create", args=[cast.acme.pk]),
        {"name": "Page", "provider": "openai", "secret": PAGE_SECRET, "enabled": "on"},
    )
    created = json_post(
        client,
        reverse("credential-list", args=[cast.acme.pk]),
        {"name": "Api", "provider": "qwen", "region": "intl", "secret": API_SECRET},
    ).json()
    json_post(
        client,
        reverse("credential-secret", args=[cast.acme.pk, created["id"]]),
        {"secret": REPLACED_SECRET},
    )
    page_key = (
        client.post(
            reverse("api_key_create", args=[cast.acme.pk]),
            {"name": "page", "budget_period": "month"},
        )
        .context["issued"]
        .key
    )
    api_key = json_post(
        client, reverse("api-key-list", args=[cast.acme.pk]), {"name": "api"}
    ).json()["key"]

    dump = dump_database()
    (tmp_path / "dump.sql").write_text(dump)  # kept for a failing run's post-mortem
    assert "provider_credential" in dump or "relay_providercredential" in dump
    assert "v1:" in dump  # the ciphertexts are there...
    for plaintext in (PAGE_SECRET, API_SECRET, REPLACED_SECRET, page_key, api_key):
        assert plaintext not in dump  # ...but not what they protect
    # Nor the random part of a key on its own (the prefix is not secret).
    for key in (page_key, api_key):
        assert key.removeprefix("sk-baton-") not in dump
