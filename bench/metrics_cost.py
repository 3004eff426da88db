"""What ``gateway.observability.record`` costs per request, in microseconds.

Run with Baton's environment; measures prometheus_client's multiprocess mode (mmap files,
``PROMETHEUS_MULTIPROC_DIR``, as in production with several workers) and, in a child
process without that variable, the single-process mode. Prints one JSON line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def measure(iterations: int = 100_000) -> float:
    import django

    django.setup()
    from gateway import observability
    from gateway.call import Call
    from wire.providers import Usage

    target = SimpleNamespace(upstream=SimpleNamespace(provider="openai", model="demo-chat"))
    call = Call(request_id="req_x", started=time.perf_counter(), endpoint="chat", alias="bench")
    call.target = target  # type: ignore[assignment]
    call.attempts = 1
    call.status = 200
    call.upstream_seconds = 0.0005
    call.usage = Usage(prompt_tokens=12, completion_tokens=20)
    record = observability.record
    for _ in range(1000):
        record(call)
    started = time.perf_counter()
    for _ in range(iterations):
        record(call)
    return (time.perf_counter() - started) / iterations * 1e6


def main() -> None:
    if "--child" in sys.argv:
        print(measure())
        return
    with tempfile.TemporaryDirectory() as directory:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        multi = measure()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    child = subprocess.run(
        [sys.executable, __file__, "--child"], env=env, capture_output=True, text=True, check=True
    )
    single = float(child.stdout.strip().splitlines()[-1])
    print(orjson.dumps({"multiprocess_us": multi, "single_process_us": single}).decode())


if __name__ == "__main__":
    main()
