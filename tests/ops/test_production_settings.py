"""config/settings.py as production loads it: DEBUG off and no testing shortcuts.

Every other test runs with BATON_TESTING on, which gives fixed secrets and skips the checks
below; here each case starts Django in a fresh interpreter with a production environment
(tests/ops/production.py), so a refusal is what an operator would see at start.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.ops.production import ROOT, example_env, production_env

pytestmark = pytest.mark.production

# Start Django the way every entry point does (manage.py, uvicorn, celery), then report what
# the security-relevant settings came out as.
PROBE = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({
    "DEBUG": s.DEBUG,
    "TESTING": s.TESTING,
    "staticfiles": s.STORAGES["staticfiles"]["BACKEND"],
    "hasher": s.PASSWORD_HASHERS[0],
    "SECRET_KEY": s.SECRET_KEY,
    "SECURE_HSTS_SECONDS": s.SECURE_HSTS_SECONDS,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": s.SECURE_HSTS_INCLUDE_SUBDOMAINS,
    "SECURE_HSTS_PRELOAD": s.SECURE_HSTS_PRELOAD,
    "SECURE_PROXY_SSL_HEADER": s.SECURE_PROXY_SSL_HEADER,
    "SESSION_COOKIE_SECURE": s.SESSION_COOKIE_SECURE,
    "SILENCED_SYSTEM_CHECKS": s.SILENCED_SYSTEM_CHECKS,
}))
"""


def start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def loaded(env: dict[str, str]) -> dict[str, Any]:
    result = start(env)
    assert result.returncode == 0, result.stderr
    values: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return values


def refusal(env: dict[str, str]) -> str:
    """The last line of the traceback: the message an operator reads."""
    result = start(env)
    assert result.returncode != 0, f"started although it should refuse:\n{result.stdout}"
    assert "Traceback" in result.stderr
    return result.stderr.strip().splitlines()[-1]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return production_env(tmp_path)


def without(env: dict[str, str], name: str) -> dict[str, str]:
    return {key: value for key, value in env.items() if key != name}


def test_a_complete_production_environment_loads(env: dict[str, str]) -> None:
    assert "BATON_TESTING" not in env and env["DEBUG"] == "false"
    values = loaded(env)
    assert values["DEBUG"] is False and values["TESTING"] is False
    assert values["staticfiles"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    assert "MD5" not in values["hasher"]
    assert values["SECRET_KEY"] == env["SECRET_KEY"]
    assert values["SESSION_COOKIE_SECURE"] is True


def test_debug_unset_is_production(env: dict[str, str]) -> None:
    values = loaded(without(env, "DEBUG"))
    assert values["DEBUG"] is False and values["TESTING"] is False


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("SECRET_KEY", None, "SECRET_KEY must be set"),
        ("SECRET_KEY", "", "SECRET_KEY must be set"),
        ("SECRET_KEY", "x", "SECRET_KEY must be at least 50 characters"),
        ("SECRET_KEY", "change-me", "SECRET_KEY must be at least 50 characters"),
        ("SECRET_KEY", "ab" * 40, "SECRET_KEY must be at least 50 characters"),
        ("SECRET_KEY", "django-insecure-" + "k3y" * 20, "SECRET_KEY must not start"),
        ("ALLOWED_HOSTS", None, "ALLOWED_HOSTS must be set"),
        ("BATON_MASTER_KEYS", None, "BATON_MASTER_KEYS must be set"),
        ("BATON_MASTER_KEYS", "k1:change-me", "BATON_MASTER_KEYS is invalid"),
        ("BATON_MASTER_KEYS", "k1:" + "QUFB" * 4, "BATON_MASTER_KEYS is invalid"),
        ("BATON_MASTER_KEYS", "no-colon", "BATON_MASTER_KEYS is invalid"),
        ("BATON_API_KEY_PEPPER", None, "BATON_API_KEY_PEPPER must be set"),
        ("BATON_API_KEY_PEPPER", "x", "BATON_API_KEY_PEPPER must be at least 32 characters"),
        ("BATON_API_KEY_PEPPER", "change-me", "BATON_API_KEY_PEPPER must be at least 32"),
        ("BATON_API_KEY_PEPPER", "p" * 40, "BATON_API_KEY_PEPPER must be at least 32"),
        ("BATON_METRICS_TOKEN", "change-me", "BATON_METRICS_TOKEN must be at least 24"),
        ("BATON_METRICS_TOKEN", "t" * 30, "BATON_METRICS_TOKEN must be at least 24"),
        ("SECURE_HSTS_SECONDS", "a year", "SECURE_HSTS_SECONDS must be an integer"),
        ("SECURE_HSTS_SECONDS", "-1", "SECURE_HSTS_SECONDS must be at least 0"),
    ],
)
def test_each_unusable_setting_stops_the_start_naming_the_variable(
    env: dict[str, str], name: str, value: str | None, says: str
) -> None:
    broken = without(env, name) if value is None else {**env, name: value}
    message = refusal(broken)
    assert says in message, message
    # The message never repeats the secret it refused.
    if value and len(value) > 12:
        assert value not in message


def test_the_example_file_unchanged_does_not_start(tmp_path: Path) -> None:
    """An operator who copies baton.env.example and forgets a placeholder is stopped."""
    env = {**production_env(tmp_path), **example_env()}
    assert "SECRET_KEY" in refusal(env)


def test_a_secret_may_come_from_a_file(env: dict[str, str], tmp_path: Path) -> None:
    secret_file = tmp_path / "secret_key"
    secret_file.write_text(env["SECRET_KEY"] + "\n")
    values = loaded({**without(env, "SECRET_KEY"), "SECRET_KEY_FILE": str(secret_file)})
    assert values["SECRET_KEY"] == env["SECRET_KEY"]
    secret_file.write_text("short\n")
    assert "SECRET_KEY must be at least 50" in refusal(
        {**without(env, "SECRET_KEY"), "SECRET_KEY_FILE": str(secret_file)}
    )


def test_hsts_is_on_behind_a_tls_proxy(env: dict[str, str]) -> None:
    assert env["BEHIND_TLS_PROXY"] == "true"  # as the example deployment has it
    values = loaded(env)
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SECURE_HSTS_SECONDS"] == 31_536_000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False
    assert values["SECURE_HSTS_PRELOAD"] is False
    # settings.py explains each; test_production_smoke runs check --deploy with the rest.
    assert sorted(values["SILENCED_SYSTEM_CHECKS"]) == [
        "security.W005",
        "security.W008",
        "security.W021",
    ]


def test_hsts_is_off_without_a_tls_proxy_and_can_be_set(env: dict[str, str]) -> None:
    direct = loaded({**env, "BEHIND_TLS_PROXY": "false"})
    assert direct["SECURE_HSTS_SECONDS"] == 0
    # Without a TLS proxy nothing redirects to HTTPS: check --deploy says so again.
    assert "security.W008" not in direct["SILENCED_SYSTEM_CHECKS"]
    values = loaded(
        {
            **env,
            "SECURE_HSTS_SECONDS": "600",
            "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
            "SECURE_HSTS_PRELOAD": "true",
        }
    )
    assert values["SECURE_HSTS_SECONDS"] == 600
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_HSTS_PRELOAD"] is True
