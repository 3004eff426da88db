"""The limits store of the embedded default: billing/quota/admission.lua run in this process.

Without a limits Redis the relay runs the very script it runs on Redis, here
on lupa's Lua 5.1 (the Lua Redis embeds), compiled once: one quota algorithm,
whichever the store. The script reaches its data only through
``redis.call``, and this module answers the few commands it uses over
dictionaries, as Redis answers them: the same replies and conversions
between Lua and Redis values, keys of one type each, a hash or sorted set
deleted when it empties, key expiry, an error that aborts the script. A
command the script starts using that is not here fails the script ("unknown
Redis command"), and tests/quotas/test_limiter.py, which runs every case on
Redis and here and compares the replies, says so at once.

Why not fakeredis, which runs Redis Lua too: its general command machinery
costs about 20 us per ``redis.call`` and each EVAL compiles the script anew,
so one admit and its settle (about 60 commands) took about ten times the CPU
of this module, over a millisecond (bench/choices.py measures both).

Threads: a lock makes each call atomic, as a script is on Redis, so the
relay's event loop and the pages' worker threads can share the store.
Expiry: a key past its time is gone when the next command touches it, and
every ``SWEEP_EVERY`` calls the keys nobody touches again are dropped, as
Redis expires them by itself. Replies are shaped as redis-py returns
Redis's: bytes, integers, lists and None.

lupa is imported on first use: a process with a limits Redis never loads it.
"""

from __future__ import annotations

import inspect
import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import ResponseError

SWEEP_EVERY = 10_000
INT64 = 2**63
_INTEGER = re.compile(rb"-?(0|[1-9][0-9]*)")
_FLOAT = re.compile(rb"[-+]?(inf|(\d+\.?\d*|\.\d+)(e[-+]?\d+)?)", re.IGNORECASE)

# Redis's sandbox, in short: no file, OS or module access, and no new globals
# (a typo that would create one fails here as it fails on Redis).
_SANDBOX = b"""
local call, pcall_ = ...
redis = {
  call = call,
  pcall = pcall_,
  error_reply = function(message) return {err = message} end,
  status_reply = function(message) return {ok = message} end,
}
for _, name in ipairs({'io', 'os', 'package', 'require', 'module', 'dofile', 'loadfile', 'python'}) do
  _G[name] = nil
end
setmetatable(_G, {
  __newindex = function(_, name)
    error("Script attempted to create global variable '" .. tostring(name) .. "'", 2)
  end,
  __index = function(_, name)
    error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
  end,
})
return function(script, keys, argv)
  rawset(_G, 'KEYS', keys)
  rawset(_G, 'ARGV', argv)
  return script()
end
"""


class LocalLimits:
    """A Redis of this process's own, for one Lua script."""

    def __init__(self, lua: str) -> None:
        self.lua = lua
        self.lock = threading.Lock()
        self.hashes: dict[bytes, dict[bytes, bytes]] = {}
        self.zsets: dict[bytes, dict[bytes, float]] = {}
        self.expires: dict[bytes, int] = {}  # key -> ms since the epoch
        self.now = 0  # ms, fixed for the duration of one script call
        self.calls = 0
        self.runtime: Any = None
        self.invoke: Callable[..., Any] | None = None
        self.script: Any = None
        self.lua_error: type[Exception] = Exception
        self.commands: dict[bytes, Callable[..., Any]] = {
            b"time": self.time,
            b"hget": self.hget,
            b"hmget": self.hmget,
            b"hset": self.hset,
            b"hsetnx": self.hsetnx,
            b"hdel": self.hdel,
            b"hincrby": self.hincrby,
            b"hgetall": self.hgetall,
            b"hkeys": self.hkeys,
            b"zadd": self.zadd,
            b"zrem": self.zrem,
            b"zscore": self.zscore,
            b"zcard": self.zcard,
            b"zcount": self.zcount,
            b"zrangebyscore": self.zrangebyscore,
            b"zremrangebyscore": self.zremrangebyscore,
            b"expire": self.expire,
            b"pexpire": self.pexpire,
        }
        self.arity = {name: _arity(command) for name, command in self.commands.items()}

    # --- running the script ----------------------------------------------------------
    def _start(self) -> Callable[..., Any]:
        import lupa.lua51

        runtime = lupa.lua51.LuaRuntime(encoding=None, register_eval=False, register_builtins=False)
        self.script = runtime.compile(self.lua.encode())
        self.lua_error = lupa.lua51.LuaError
        self.runtime = runtime
        invoke: Callable[..., Any] = runtime.execute(_SANDBOX, self.call, self.pcall)
        self.invoke = invoke
        return invoke

    def run(self, keys: Sequence[str], args: Sequence[Any]) -> list[Any]:
        """One call of the script, with the KEYS and ARGV a Redis call would get."""
        with self.lock:
            invoke = self.invoke or self._start()
            self.now = time.time_ns() // 1_000_000
            self.calls += 1
            if self.calls % SWEEP_EVERY == 0:
                self.sweep()
            table = self.runtime.table_from
            try:
                result = invoke(
                    self.script,
                    table([_encode(k) for k in keys]),
                    table([_encode(a) for a in args]),
                )
            except self.lua_error as exc:  # the script's own error, not a command's
                raise ResponseError(f"ERR Error running script: {exc}") from None
            reply: list[Any] = self.reply(result, top=True)
            return reply

    def reset(self) -> None:
        """Forget every key: what a restart does."""
        with self.lock:
            self.hashes.clear()
            self.zsets.clear()
            self.expires.clear()

    def sweep(self) -> None:
        for key in [k for k, until in self.expires.items() if self.now > until]:
            self.delete(key)

    def call(self, *args: Any) -> Any:
        """``redis.call``: a command's reply as a Lua value, or an error that stops the script."""
        if not args:
            raise ResponseError("Please specify at least one argument for this redis lib call")
        words = [_argument(a) for a in args]
        name = words[0].lower()
        command = self.commands.get(name)
        if command is None:
            raise ResponseError(f"Unknown Redis command called from script: {words[0]!r}")
        fixed, more = self.arity[name]
        if len(words) - 1 < fixed or (len(words) - 1 > fixed and not more):
            raise ResponseError(
                f"Wrong number of args calling Redis command from script: {words[0]!r}"
            )
        return self.lua_value(command(*words[1:]))

    def pcall(self, *args: Any) -> Any:
        """``redis.pcall``: an error comes back as ``{err = message}``."""
        try:
            return self.call(*args)
        except ResponseError as exc:
            return self.runtime.table_from({b"err": str(exc).encode()})

    def lua_value(self, value: Any) -> Any:
        if value is None:
            return False
        if isinstance(value, list):
            return self.runtime.table_from([self.lua_value(v) for v in value])
        return value  # bytes or int

    def reply(self, value: Any, top: bool = False) -> Any:
        """A Lua value as Redis replies it: numbers truncated to integers, a table's
        array part up to its first nil, false as nil, true as 1."""
        if value is None or value is False:
            return None
        if value is True:
            return 1
        if isinstance(value, bytes):
            return value
        if isinstance(value, int | float):
            return int(value)
        error = value[b"err"]
        if error is not None:
            if top:
                raise ResponseError(error.decode(errors="replace"))
            return ResponseError(error.decode(errors="replace"))
        status = value[b"ok"]
        if status is not None:
            return status
        out = []
        index = 1
        while (item := value[index]) is not None:
            out.append(self.reply(item))
            index += 1
        return out

    # --- keys ---------------------------------------------------------------------------
    def live(self, key: bytes) -> None:
        until = self.expires.get(key)
        if until is not None and self.now > until:
            self.delete(key)

    def delete(self, key: bytes) -> bool:
        self.expires.pop(key, None)
        return self.hashes.pop(key, None) is not None or self.zsets.pop(key, None) is not None

    def hash(self, key: bytes, create: bool = False) -> dict[bytes, bytes] | None:
        self.live(key)
        if key in self.zsets:
            raise ResponseError(WRONGTYPE)
        found = self.hashes.get(key)
        if found is None and create:
            found = self.hashes[key] = {}
        return found

    def zset(self, key: bytes, create: bool = False) -> dict[bytes, float] | None:
        self.live(key)
        if key in self.hashes:
            raise ResponseError(WRONGTYPE)
        found = self.zsets.get(key)
        if found is None and create:
            found = self.zsets[key] = {}
        return found

    def emptied(self, key: bytes, value: dict[bytes, Any]) -> None:
        if not value:
            self.delete(key)

    # --- commands -----------------------------------------------------------------------
    def time(self) -> list[bytes]:
        micros = time.time_ns() // 1000
        return [b"%d" % (micros // 1_000_000), b"%d" % (micros % 1_000_000)]

    def hget(self, key: bytes, field: bytes) -> bytes | None:
        found = self.hash(key)
        return None if found is None else found.get(field)

    def hmget(self, key: bytes, field: bytes, *fields: bytes) -> list[bytes | None]:
        found = self.hash(key) or {}
        return [found.get(f) for f in (field, *fields)]

    def hset(self, key: bytes, field: bytes, value: bytes, *pairs: bytes) -> int:
        if len(pairs) % 2:
            raise ResponseError("ERR wrong number of arguments for 'hset' command")
        found = self.hash(key, create=True)
        assert found is not None
        added = 0
        for f, v in zip((field, *pairs[::2]), (value, *pairs[1::2]), strict=True):
            added += f not in found
            found[f] = v
        return added

    def hsetnx(self, key: bytes, field: bytes, value: bytes) -> int:
        found = self.hash(key, create=True)
        assert found is not None
        if field in found:
            return 0
        found[field] = value
        return 1

    def hdel(self, key: bytes, field: bytes, *fields: bytes) -> int:
        found = self.hash(key)
        if found is None:
            return 0
        removed = sum(found.pop(f, None) is not None for f in dict.fromkeys((field, *fields)))
        self.emptied(key, found)
        return removed

    def hincrby(self, key: bytes, field: bytes, amount: bytes) -> int:
        step = _integer(amount, "value is not an integer or out of range")
        found = self.hash(key, create=True)
        assert found is not None
        current = _integer(found.get(field, b"0"), "hash value is not an integer")
        result = current + step
        if not -INT64 <= result < INT64:
            raise ResponseError("ERR increment or decrement would overflow")
        found[field] = b"%d" % result
        return result

    def zadd(self, key: bytes, *words: bytes) -> int:
        flags: set[bytes] = set()
        rest = list(words)
        while rest and rest[0].upper() in (b"NX", b"XX", b"GT", b"LT", b"CH"):
            flags.add(rest.pop(0).upper())
        if not rest or len(rest) % 2 or (b"NX" in flags and flags & {b"XX", b"GT", b"LT"}):
            raise ResponseError("ERR syntax error")
        if {b"GT", b"LT"} <= flags:
            raise ResponseError("ERR GT, LT, and/or NX options at the same time are not compatible")
        scores = [_float(s, "value is not a valid float") for s in rest[::2]]
        found = self.zset(key, create=b"XX" not in flags)
        if found is None:
            return 0
        changed = added = 0
        for score, member in zip(scores, rest[1::2], strict=True):
            old = found.get(member)
            if old is None:
                if b"XX" in flags:
                    continue
                found[member] = score
                added += 1
                continue
            if b"NX" in flags or old == score:
                continue
            if (b"GT" in flags and score <= old) or (b"LT" in flags and score >= old):
                continue
            found[member] = score
            changed += 1
        self.emptied(key, found)
        return added + changed if b"CH" in flags else added

    def zrem(self, key: bytes, member: bytes, *members: bytes) -> int:
        found = self.zset(key)
        if found is None:
            return 0
        removed = sum(found.pop(m, None) is not None for m in dict.fromkeys((member, *members)))
        self.emptied(key, found)
        return removed

    def zscore(self, key: bytes, member: bytes) -> bytes | None:
        score = (self.zset(key) or {}).get(member)
        return None if score is None else _score_text(score)

    def zcard(self, key: bytes) -> int:
        return len(self.zset(key) or {})

    def zcount(self, key: bytes, low: bytes, high: bytes) -> int:
        return len(self._in_range(key, low, high))

    def hkeys(self, key: bytes) -> list[bytes]:
        return list(self.hash(key) or {})

    def hgetall(self, key: bytes) -> list[bytes]:
        found = self.hash(key) or {}
        return [item for pair in found.items() for item in pair]

    def _in_range(self, key: bytes, low: bytes, high: bytes) -> list[bytes]:
        test_low, test_high = _bound(low), _bound(high)
        found = self.zset(key) or {}
        hits = [(s, m) for m, s in found.items() if test_low(s, True) and test_high(s, False)]
        return [m for _, m in sorted(hits)]

    def zrangebyscore(self, key: bytes, low: bytes, high: bytes, *options: bytes) -> list[bytes]:
        scores = False
        offset, count = 0, -1
        words = list(options)
        while words:
            word = words.pop(0).upper()
            if word == b"WITHSCORES":
                scores = True
            elif word == b"LIMIT" and len(words) >= 2:
                offset = _integer(words.pop(0), "value is not an integer or out of range")
                count = _integer(words.pop(0), "value is not an integer or out of range")
            else:
                raise ResponseError("ERR syntax error")
        members = self._in_range(key, low, high)
        if offset < 0:
            return []
        members = members[offset:] if count < 0 else members[offset : offset + count]
        if not scores:
            return members
        found = self.zsets.get(key) or {}
        return [item for m in members for item in (m, _score_text(found[m]))]

    def zremrangebyscore(self, key: bytes, low: bytes, high: bytes) -> int:
        members = self._in_range(key, low, high)
        found = self.zsets.get(key)
        if found is not None:
            for member in members:
                del found[member]
            self.emptied(key, found)
        return len(members)

    def pexpire(self, key: bytes, ms: bytes) -> int:
        timeout = _integer(ms, "value is not an integer or out of range")
        self.live(key)
        if key not in self.hashes and key not in self.zsets:
            return 0
        if timeout <= 0:
            self.delete(key)
        else:
            self.expires[key] = self.now + timeout
        return 1

    def expire(self, key: bytes, seconds: bytes) -> int:
        timeout = _integer(seconds, "value is not an integer or out of range")
        return self.pexpire(key, b"%d" % (timeout * 1000))


WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


def _arity(command: Callable[..., Any]) -> tuple[int, bool]:
    """How many arguments a command needs, and whether it takes more."""
    parameters = inspect.signature(command).parameters.values()
    fixed = sum(p.kind is p.POSITIONAL_OR_KEYWORD for p in parameters)
    return fixed, any(p.kind is p.VAR_POSITIONAL for p in parameters)


def _encode(value: Any) -> bytes:
    """A KEYS or ARGV entry as redis-py sends it."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        raise TypeError("booleans are not Redis arguments")
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, float):
        return repr(value).encode()
    raise TypeError(f"{type(value).__name__} is not a Redis argument")


def _argument(value: Any) -> bytes:
    """A ``redis.call`` argument: a string, or a number written as Redis writes it."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return b"%d" % value
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e17:
            return b"%d" % value
        return repr(value).encode()
    raise ResponseError("Lua redis lib command arguments must be strings or integers")


def _score_text(score: float) -> bytes:
    """A sorted-set score as Redis 7.0 replies it."""
    if score.is_integer() and abs(score) < 2**63:
        return b"%d" % score
    return f"{score:.17g}".encode()


def _integer(value: bytes, message: str) -> int:
    if not _INTEGER.fullmatch(value) or not -INT64 <= int(value) < INT64:
        raise ResponseError("ERR " + message)
    return int(value)


def _float(value: bytes, message: str) -> float:
    if not _FLOAT.fullmatch(value):
        raise ResponseError("ERR " + message)
    return float(value)


def _bound(value: bytes) -> Callable[[float, bool], bool]:
    """ZRANGEBYSCORE's min or max ("(" for exclusive) as a test of a score."""
    exclusive = value.startswith(b"(")
    limit = _float(value[1:] if exclusive else value, "min or max is not a float")
    if math.isnan(limit):
        raise ResponseError("ERR min or max is not a float")

    def test(score: float, is_low: bool) -> bool:
        if is_low:
            return score > limit if exclusive else score >= limit
        return score < limit if exclusive else score <= limit

    return test


def _shared() -> LocalLimits:
    from billing.quota.script import LUA

    return LocalLimits(LUA)


# The one in-process limits store of the embedded default, shared by the relay and the pages.
LOCAL = _shared()
