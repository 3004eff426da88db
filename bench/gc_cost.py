"""What a full garbage-collector pass costs a web process, with and without the frozen heap.

Run with Baton's environment. Builds the application as a web worker does
(``config.asgi``), then times full collections (``gc.collect()``, what CPython runs every so
often as requests allocate) before and after ``gateway.heap.freeze_startup_heap``. Prints one
JSON line.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def full_pass_ms(times: int = 5) -> float:
    """The median of a few full collections, in milliseconds."""
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        gc.collect()
        samples.append((time.perf_counter() - started) * 1000)
    return sorted(samples)[len(samples) // 2]


def main() -> None:
    from config.asgi import application  # noqa: F401 - what a worker imports
    from gateway import heap

    tracked = len(gc.get_objects())
    before = full_pass_ms()
    heap.freeze_startup_heap()
    after = full_pass_ms()
    print(
        orjson.dumps(
            {
                "tracked_objects": tracked,
                "full_pass_ms": before,
                "full_pass_frozen_ms": after,
                "frozen": gc.get_freeze_count(),
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
