"""Throwaway PostgreSQL and Redis servers from the machine's own binaries.

``python scripts/services.py -- CMD ARGS...`` starts a fresh PostgreSQL cluster
and a Redis server on free loopback ports in a temporary directory, runs CMD
with ``DATABASE_URL`` and ``REDIS_URL`` pointing at them, then stops both and
deletes everything. The exit status is CMD's. ``make test`` and ``make bench``
use it; nothing is left behind and no system service is touched.

PostgreSQL refuses to run as root, so as root the cluster is created and run
as the ``postgres`` OS user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class MissingBinary(SystemExit):
    pass


def _pg_bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    for candidate in reversed(candidates):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise MissingBinary("PostgreSQL server binaries not found: apt-get install postgresql")


def _redis_server() -> str:
    found = shutil.which("redis-server")
    if not found:
        raise MissingBinary("redis-server not found: apt-get install redis-server")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(
    port: int, what: str, proc: subprocess.Popen[bytes], timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited at start with status {proc.returncode}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.2),
        ):
            return
        time.sleep(0.05)
    raise SystemExit(f"{what} did not start listening on port {port}")


def _as_postgres() -> dict[str, Any]:
    """Popen arguments that drop root to the postgres user."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise MissingBinary(
            "running as root needs the 'postgres' OS user: apt-get install postgresql"
        ) from exc
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


@contextlib.contextmanager
def postgres(workdir: Path) -> Iterator[str]:
    bindir = _pg_bindir()
    datadir = workdir / "pg"
    datadir.mkdir()
    drop = _as_postgres()
    if drop:
        os.chown(workdir, drop["user"], drop["group"])
        os.chown(datadir, drop["user"], drop["group"])
    subprocess.run(
        [
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-U",
            "baton",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        **drop,
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            str(bindir / "postgres"),
            "-D",
            str(datadir),
            "-p",
            str(port),
            "-k",
            str(workdir),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=300",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "postgres.log", "wb"),  # noqa: SIM115
        **drop,
    )
    try:
        _wait_for_port(port, "postgres", proc)
        # The server accepts connections a moment before it accepts logins.
        deadline = time.monotonic() + 20
        while (
            subprocess.run(
                [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "baton"],
                stdout=subprocess.DEVNULL,
            ).returncode
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "baton", "baton"],
            check=True,
        )
        yield f"postgres://baton@127.0.0.1:{port}/baton"
    finally:
        proc.send_signal(signal.SIGINT)  # fast shutdown
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def redis(workdir: Path) -> Iterator[str]:
    port = free_port()
    redis_dir = workdir / "redis"
    redis_dir.mkdir()
    proc = subprocess.Popen(
        [
            _redis_server(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(redis_dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, "redis-server", proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print("usage: services.py -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1 :]
    workdir = Path(tempfile.mkdtemp(prefix="baton-services-"))
    try:
        with postgres(workdir) as database_url, redis(workdir) as redis_url:
            env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
            print(f"services: PostgreSQL at {database_url}, Redis at {redis_url}", flush=True)
            return subprocess.call(command, env=env)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
