"""Cooling down targets that fail often, shared between processes.

Each process keeps a short sliding window of outcomes per target. A target
cools down only on an error *rate* (at least ``MIN_FAILURES`` failures making
up at least half of recent attempts), never on one error, or when the provider
itself says when to come back (429 with ``retry-after``). The decision is
published to Redis as a sorted set scored by the end of the cooldown; every
process reads it with its cache version check, so all of them skip the target
within a second.
"""

from __future__ import annotations

import time
from collections import deque

from django.conf import settings

COOLDOWNS_KEY = "baton:cooldowns"
WINDOW = 60.0
MIN_FAILURES = 3
MAX_RETRY_AFTER = 300.0


class Cooldowns:
    def __init__(self) -> None:
        self.outcomes: dict[str, deque[tuple[float, bool]]] = {}
        self.until: dict[str, float] = {}  # target key -> wall-clock end
        self.to_publish: dict[str, float] = {}

    def cooling(self, target_key: str, now: float | None = None) -> bool:
        end = self.until.get(target_key)
        return end is not None and end > (now or time.time())

    def record(self, target_key: str, ok: bool, retry_after: float | None = None) -> None:
        now = time.time()
        window = self.outcomes.setdefault(target_key, deque(maxlen=200))
        window.append((now, ok))
        while window and window[0][0] < now - WINDOW:
            window.popleft()
        if ok:
            return
        if retry_after:
            self._cool(target_key, now + min(retry_after, MAX_RETRY_AFTER))
            return
        failures = sum(1 for _, good in window if not good)
        if failures >= MIN_FAILURES and failures * 2 >= len(window):
            self._cool(target_key, now + settings.BATON_COOLDOWN_SECONDS)
            window.clear()

    def _cool(self, target_key: str, end: float) -> None:
        self.until[target_key] = max(end, self.until.get(target_key, 0.0))
        self.to_publish[target_key] = self.until[target_key]

    async def sync(self, redis: object) -> None:
        """Publish our decisions and learn everyone else's (one pipeline)."""
        now = time.time()
        pipe = redis.pipeline(transaction=False)  # type: ignore[attr-defined]
        if self.to_publish:
            pipe.zadd(COOLDOWNS_KEY, self.to_publish, gt=True)
            self.to_publish = {}
        pipe.zremrangebyscore(COOLDOWNS_KEY, 0, now)
        pipe.zrangebyscore(COOLDOWNS_KEY, now, "+inf", withscores=True)
        results = await pipe.execute()
        self.until = {
            (member.decode() if isinstance(member, bytes) else member): score
            for member, score in results[-1]
        } | {k: v for k, v in self.until.items() if v > now}
