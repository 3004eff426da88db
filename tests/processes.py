"""Baton as a real subprocess, for the tests that need one: several processes sharing limits,
a crash, signals and graceful shutdown, multi-worker metrics, the shipped command lines.

``BatonProcess`` runs ``python -m gateway.serve config.asgi:application`` (uvicorn) against the test database and Redis
(like production: its own process, signals, lifespan); ``baton()`` is the same as a context
manager that kills it on the way out. Ports and the other servers (Redis) come from
``scripts/services.py``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.db import connection

from scripts.services import Server, free_port

ROOT = Path(__file__).resolve().parents[1]


def subprocess_database_url() -> str:
    """The test database, as a URL for a subprocess."""
    database = connection.settings_dict
    return f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"


class BatonProcess(Server):
    """Baton under uvicorn (``gateway.serve``) in a subprocess; stderr (the logs) kept in a
    file."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        workers: int = 1,
        *,
        port: int | None = None,
        command: list[str] | None = None,
        environ: dict[str, str] | None = None,
    ) -> None:
        """By default Baton runs on the test database with the test settings, and ``env`` adds
        to them. ``environ`` replaces that environment as a whole and ``command`` the uvicorn
        command line (listening on ``port``): the production smoke test passes both."""
        port = port or free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="baton-ops-", suffix=".log", delete=False)  # noqa: SIM115
        self.env = environ or {
            **os.environ,
            "BATON_TESTING": "1",
            "DATABASE_URL": subprocess_database_url(),
            "BATON_ALLOW_LOOPBACK_UPSTREAMS": "true",
            "BATON_CACHE_CHECK_SECONDS": "0.1",
            **(env or {}),
        }
        if command is None:
            command = [
                sys.executable,
                "-m",
                "gateway.serve",  # uvicorn's command line, as deployed (gateway/serve.py)
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--lifespan",
                "on",
                "--no-access-log",
                "--no-proxy-headers",
                "--timeout-graceful-shutdown",
                "30",
            ]
            if workers > 1:
                command += ["--workers", str(workers)]
        proc = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        super().__init__(proc, port)

    def wait_ready(self, path: str = "/healthz", timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"baton exited at start:\n{self.logs()}")
            try:
                if httpx.get(self.base_url + path, timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"baton did not start:\n{self.logs()}")

    def logs(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 20) -> None:
        super().stop(timeout)
        Path(self.log.name).unlink(missing_ok=True)

    def __enter__(self) -> BatonProcess:
        self.wait_ready()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


@contextlib.contextmanager
def baton(**env: str) -> Iterator[BatonProcess]:
    """Baton on the test database and ``settings.REDIS_URL``, killed (not stopped) at the end."""
    process = BatonProcess({"REDIS_URL": settings.REDIS_URL, **env})
    try:
        process.wait_ready()
        yield process
    finally:
        process.kill()
        process.stop()
