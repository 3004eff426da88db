"""Baton and Redis as separate OS processes, for the tests that need more
than one process (shared limits, a crash) or a Redis they can kill."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited at start with status {proc.returncode}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.2),
        ):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@contextlib.contextmanager
def baton(**env: str) -> Iterator[Process]:
    """``uvicorn config.asgi:application`` on the test database and Redis."""
    database = connection.settings_dict
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "BATON_TESTING": "1",
        "BATON_ALLOW_LOOPBACK_UPSTREAMS": "1",
        **env,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "on",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=environment,
    )
    process = Process(proc, port)
    try:
        wait_for_port(port, proc)
        yield process
    finally:
        process.kill()


@contextlib.contextmanager
def redis_server(*options: str, port: int | None = None) -> Iterator[Process]:
    """A throwaway redis-server the test may stop, freeze or kill (``options`` are
    redis-server's own, e.g. ``"--requirepass", "secret"``)."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed"
    port = port or free_port()
    with tempfile.TemporaryDirectory() as directory:
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                directory,
                *options,
            ],
            stdout=subprocess.DEVNULL,
        )
        process = Process(proc, port)
        try:
            wait_for_port(port, proc)
            yield process
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)
            process.kill()
