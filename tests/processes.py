"""Baton as a real subprocess, for the tests that need one: several processes sharing limits,
a crash, signals and graceful shutdown, multi-worker metrics, the shipped command lines.

``BatonProcess`` runs ``python -m gateway.serve config.asgi:application`` (uvicorn) against the test database and Redis
(like production: its own process, signals, lifespan); ``baton()`` is the same as a context
manager that kills it on the way out; ``BatonProcess.workers`` finds its worker processes (to
kill one; ``worker_serving`` finds the one serving a given client). The rest of the production stack runs the same way: ``Program`` with
``consumer_command`` (the usage consumer), ``celery_command`` (a Celery worker or beat), and
``FakeUpstreamProcess`` (``python -m fake_upstream`` with a per-request delay). Ports and the
other servers (PostgreSQL, Redis) come from ``scripts/services.py``.
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

from scripts.services import Server, free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]


def subprocess_database_url() -> str:
    """The test database, as a URL for a subprocess."""
    database = connection.settings_dict
    return f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"


def baton_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """What a Baton process of a test runs with: the test database and settings, loopback
    upstreams allowed, a fast cache poll; ``env`` adds to it (another database, a Redis...)."""
    return {
        **os.environ,
        "BATON_TESTING": "1",
        "DATABASE_URL": subprocess_database_url(),
        "BATON_ALLOW_LOOPBACK_UPSTREAMS": "true",
        "BATON_CACHE_CHECK_SECONDS": "0.1",
        **(env or {}),
    }


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
        self.env = environ or baton_environment(env)
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

    def workers(self) -> set[int]:
        """uvicorn's worker processes (with ``workers`` > 1), not multiprocessing's resource
        tracker; the master starts a new one for each that dies."""
        master = self.proc.pid
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        found = set()
        for pid in map(int, children):
            with contextlib.suppress(FileNotFoundError):
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.add(pid)
        return found

    def worker_serving(self, client_port: int) -> int | None:
        """The worker holding the connection a client made from ``client_port`` (read from
        /proc: the socket's inode in the kernel's TCP table, and which worker has it open)."""
        sockets = set()
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)) == (
                self.port,
                client_port,
            ):
                sockets.add(f"socket:[{inode}]")
        for pid in self.workers():
            with contextlib.suppress(OSError):
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    with contextlib.suppress(OSError):
                        if os.readlink(fd) in sockets:
                            return pid
        return None

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


class Program:
    """A process of the stack that serves no port (the usage consumer, a Celery worker or
    beat), started at once; its output kept in a file for a failing test to show."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.command = command
        self.log = tempfile.NamedTemporaryFile(prefix="baton-program-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def logs(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no shutdown (a crash)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM (the program finishes what it holds), SIGKILL after ``timeout``; the log
        file goes."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        Path(self.log.name).unlink(missing_ok=True)


def consumer_command(name: str) -> list[str]:
    """The usage consumer as deployed (``python manage.py consume_usage``), under ``name`` in
    the consumer group."""
    return [sys.executable, "manage.py", "consume_usage", "--name", name]


def celery_command(role: str, *args: str) -> list[str]:
    """``celery -A config worker|beat`` as deployed, with ``args`` added."""
    return [sys.executable, "-m", "celery", "-A", "config", role, "--loglevel", "INFO", *args]


class FakeUpstreamProcess(Server):
    """``python -m fake_upstream`` in a process of its own, answering every request after
    ``latency_ms`` and writing ``tps`` tokens a second, so requests stay in flight for a while
    (the ``fake`` fixture's server shares the test process and its GIL)."""

    def __init__(self, latency_ms: float = 0, tps: float = 0) -> None:
        port = free_port()
        command = [sys.executable, "-m", "fake_upstream", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--latency-ms", str(latency_ms), "--tps", str(tps)]
        super().__init__(subprocess.Popen(command, cwd=ROOT), port)
        wait_for_port(port, self.proc, "the fake upstream")
        self.http = httpx.Client(base_url=self.base_url, timeout=10)

    def requests(self) -> list[dict[str, Any]]:
        """Every request it received, as ``GET /_fake/requests`` lists them."""
        history: list[dict[str, Any]] = self.http.get("/_fake/requests").json()
        return history

    def __enter__(self) -> FakeUpstreamProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.http.close()
        self.stop()
