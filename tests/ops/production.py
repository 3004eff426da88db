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


def image_python(where: Path) -> str:
    """A Python with the image's packages only, made in ``where``: the runtime dependencies
    exactly as the Dockerfile installs them (``uv export --locked --no-emit-project`` of
    uv.lock, hash-checked, no dev extras), so that a module only the dev extras provide
    fails here as it would in the image. uv installs from its cache (filled by
    ``make install``)."""
    uv = str(ROOT / ".venv" / "bin" / "uv")
    requirements = where / "requirements.txt"

    def step(*args: str) -> None:
        subprocess.run([uv, *args], cwd=ROOT, check=True, capture_output=True, timeout=600)

    step("export", "--locked", "--no-emit-project", "--quiet", "-o", str(requirements))
    step("venv", "--quiet", "--python", sys.executable, str(where / "venv"))
    python = str(where / "venv" / "bin" / "python")
    step(
        "pip", "install", "--quiet", "--python", python, "--require-hashes", "-r", str(requirements)
    )
    return python


def container_env(python: str = sys.executable) -> dict[str, str]:
    """What a process in the image has before any of Baton's settings; ``python`` is the
    image's (first on PATH, as in the container: the Dockerfile runs `python ...`)."""
    env = {name: os.environ[name] for name in INHERITED if name in os.environ}
    env["PATH"] = os.pathsep.join([str(Path(python).parent), os.environ.get("PATH", "")])
    return env


def production_env(
    data_dir: Path, python: str = sys.executable, **overrides: str
) -> dict[str, str]:
    env = container_env(python)
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
    env: dict[str, str], *args: str, timeout: float = 300, python: str = sys.executable
) -> subprocess.CompletedProcess[str]:
    """``python manage.py ARGS`` under ``env``; output captured, never raises on failure."""
    return subprocess.run(
        [python, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
