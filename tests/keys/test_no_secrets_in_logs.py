"""No log record, at any level from any logger, carries a secret or a key."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from django.db import connection
from django.urls import reverse

from tests.conftest import Cast, client_for
from tests.keys.conftest import json_post

SECRET = "sk-LOGCHECK-provider-secret-Tq7Wm2Xp"
BAD_SECRET = "bad-LOGCHECK-rejected-secret-Vn4Rs8"
REPLACED = "sk-LOGCHECK-replacement-secret-Lb6Yc1"


@pytest.fixture
def sql_logged() -> Iterator[None]:
    # Log every SQL statement with its parameters, as DEBUG=True would.
    connection.force_debug_cursor = True
    yield
    connection.force_debug_cursor = False


def text_of(record: logging.LogRecord) -> str:
    parts = [record.getMessage(), repr(record.args), str(record.msg)]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


def test_a_full_credential_and_key_lifecycle_logs_no_secret(
    cast: Cast, fake_url: str, caplog: pytest.LogCaptureFixture, sql_logged: None
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    client = client_for(cast.alice)

    client.post(
        reverse("credential_create", args=[cast.acme.pk]),
        {
            "name": "Fake",
            "provider": "custom",
            "base_url": fake_url,
            "secret": SECRET,
            "enabled": "on",
        },
    )
    bad = json_post(
        client,
        reverse("credential-list", args=[cast.acme.pk]),
        {"name": "Bad", "provider": "custom", "base_url": fake_url, "secret": BAD_SECRET},
    ).json()
    from relay.models import ProviderCredential

    good = ProviderCredential.objects.get(name="Fake")
    client.post(reverse("credential_test", args=[cast.acme.pk, good.pk]))
    json_post(client, reverse("credential-test", args=[cast.acme.pk, bad["id"]]), {})
    client.post(reverse("credential_secret", args=[cast.acme.pk, good.pk]), {"secret": REPLACED})
    client.post(reverse("credential_test", args=[cast.acme.pk, good.pk]))
    client.post(reverse("credential_delete", args=[cast.acme.pk, good.pk]))
    client.delete(reverse("credential-detail", args=[cast.acme.pk, bad["id"]]))

    key = json_post(client, reverse("api-key-list", args=[cast.acme.pk]), {"name": "ci"}).json()[
        "key"
    ]
    page_key = (
        client.post(
            reverse("api_key_create", args=[cast.acme.pk]),
            {"name": "page", "budget_period": "month"},
        )
        .context["issued"]
        .key
    )

    assert cast.acme.audit_events.filter(action="credential.tested").count() == 3
    assert len(caplog.records) > 20, "the capture should see SQL and request logs"
    for record in caplog.records:
        text = text_of(record)
        for secret in (SECRET, BAD_SECRET, REPLACED, key, page_key):
            assert secret not in text, f"{record.name}: {record.getMessage()[:200]}"
