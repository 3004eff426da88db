"""Key resolution: refusals, and revocation seen by another process within a second."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from accounts import actions
from accounts.models import ApiKey, User
from gateway.cache import RelayCache
from tests.relay.conftest import make_key

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def team(transactional_db: None) -> Any:
    owner = User.objects.create_user("keys@example.com", "x-sturdy-passphrase-1")
    return actions.create_team(owner, name="Keys")


def resolve(presented: str, ip: str = "203.0.113.9") -> str | None:
    async def run() -> str | None:
        key = await RelayCache().key(presented)
        return "unknown" if key is None else key.refusal(ip, time.time())

    return asyncio.run(run())


def test_valid_key_resolves(team: Any) -> None:
    assert resolve(make_key(team)) is None


def test_revoked_expired_and_wrong_ip_keys_are_refused(team: Any) -> None:
    revoked = make_key(team, name="revoked", revoked_at=timezone.now())
    expired = make_key(team, name="expired", expires_at=timezone.now() - timedelta(seconds=1))
    fenced = make_key(team, name="fenced", ip_allowlist=["10.0.0.0/8", "2001:db8::/32"])
    assert resolve(revoked) == "This API key has been revoked."
    assert resolve(expired) == "This API key has expired."
    assert resolve(fenced) == "This API key is not allowed from this address."
    assert resolve(fenced, ip="10.1.2.3") is None
    assert resolve(fenced, ip="2001:db8::7") is None


def test_unknown_and_malformed_keys_resolve_to_nothing(team: Any) -> None:
    assert resolve("sk-baton-" + "A" * 32) == "unknown"
    assert resolve("not-a-key") == "unknown"
    real = make_key(team)
    assert resolve(real[:-1] + ("x" if real[-1] != "x" else "y")) == "unknown"


def test_revoke_is_seen_by_another_process_within_a_second(team: Any, redis_client: Any) -> None:
    presented = make_key(team)
    database = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "BATON_TESTING": "1",
    }
    probe = subprocess.Popen(
        [sys.executable, "-m", "tests.relay.revoke_probe", presented],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert probe.stdout is not None
        first = probe.stdout.readline()
        assert first.startswith("ok"), first  # printed once its watcher has the version
        key = ApiKey.objects.get(lookup=presented[len(ApiKey.PREFIX) : len(ApiKey.PREFIX) + 12])
        revoked_at = time.time()
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        line = probe.stdout.readline()
        assert line.startswith("refused"), line
        seen_after = float(line.split()[1]) - revoked_at
        assert seen_after < 1.0, f"revocation took {seen_after:.3f}s to reach the other process"
    finally:
        probe.kill()
        probe.wait()
