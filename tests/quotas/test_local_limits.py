"""The embedded default's limits store (relay/local_limits.py): the admission
script on fakeredis, called from the relay's event loop and the pages' threads."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from relay import local_limits
from relay.admission import LUA, periods, scope_keys
from relay.local_limits import LocalLimits

ROOT = Path(__file__).resolve().parents[2]
NONE = [-1] * 6
WINDOW = 60_000


def admit_args(hold: str, key: list[int]) -> list[Any]:
    return ["admit", hold, 60_000, 0, 1, WINDOW, 0, 0, 0, 0, *NONE, *key]


def keys_of(team: str) -> list[str]:
    day, month = periods()
    return scope_keys(team, "t", day, month) + scope_keys(team, "k:key", day, month)


def test_threads_calling_at_once_never_pass_the_limit() -> None:
    """Each script call is atomic across threads: 16 threads racing for five
    concurrent slots (nothing settled) get exactly five, while others peek."""
    store = LocalLimits(LUA)
    keys = keys_of(str(uuid.uuid4()))
    start = threading.Barrier(17)
    admitted: list[int] = []
    peeks: list[list[Any]] = []

    def admit() -> None:
        start.wait()
        for _ in range(10):
            reply = store.run(keys, admit_args(uuid.uuid4().hex, [-1, -1, 5, -1, -1, -1]))
            admitted.append(int(reply[0]))

    def peek() -> None:
        start.wait()
        for _ in range(20):
            peeks.append(store.run(keys, ["peek", WINDOW, -1, -1, -1, -1]))

    threads = [threading.Thread(target=admit) for _ in range(16)]
    threads.append(threading.Thread(target=peek))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 160 and sum(admitted) == 5
    assert len(peeks) == 20 and all(0 <= int(p[7]) <= 5 for p in peeks)
    assert int(store.run(keys, ["peek", WINDOW, -1, -1, -1, -1])[7]) == 5


def test_expired_keys_nobody_touches_again_are_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    """fakeredis expires keys only when touched; the store sweeps them now and
    then, as Redis does by itself, so a long-running process stays small."""
    monkeypatch.setattr(local_limits, "SWEEP_EVERY", 5)
    store = LocalLimits(LUA)
    keys = keys_of(str(uuid.uuid4()))
    store.run(keys, ["peek", WINDOW, -1, -1, -1, -1])
    assert store.client is not None and store.server is not None
    for i in range(50):
        store.client.set(f"bq:{{gone}}:k:{i}:rpm", 1, px=1)
    stored = store.server.dbs[0]._dict  # fakeredis's own table, expired keys included
    assert len(stored) == 50
    deadline = time.time() + 0.01
    while time.time() <= deadline:  # the keys' expiry, a wall-clock time
        time.sleep(0.005)
    assert len(stored) == 50  # expired, but nothing has touched them
    for _ in range(5):
        store.run(keys, ["peek", WINDOW, -1, -1, -1, -1])
    assert len(stored) == 0


def test_reset_forgets_everything_like_a_restart() -> None:
    store = LocalLimits(LUA)
    keys = keys_of(str(uuid.uuid4()))
    hold = uuid.uuid4().hex
    store.run(keys, admit_args(hold, NONE))
    store.run(keys, ["settle", hold, 123, 0, WINDOW, 86400, 86400 * 31, -1, -1])
    assert store.run(keys, ["peek", WINDOW, -1, -1, -1, -1])[4] == b"123"
    store.reset()
    assert store.run(keys, ["peek", WINDOW, -1, -1, -1, -1])[4] == b"0"


def test_a_process_with_a_limits_redis_never_loads_fakeredis() -> None:
    code = (
        "import sys, django; django.setup()\n"
        "from relay.admission import Admission\n"
        "import billing.usage\n"
        "admission = Admission(); admission.configure()\n"
        "assert admission.redis is not None and admission.local is None\n"
        "print('fakeredis' in sys.modules, 'lupa' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "BATON_LIMITS_REDIS_URL": "redis://127.0.0.1:1/0",
        },
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "False"]
