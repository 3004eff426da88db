"""relay/admission.lua in Python, for the embedded default (one process, no Redis).

It takes the same KEYS and ARGV and gives the same replies, so the relay's
admission code does not know which one it talks to; the quota tests run the
same cases against both. Keep the two in step: read them side by side.

State lives in dictionaries guarded by a lock (the relay's event loop and the
pages' worker threads both use it). Keys expire like Redis keys, checked when
touched and swept now and then.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from typing import Any

SCOPE_KEYS = 7
SCOPES = 2
SWEEP_EVERY = 10_000


class LocalLimiter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.zsets: dict[str, dict[str, float]] = {}
        self.hashes: dict[str, dict[str, Any]] = {}
        self.expiry: dict[str, float] = {}  # key -> epoch ms
        self.calls = 0

    # --- a few Redis commands -------------------------------------------------
    def _alive(self, key: str, now: int) -> None:
        until = self.expiry.get(key)
        if until is not None and until <= now:
            self.zsets.pop(key, None)
            self.hashes.pop(key, None)
            self.expiry.pop(key, None)

    def _hash(self, key: str, now: int) -> dict[str, Any]:
        self._alive(key, now)
        return self.hashes.setdefault(key, {})

    def _zset(self, key: str, now: int) -> dict[str, float]:
        self._alive(key, now)
        return self.zsets.setdefault(key, {})

    def _pexpire(self, key: str, now: int, ms: float) -> None:
        self.expiry[key] = now + ms

    def _sweep(self, now: int) -> None:
        for key in [k for k, until in self.expiry.items() if until <= now]:
            self._alive(key, now)
        for store in (self.zsets, self.hashes):
            for key in [k for k, value in store.items() if not value]:
                del store[key]

    def reset(self) -> None:
        with self.lock:
            self.zsets.clear()
            self.hashes.clear()
            self.expiry.clear()

    # --- the script ---------------------------------------------------------------
    def run(self, keys: Sequence[str], args: Sequence[Any]) -> list[Any]:
        argv = [str(a) for a in args]
        with self.lock:
            now = int(time.time() * 1000)
            self.calls += 1
            if self.calls % SWEEP_EVERY == 0:
                self._sweep(now)
            mode = argv[0]
            if mode == "admit":
                return self._admit(list(keys), argv, now)
            if mode == "settle":
                self._settle(list(keys), argv, now)
                return [1]
            if mode == "peek":
                return self._peek(list(keys), argv, now)
            if mode == "probe":
                return self._probe(list(keys), now)
            if mode == "seed":
                self._seed(list(keys), argv, now)
                return [1]
            raise ValueError(f"unknown admission mode {mode!r}")

    def _prune(self, holds: str, amounts: str, now: int) -> None:
        zset = self._zset(holds, now)
        expired = [member for member, score in zset.items() if score <= now]
        if not expired:
            return
        table = self._hash(amounts, now)
        total = 0
        for member in expired:
            total += int(table.pop(member, 0))
            del zset[member]
        if total:
            table["_sum"] = int(table.get("_sum", 0)) - total

    def _level(self, key: str, cap: float, window: float, now: int) -> float:
        state = self._hash(key, now)
        if "v" not in state:
            return cap
        return min(cap, float(state["v"]) + (now - int(state["t"])) * cap / window)

    def _store(self, key: str, value: float, cap: float, window: float, now: int) -> None:
        state = self._hash(key, now)
        state["v"] = value
        state["t"] = now
        self._pexpire(key, now, math.ceil((cap - value) * window / cap) + 1000)

    @staticmethod
    def _reset_ms(value: float, cap: float, window: float) -> int:
        return 0 if value >= cap else math.ceil((cap - value) * window / cap)

    def _spent(self, key: str, now: int) -> int:
        return int(self._hash(key, now).get("n", 0))

    @staticmethod
    def _scope_keys(keys: list[str], s: int) -> dict[str, str]:
        k = (s - 1) * SCOPE_KEYS
        names = ("holds", "amounts", "rpm", "tpm", "day", "month", "life")
        return {name: keys[k + i] for i, name in enumerate(names)}

    def _admit(self, keys: list[str], argv: list[str], now: int) -> list[Any]:
        hold_id = argv[1]
        ttl = float(argv[2])
        cost = int(argv[3])
        tokens = int(argv[4])
        window = float(argv[5])
        prepaid = argv[6] == "1"
        granted = int(argv[7])
        ncred = int(argv[8])
        all_limited = argv[9] == "1"
        scopes: list[dict[str, Any]] = []
        for s in range(1, SCOPES + 1):
            sc: dict[str, Any] = dict(self._scope_keys(keys, s))
            a = 10 + (s - 1) * 6
            sc["rpm_cap"] = float(argv[a])
            sc["tpm_cap"] = float(argv[a + 1])
            sc["conc"] = int(argv[a + 2])
            sc["caps"] = [int(argv[a + 3]), int(argv[a + 4]), int(argv[a + 5])]
            self._prune(sc["holds"], sc["amounts"], now)
            sc["held"] = int(self._hash(sc["amounts"], now).get("_sum", 0))
            sc["active"] = len(self._zset(sc["holds"], now))
            if sc["rpm_cap"] > 0:
                sc["rpm_level"] = self._level(sc["rpm"], sc["rpm_cap"], window, now)
            if sc["tpm_cap"] > 0:
                sc["tpm_level"] = self._level(sc["tpm"], sc["tpm_cap"], window, now)
            scopes.append(sc)

        def header_values(consumed: bool) -> list[int]:
            out: list[int] = []
            for sc in scopes:
                for kind in ("rpm", "tpm"):
                    cap = sc[kind + "_cap"]
                    if cap > 0:
                        value = sc[kind + "_level"]
                        if consumed:
                            value -= 1 if kind == "rpm" else tokens
                        out += [
                            int(cap),
                            max(0, math.floor(value)),
                            self._reset_ms(value, cap, window),
                        ]
                    else:
                        out += [-1, -1, -1]
            return out

        def refuse(reason: str, scope: int, *values: float) -> list[Any]:
            return [0, reason, scope, *(int(v) for v in values), *header_values(False)]

        for s in range(SCOPES, 0, -1):
            sc = scopes[s - 1]
            for p, name in enumerate(("day", "month", "life"), start=1):
                cap = sc["caps"][p - 1]
                if cap >= 0:
                    used = self._spent(sc[name], now)
                    if used + sc["held"] >= cap or used + sc["held"] + cost > cap:
                        hard = 1 if used >= cap or used + cost > cap else 0
                        return refuse("budget", s, p, cap, used, hard)
        if prepaid:
            team = scopes[0]
            balance = granted - self._spent(team["life"], now)
            if balance - team["held"] <= 0 or balance - team["held"] - cost < 0:
                hard = 1 if balance <= 0 or balance - cost < 0 else 0
                return refuse("credit", 1, 0, balance, team["held"], hard)
        for s in range(SCOPES, 0, -1):
            sc = scopes[s - 1]
            if sc["conc"] >= 0 and sc["active"] + 1 > sc["conc"]:
                return refuse("concurrency", s, sc["conc"], sc["active"], 1000, 0)
        for s in range(SCOPES, 0, -1):
            sc = scopes[s - 1]
            if sc["rpm_cap"] > 0 and sc["rpm_level"] < 1:
                wait = math.ceil((1 - sc["rpm_level"]) * window / sc["rpm_cap"])
                return refuse("requests", s, sc["rpm_cap"], math.floor(sc["rpm_level"]), wait, 0)
        for s in range(SCOPES, 0, -1):
            sc = scopes[s - 1]
            if sc["tpm_cap"] > 0:
                if tokens > sc["tpm_cap"]:
                    return refuse("too_large", s, sc["tpm_cap"], tokens, 0, 0)
                need = max(tokens, 1)
                if sc["tpm_level"] < need:
                    wait = math.ceil((need - sc["tpm_level"]) * window / sc["tpm_cap"])
                    return refuse(
                        "tokens", s, sc["tpm_cap"], math.floor(sc["tpm_level"]), wait, tokens
                    )

        exhausted: list[int] = []
        shortest = -1
        base = SCOPES * SCOPE_KEYS
        for c in range(1, ncred + 1):
            rpm_key, tpm_key = keys[base + (c - 1) * 2], keys[base + (c - 1) * 2 + 1]
            rpm_cap = float(argv[10 + SCOPES * 6 + (c - 1) * 2])
            tpm_cap = float(argv[10 + SCOPES * 6 + (c - 1) * 2 + 1])
            wait = 0
            for key, cap in ((rpm_key, rpm_cap), (tpm_key, tpm_cap)):
                if cap > 0:
                    value = self._level(key, cap, window, now)
                    if value < 1:
                        wait = max(wait, math.ceil((1 - value) * window / cap))
            if wait > 0:
                exhausted += [c, wait]
                if shortest < 0 or wait < shortest:
                    shortest = wait
        if all_limited and ncred > 0 and len(exhausted) == ncred * 2:
            return refuse("credential", 0, shortest, 0, 0, 0)

        for sc in scopes:
            holds = self._zset(sc["holds"], now)
            holds[hold_id] = now + ttl
            amounts = self._hash(sc["amounts"], now)
            amounts[hold_id] = cost
            amounts["_sum"] = int(amounts.get("_sum", 0)) + cost
            self._pexpire(sc["holds"], now, ttl + 60000)
            self._pexpire(sc["amounts"], now, ttl + 60000)
            if sc["rpm_cap"] > 0:
                self._store(sc["rpm"], sc["rpm_level"] - 1, sc["rpm_cap"], window, now)
            if sc["tpm_cap"] > 0:
                self._store(sc["tpm"], sc["tpm_level"] - tokens, sc["tpm_cap"], window, now)
        return [1, *header_values(True), *exhausted]

    def _settle(self, keys: list[str], argv: list[str], now: int) -> None:
        hold_id = argv[1]
        cost = int(argv[2])
        refund = int(argv[3])
        window = float(argv[4])
        ttls = (float(argv[5]), float(argv[6]), 0.0)
        for s in range(1, SCOPES + 1):
            sc = self._scope_keys(keys, s)
            amounts = self._hash(sc["amounts"], now)
            if hold_id in amounts:
                amounts["_sum"] = int(amounts.get("_sum", 0)) - int(amounts.pop(hold_id))
            self._zset(sc["holds"], now).pop(hold_id, None)
            tpm_cap = float(argv[6 + s])
            if tpm_cap > 0 and refund != 0:
                value = min(tpm_cap, self._level(sc["tpm"], tpm_cap, window, now) + refund)
                self._store(sc["tpm"], value, tpm_cap, window, now)
            if cost > 0:
                for name, ttl in zip(("day", "month", "life"), ttls, strict=True):
                    counter = self._hash(sc[name], now)
                    counter["n"] = int(counter.get("n", 0)) + cost
                    counter.setdefault("t", now)
                    if ttl > 0:
                        self._pexpire(sc[name], now, ttl * 1000)
        if len(keys) > SCOPES * SCOPE_KEYS:
            rpm_cap, tpm_cap, used = float(argv[9]), float(argv[10]), int(argv[11])
            rpm_key, tpm_key = keys[SCOPES * SCOPE_KEYS], keys[SCOPES * SCOPE_KEYS + 1]
            if rpm_cap > 0:
                self._store(
                    rpm_key, self._level(rpm_key, rpm_cap, window, now) - 1, rpm_cap, window, now
                )
            if tpm_cap > 0 and used > 0:
                self._store(
                    tpm_key, self._level(tpm_key, tpm_cap, window, now) - used, tpm_cap, window, now
                )

    def _peek(self, keys: list[str], argv: list[str], now: int) -> list[Any]:
        window = float(argv[1])
        reply: list[Any] = []
        for s in range(1, SCOPES + 1):
            sc = self._scope_keys(keys, s)
            live = [m for m, score in self._zset(sc["holds"], now).items() if score > now]
            amounts = self._hash(sc["amounts"], now)
            held = sum(int(amounts.get(m, 0)) for m in live)
            rpm_cap = float(argv[2 + (s - 1) * 2])
            tpm_cap = float(argv[3 + (s - 1) * 2])
            reply += [
                len(live),
                str(held),
                math.floor(self._level(sc["rpm"], rpm_cap, window, now)) if rpm_cap > 0 else -1,
                math.floor(self._level(sc["tpm"], tpm_cap, window, now)) if tpm_cap > 0 else -1,
            ]
            reply += [str(self._spent(sc[name], now)) for name in ("day", "month", "life")]
        return reply

    def _probe(self, keys: list[str], now: int) -> list[Any]:
        reply: list[Any] = []
        for key in keys:
            state = self._hash(key, now)
            reply += [1 if "s" in state else 0, str(state.get("t", 0))]
        return reply

    def _seed(self, keys: list[str], argv: list[str], now: int) -> None:
        for i, key in enumerate(keys):
            state = self._hash(key, now)
            if "s" in state:
                continue
            state["s"] = 1
            amount, ttl = int(argv[1 + i * 2]), float(argv[2 + i * 2])
            if amount:
                state["n"] = int(state.get("n", 0)) + amount
            state.setdefault("t", now)
            if ttl > 0:
                self._pexpire(key, now, ttl * 1000)


# The one in-process limiter of the embedded default, shared by the relay and the pages.
LOCAL = LocalLimiter()
