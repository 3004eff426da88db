"""``make run``: the whole product on one machine, no servers to install.

Starts the built-in fake upstream (the demo provider) on 127.0.0.1:8001, a
Celery worker with beat on kombu's filesystem broker, and Baton itself under
uvicorn on 127.0.0.1:8000. Ctrl-C stops all three.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

HOST = os.environ.get("BATON_HOST", "127.0.0.1")
PORT = os.environ.get("BATON_PORT", "8000")
FAKE_PORT = os.environ.get("BATON_FAKE_PORT", "8001")


def baton_command(python: str, host: str, port: str) -> list[str]:
    """uvicorn serving Baton.

    ``--no-proxy-headers``: by default uvicorn takes X-Forwarded-For from loopback peers as
    the client's address, and here every client is on loopback, so any client could choose
    its address. Baton resolves the address itself (``config/client_address.py``), believing
    the header only from ``BATON_TRUSTED_PROXIES`` (none by default).
    """
    return [
        python,
        "-m",
        "uvicorn",
        "config.asgi:application",
        "--host",
        host,
        "--port",
        port,
        "--lifespan",
        "on",
        "--no-access-log",
        "--no-proxy-headers",
    ]


def stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the children as Ctrl-C does


def main() -> int:
    """Each child in a process group of its own: a terminal's Ctrl-C reaches this process
    only, which stops each child the way it stops cleanly (below)."""
    signal.signal(signal.SIGTERM, stop)
    python = sys.executable
    env = {**os.environ, "DEBUG": os.environ.get("DEBUG", "1")}
    env.setdefault("BATON_FAKE_UPSTREAM_URL", f"http://127.0.0.1:{FAKE_PORT}")
    children = [
        subprocess.Popen(
            [python, "-m", "fake_upstream", "--host", "127.0.0.1", "--port", FAKE_PORT],
            env=env,
            process_group=0,
        ),
        subprocess.Popen(
            [
                python,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--beat",
                "--pool",
                "solo",
                "--loglevel",
                "warning",
            ],
            env=env,
            process_group=0,
        ),
        subprocess.Popen(baton_command(python, HOST, PORT), env=env, process_group=0),
    ]
    time.sleep(1.5)
    print(
        f"\n  Baton is running at http://{HOST}:{PORT}/  (the relay is at http://{HOST}:{PORT}/v1)\n",
        flush=True,
    )
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    for child in children:
        if child.poll() is None:
            # Celery's worker takes SIGTERM for its warm shutdown (on SIGINT it exits 1 on
            # purpose); the others stop cleanly on SIGINT, as on a terminal's Ctrl-C.
            celery = child is children[1]
            child.send_signal(signal.SIGTERM if celery else signal.SIGINT)
    for child in children:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
    failed = [
        (name, child.returncode)
        for name, child in zip(("fake upstream", "celery", "uvicorn"), children, strict=True)
        if child.returncode not in (0, -signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGINT, None)
    ]
    if failed:
        print(f"stopped with errors: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
