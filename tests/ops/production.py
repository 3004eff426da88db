"""Baton's production environment, for tests that run it in subprocesses as deploy/ does.

The environment is built the way a deployment builds it: ``deploy/baton.env.example`` with its
``change-me`` placeholders filled with fresh random secrets, the image's ``ENV`` (a data
directory), and nothing of the test run's own: no ``BATON_TESTING``, so ``config/settings.py``
takes none of its testing shortcuts (plain static storage, fixed secrets, fast password hashing).
Mail goes to files instead of the example's SMTP host, which does not exist.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

# What a container inherits from its image besides Baton's settings.
INHERITED = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR")
SMTP = ("EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD", "EMAIL_USE_TLS")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def interpolate(text: str) -> str:
    """Compose's ``${NAME:-default}`` with nothing set in deploy/.env: the default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", text)


def example_env() -> dict[str, str]:
    """``deploy/baton.env.example`` as docker compose reads an env file."""
    values = {}
    for line in (DEPLOY / "baton.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def fresh_secrets() -> dict[str, str]:
    """Secrets generated the way docs/configuration.md and the example file say to."""
    return {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "BATON_MASTER_KEYS": "k1:" + base64.b64encode(os.urandom(32)).decode(),
        "BATON_API_KEY_PEPPER": secrets.token_urlsafe(32),
        "BATON_METRICS_TOKEN": secrets.token_urlsafe(32),
    }


def container_env() -> dict[str, str]:
    """What a process in the image has before any of Baton's settings."""
    env = {name: os.environ[name] for name in INHERITED if name in os.environ}
    # The image's python first on PATH, as in the container (the Dockerfile runs `python ...`).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return env


def production_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    env = container_env()
    env.update(example_env())
    for name in SMTP:
        env.pop(name, None)
    env["EMAIL_FILE_PATH"] = str(data_dir / "mail")
    env.update(fresh_secrets())
    env["BATON_DATA_DIR"] = str(data_dir)
    env.update(overrides)
    left = sorted(name for name, value in env.items() if "change-me" in value)
    assert not left, f"baton.env.example has placeholders these tests do not fill: {left}"
    return env


def manage(
    env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python manage.py ARGS`` under ``env``; output captured, never raises on failure."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
