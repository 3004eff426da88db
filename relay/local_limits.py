"""The limits store of the embedded default: relay/admission.lua run in this process.

Without a limits Redis, the same script the relay runs on Redis runs here on
fakeredis, which keeps the keys in memory and executes Redis Lua with lupa's
Lua 5.1 (the Lua Redis embeds): one quota algorithm, whichever the store.
Calls go through redis-py's ``Script`` (EVALSHA, loading the script on
NOSCRIPT), so replies are shaped exactly as Redis's are (bytes and integers).

Threads: fakeredis runs each command, a whole script included, under its
server's lock, and redis-py's connection pool gives each thread a connection
of its own. So the relay's event loop and the pages' worker threads can call
``run`` at once, and each script runs atomically, as on Redis.

Expiry: fakeredis drops an expired key when a command touches it or the
keyspace is counted. Redis also expires keys nobody touches again (a past
day's counters, the buckets of a deleted key); so that memory stays bounded
here too, every ``SWEEP_EVERY`` calls a DBSIZE sweeps the expired keys out.

fakeredis is imported on first use: a process with a limits Redis never loads it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fakeredis import FakeServer
    from redis import Redis
    from redis.commands.core import Script

SWEEP_EVERY = 10_000


class LocalLimits:
    """A Redis of this process's own, for one Lua script."""

    def __init__(self, lua: str) -> None:
        self.lua = lua
        self.lock = threading.Lock()  # guards set-up only; fakeredis serialises the calls
        self.server: FakeServer | None = None
        self.client: Redis | None = None
        self.script: Script | None = None
        self.calls = 0

    def _connect(self) -> Script:
        with self.lock:
            if self.script is None:
                import fakeredis

                # Its own server: fakeredis otherwise shares one between clients
                # created with the same connection arguments.
                self.server = fakeredis.FakeServer()
                self.client = fakeredis.FakeRedis(server=self.server)
                self.script = self.client.register_script(self.lua)
            return self.script

    def run(self, keys: Sequence[str], args: Sequence[Any]) -> list[Any]:
        """One call of the script, with the KEYS and ARGV a Redis call would get."""
        script = self.script or self._connect()
        self.calls += 1
        if self.calls % SWEEP_EVERY == 0 and self.client is not None:
            self.client.dbsize()
        reply: list[Any] = script(keys=list(keys), args=list(args))
        return reply

    def reset(self) -> None:
        """Forget every key and the loaded script: what a restart does."""
        with self.lock:
            self.server = self.client = None
            self.script = None
