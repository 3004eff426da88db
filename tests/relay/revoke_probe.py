"""A second relay process for the revocation test.

``python -m tests.relay.revoke_probe KEY`` resolves KEY through a real
RelayCache with its Redis version watcher, every 10 ms, and prints one line
each time the answer changes: ``ok`` (only once its watcher has read the current
version) or ``refused <epoch seconds>``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from config.redis_clients import async_client

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("BATON_TESTING", "1")

import django

django.setup()

from django.conf import settings  # noqa: E402

from gateway.cache import RelayCache  # noqa: E402


async def main(presented: str) -> None:
    cache = RelayCache()
    redis = async_client(settings.REDIS_URL)
    watcher = asyncio.create_task(cache.watch(redis))
    deadline = time.monotonic() + 30
    while cache.version is None and time.monotonic() < deadline:
        await asyncio.sleep(0.01)  # the watcher has read the current version: then "ok"
    last = None
    while time.monotonic() < deadline:
        key = await cache.key(presented)
        state = (
            "ok" if key is not None and key.refusal("127.0.0.1", time.time()) is None else "refused"
        )
        if state != last:
            print(f"{state} {time.time():.3f}", flush=True)
            last = state
            if state == "refused":
                break
        await asyncio.sleep(0.01)
    watcher.cancel()
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
