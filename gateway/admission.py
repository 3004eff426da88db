"""The admit step: every limit a request is under, checked and held at once.

``Admission.admit`` estimates what a request may cost (prompt tokens plus its
output cap, priced at the dearest target its model can reach) and runs
``admission.lua`` once: key and team budgets (day, month, key lifetime), the
prepaid credit balance, concurrency, requests and tokens per minute, and the
provider credentials' own rate limits. If everything fits, the script places
a hold for the estimate in the same atomic step, so any number of Baton
processes sharing the Redis can never admit more than the limits allow.
``Admission.settle`` turns the hold into the real cost once the response is
done (a failed request costs what the provider reported, usually nothing).
A hold that no process settles (the process crashed) expires by itself after
``BATON_HOLD_TTL_SECONDS``.

Overspend bound. For every admitted request the script guarantees
spent + held + hold <= cap (and <= the credit balance). The hold prices the
prompt at ``wire.tokens.prompt_token_bound`` (an upper bound on any byte-level
BPE or byte-fallback SentencePiece tokenizer's count; wire/tokens.py states it
and proves it) and the output at the request's own cap, or
``BATON_HOLD_DEFAULT_OUTPUT_TOKENS`` without one, all at the dearest target's
prices. A cap is overrun only by requests that cost more than their hold: one
without an output cap that writes more than the default, a provider that
ignores ``max_tokens``, or a prompt outside the bound (images and files, what
the provider adds from its own side: wire/tokens.py lists them). So the
overrun is at most the sum of (actual - held cost) over the requests in flight
when the cap is reached: at most C x (one request's actual - held cost), C
being the requests in flight (the concurrency limit, when one is set), and
zero when every request sets ``max_tokens`` and its prompt is text.
tests/quotas/test_budget_race.py measures both cases, the second with 200
adversarial prompts (one-letter words, lone digits and punctuation, letters
between ideographs). Not covered by the bound: fail-open (unbounded while the
store is unreachable), and credit an operator takes away in the second before
every process has reloaded the team. Tokens per minute reserve the realistic
prompt estimate (``PromptTokens.estimate``; the bound would be 3 to 4 times too
much and refuse legitimate traffic) + the request's own output cap (not the
default), corrected at settle; a request that turns out larger leaves the
bucket in debt, which later requests wait off.

The store unreachable (connection refused, or three timeouts in a row): the
team's ``on_redis_failure`` or ``BATON_LIMITS_ON_REDIS_FAILURE`` decides,
serve ("open") or refuse with a 503 ("closed"); every such request is logged
(at most every 10 s) and counted in ``baton_limits_unavailable_total``, and
for a second nothing waits on the store again.

Without a limits Redis (the embedded default) the same script runs in
process, on lupa's Lua (billing/quota/local.py). Spend counters start from
the database the first time a process sees a team or key (``_seed``): Redis is
authoritative for the current period, and the ledger fills in whatever it
has not seen (a fresh Redis, or the in-process limiter after a restart). The
read goes through the relay cache's ``ColdPath`` (gateway/db.py): a database
that does not answer delays a request by at most ``BATON_CACHE_LOAD_TIMEOUT``
once, and the seed is tried again ``SEED_RETRY`` seconds later.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from prometheus_client import Counter
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from billing import conf
from billing.money import display, from_nanos
from billing.quota import script
from billing.quota.live import seed_amounts
from billing.quota.local import LOCAL, LocalLimits
from billing.quota.script import LUA, PERIODS, periods
from billing.quota.snapshots import Limits, TeamQuota
from gateway import routing
from gateway.contexts import KeyContext, Target, TeamContext
from gateway.cooldown import Cooldowns
from gateway.db import ColdPath
from gateway.errors import RelayError
from gateway.redis_pipe import Script
from gateway.redis_topology import LimitsRedis, pipelined
from wire.dialects import Ask
from wire.providers import Endpoint, Usage
from wire.tokens import PromptTokens

log = logging.getLogger("baton.admission")

SCRIPT = Script(LUA)
WARN_EVERY = 10.0  # seconds between warnings about an unreachable limits store
BREAKER_SECONDS = 1.0  # after a failure, do not wait on the store again this long
TIMEOUTS_TO_BREAK = 3
SEED_RETRY = 30.0
UNAVAILABLE = Counter(
    "baton_limits_unavailable_total",
    "Requests whose limits could not be checked, by what Baton did.",
    ["outcome"],
)
LIMITS_ERRORS = (RedisError, OSError, TimeoutError)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def duration(ms: int) -> str:
    """A reset time the way OpenAI writes it: ``20ms``, ``1.5s``, ``6m0s``."""
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:.0f}s"


def rate_headers(values: Sequence[Any]) -> list[tuple[bytes, bytes]]:
    """``x-ratelimit-*`` for the tighter of the team and key limits."""
    numbers = [int(v) for v in values]
    headers: list[tuple[bytes, bytes]] = []
    for offset, name in ((0, b"requests"), (3, b"tokens")):
        scopes = [numbers[s * 6 + offset : s * 6 + offset + 3] for s in (0, 1)]
        limited = [scope for scope in scopes if scope[0] >= 0]
        if not limited:
            continue
        limit, remaining, reset = min(limited, key=lambda scope: (scope[1], scope[0]))
        headers += [
            (b"x-ratelimit-limit-" + name, str(limit).encode()),
            (b"x-ratelimit-remaining-" + name, str(remaining).encode()),
            (b"x-ratelimit-reset-" + name, duration(reset).encode()),
        ]
    return headers


@dataclass(slots=True)
class Hold:
    """What ``settle`` needs to know about an admitted request."""

    id: str
    team_id: str
    keys: list[str]
    quota: TeamQuota
    key_limits: Limits
    tokens: int = 0  # reserved from the tokens-per-minute buckets
    cost: int = 0  # nanos held
    placed: bool = False
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


class Admission:
    def __init__(
        self, cooldowns: Cooldowns | None = None, database: ColdPath | None = None
    ) -> None:
        self.cooldowns = cooldowns
        self.db = database or ColdPath()  # the relay cache's: one breaker per process
        self.configured = False
        self.redis: LimitsRedis | None = None
        self.local: LocalLimits | None = None
        self.timeout = 1.0
        self.window_ms = 60_000.0
        self.hold_ttl_ms = 660_000.0
        self.default_output = 4096
        self.refuse_unpriced = False
        self.broken_until = 0.0
        self.timeouts = 0  # in a row
        self.failures = 0
        self.last_warning = 0.0
        self.unpriced_seen: set[tuple[str, str]] = set()
        self.seeded: dict[str, int] = {}
        self.seed_failed: dict[str, float] = {}
        self.seeding: dict[str, asyncio.Future[None]] = {}
        self.tasks: set[asyncio.Task[Any]] = set()

    # --- set-up -------------------------------------------------------------------
    def configure(self) -> None:
        url = conf.limits_redis_url()
        self.timeout = conf.limits_redis_timeout()
        if url:
            # One pipelined connection per process (gateway/redis_pipe.py says why); on a
            # cluster, one per primary (gateway/redis_topology.py).
            self.redis = pipelined(url, self.timeout)
        else:
            self.local = LOCAL
        self.window_ms = conf.rate_window_seconds() * 1000
        self.hold_ttl_ms = conf.hold_ttl_seconds() * 1000
        self.default_output = conf.default_output_tokens()
        self.refuse_unpriced = conf.unpriced_models() == "refuse"
        self.configured = True

    async def close(self) -> None:
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=2)
        if self.redis is not None:
            await self.redis.aclose()

    async def run(self, keys: list[str], args: list[Any]) -> list[Any]:
        """One call of the script, on Redis or in process."""
        if self.local is not None:
            return self.local.run(keys, args)
        assert self.redis is not None  # configured: one or the other
        reply: list[Any] = await self.redis.evalsha(SCRIPT, keys, args)
        return reply

    # --- admit --------------------------------------------------------------------
    async def admit(
        self,
        request_id: str,
        key: KeyContext,
        team: TeamContext,
        ask: Ask,
        endpoint: Endpoint,
        count_prompt: Callable[[], Awaitable[PromptTokens]],
    ) -> Hold | None:
        """Check and hold, or raise the refusal. None when the model has no route (the
        route step refuses it). ``count_prompt`` is called only when a limit applies."""
        if not self.configured:
            self.configure()
        targets = routing.candidates(team, ask.model)
        if not targets:
            return None
        quota = team.quota
        rates = [quota.rates.get((t.upstream.provider, t.upstream.model)) for t in targets]
        if None in rates:
            self.unpriced([t for t, rate in zip(targets, rates, strict=True) if rate is None])
        day, month = periods()
        hold = Hold(
            id=request_id,
            team_id=team.team_id,
            keys=script.request_keys(team.team_id, key.key_id, day, month),
            quota=quota,
            key_limits=key.limits,
        )
        if not (quota.enforced or key.limits.any):
            return hold  # nothing to enforce: settle still records the spend
        if time.monotonic() < self.broken_until:
            return self.unavailable(hold, None)

        if endpoint == "count_tokens":
            # Counting a prompt is not a completion: it takes a request from the rate
            # limits (and a concurrency slot while it runs) and holds no money or tokens.
            prompt = PromptTokens(0, 0)
            money_out = tpm_out = 0
        else:
            prompt = await count_prompt()
            cap = ask.output_cap
            if endpoint == "embeddings":
                money_out = tpm_out = 0
            else:
                money_out = (cap or self.default_output) * ask.choices
                tpm_out = (cap or 0) * ask.choices
        # Money: the prompt's upper bound, so that a request with max_tokens never costs
        # more than it holds. Tokens per minute: the realistic estimate (module docstring).
        hold.cost = max(
            (rate.estimate(prompt.bound, money_out) for rate in rates if rate is not None),
            default=0,
        )
        hold.tokens = prompt.estimate + tpm_out

        limited = {
            t.credential_id: quota.credentials[t.credential_id]
            for t in targets
            if t.credential_id in quota.credentials
        }
        every_target_limited = all(t.credential_id in limited for t in targets)
        cred_keys: list[str] = []
        for credential_id in limited:
            cred_keys += script.credential_keys(team.team_id, credential_id)
        args = script.admit_args(
            hold_id=hold.id,
            hold_ttl_ms=int(self.hold_ttl_ms),
            cost=hold.cost,
            tokens=hold.tokens,
            window_ms=int(self.window_ms),
            quota=quota,
            key_limits=key.limits,
            credential_limits=limited,
            every_target_limited=every_target_limited,
        )
        try:
            await self.seed(key, team, day, month, hold.keys)
            reply = await self.run(hold.keys + cred_keys, args)
        except LIMITS_ERRORS as exc:
            return self.unavailable(hold, exc)
        self.timeouts = 0
        if int(reply[0]) != 1:
            raise self.refusal(reply, key, team)
        hold.placed = True
        hold.headers = rate_headers(reply[1:13])
        if len(reply) > 13 and self.cooldowns is not None:
            self.cool_exhausted(targets, list(limited), reply[13:])
        return hold

    def unpriced(self, targets: list[Target]) -> None:
        for target in targets:
            pair = (target.upstream.provider, target.upstream.model)
            if pair not in self.unpriced_seen:
                self.unpriced_seen.add(pair)
                log.warning(
                    "no price for %s/%s: %s",
                    *pair,
                    "refusing it" if self.refuse_unpriced else "serving it at zero cost",
                )
        if self.refuse_unpriced:
            names = ", ".join(
                sorted({f"{t.upstream.provider}/{t.upstream.model}" for t in targets})
            )
            raise RelayError(
                400,
                f"Baton has no price for {names}, and this installation does not serve unpriced "
                "models. Ask the operator to add it to the price catalog.",
                code="model_not_priced",
                param="model",
            )

    def cool_exhausted(
        self, targets: Sequence[Target], credential_ids: list[str], pairs: Sequence[Any]
    ) -> None:
        """Send targets whose credential is at its own rate limit to the back of the routing order."""
        assert self.cooldowns is not None
        now = time.time()
        for index, wait in zip(pairs[::2], pairs[1::2], strict=True):
            credential_id = credential_ids[int(index) - 1]
            for target in targets:
                if target.credential_id == credential_id:
                    # Local only: every process reads the same buckets and learns it itself.
                    until = now + int(wait) / 1000
                    self.cooldowns.until[target.key] = max(
                        until, self.cooldowns.until.get(target.key, 0.0)
                    )

    def unavailable(self, hold: Hold, exc: BaseException | None) -> Hold:
        """The limits store did not answer: serve or refuse, as configured."""
        mode = hold.quota.on_redis_failure or conf.on_redis_failure()
        UNAVAILABLE.labels(mode).inc()
        self.failures += 1
        if isinstance(exc, TimeoutError | RedisTimeoutError):
            self.timeouts += 1
        if (
            isinstance(exc, RedisConnectionError | ConnectionError)
            or self.timeouts >= TIMEOUTS_TO_BREAK
        ):
            # Down or hung: stop waiting on it for a moment. (A lone timeout may
            # be this process's own busy event loop, so it takes a few in a row.)
            self.broken_until = time.monotonic() + BREAKER_SECONDS
            self.timeouts = 0
        now = time.monotonic()
        if now - self.last_warning > WARN_EVERY:
            self.last_warning = now
            log.warning(
                "limits store unreachable (%s); failing %s (%d so far)",
                type(exc).__name__ if exc else "recently failed",
                mode,
                self.failures,
            )
        if mode == "closed":
            raise RelayError(
                503,
                "Baton cannot check this team's limits right now, so the request was not sent. "
                "Try again in a moment.",
                type="server_error",
                code="limits_unavailable",
                headers={"retry-after": "1"},
            )
        return hold

    # --- refusals -------------------------------------------------------------------
    def refusal(self, reply: Sequence[Any], key: KeyContext, team: TeamContext) -> RelayError:
        reason = _text(reply[1])
        scope, a, b, c, d = (int(v) for v in reply[2:7])
        headers = dict((k.decode(), v.decode()) for k, v in rate_headers(reply[7:19]))
        whose = "This API key's" if scope == 2 else "Your team's"
        where = f"{settings.SITE_URL}/t/{team.team_id}/limits/" + (
            f"keys/{key.key_id}/" if scope == 2 else ""
        )
        currency = team.quota.currency
        if reason in ("budget", "credit"):
            hard = d == 1
            headers["x-should-retry"] = "false" if hard else "true"
            if not hard:
                headers["retry-after"] = "1"
            if reason == "budget":
                period = PERIODS[a - 1]
                label = {"day": "daily", "month": "monthly", "lifetime": "lifetime"}[period]
                message = (
                    f"{whose} {label} budget of {display(from_nanos(b))} {currency} is used up "
                    f"({display(from_nanos(c))} {currency} spent"
                    + ({"day": " today", "month": " this month", "lifetime": ""}[period])
                    + ("" if hard else ", plus requests in flight")
                    + f"). An owner or admin can raise it at {where}"
                    + (" or wait for it to reset at 00:00 UTC." if period == "day" else ".")
                )
            else:
                message = (
                    f"Your team's prepaid credit is used up (balance {display(from_nanos(b))} {currency}"
                    + ("" if hard else ", the rest held by requests in flight")
                    + f"). Redeem a code or ask for a top-up at {settings.SITE_URL}/t/{team.team_id}/credits/."
                )
            return RelayError(
                429, message, type="insufficient_quota", code="insufficient_quota", headers=headers
            )
        if reason == "too_large":
            headers["x-should-retry"] = "false"
            return RelayError(
                429,
                f"Request too large for {whose[0].lower() + whose[1:]} tokens per minute (TPM) limit: "
                f"limit {a}, requested {b}. Send a smaller request (a lower max_tokens) or raise the "
                f"limit at {where}.",
                type="tokens",
                code="rate_limit_exceeded",
                headers=headers,
            )
        wait = c if reason != "credential" else a
        headers["retry-after"] = str(max(1, math.ceil(wait / 1000)))
        headers["retry-after-ms"] = str(max(1, wait))
        after = duration(wait)
        if reason == "concurrency":
            message = (
                f"Too many concurrent requests: {whose[0].lower() + whose[1:]} limit is {a} at a time. "
                f"Retry when one finishes, or raise the limit at {where}."
            )
            kind = "requests"
        elif reason == "requests":
            message = (
                f"Rate limit reached on requests per minute (RPM) for {whose[0].lower() + whose[1:]} "
                f"limit: limit {a}, remaining {max(0, b)}. Please try again in {after}. "
                f"An owner or admin can raise it at {where}."
            )
            kind = "requests"
        elif reason == "tokens":
            message = (
                f"Rate limit reached on tokens per minute (TPM) for {whose[0].lower() + whose[1:]} "
                f"limit: limit {a}, remaining {max(0, b)}, requested {d}. Please try again in {after}. "
                f"An owner or admin can raise it at {where}."
            )
            kind = "tokens"
        else:
            message = (
                "Every provider credential this model can use is at its own rate limit. "
                f"Please try again in {after}."
            )
            kind = "requests"
        return RelayError(429, message, type=kind, code="rate_limit_exceeded", headers=headers)

    # --- settle ---------------------------------------------------------------------
    def settle(self, hold: Hold, target: Target | None, usage: Usage) -> None:
        """Release the hold and record the real cost; never blocks the response."""
        try:
            self._schedule_settle(hold, target, usage)
        except Exception:
            # The response is already out; an unsettled hold expires by itself.
            log.exception("could not settle hold %s", hold.id)

    def _schedule_settle(self, hold: Hold, target: Target | None, usage: Usage) -> None:
        cost = 0
        if target is not None and (usage.prompt_tokens or usage.completion_tokens):
            rate = hold.quota.rates.get((target.upstream.provider, target.upstream.model))
            if rate is not None:
                cost = rate.cost_of(usage)
        used = usage.prompt_tokens + usage.completion_tokens
        keys = list(hold.keys)
        limits = hold.quota.credentials.get(target.credential_id) if target is not None else None
        if target is not None and limits is not None:
            keys += script.credential_keys(hold.team_id, target.credential_id)
        args = script.settle_args(
            hold_id=hold.id,
            cost=cost,
            tokens_back=hold.tokens - used if hold.placed else 0,
            window_ms=int(self.window_ms),
            team_tpm=hold.quota.limits.tpm,
            key_tpm=hold.key_limits.tpm,
            credential=limits,
            used=used,
        )
        if not hold.placed and cost == 0 and len(keys) == len(hold.keys):
            return  # nothing held, nothing spent
        if self.local is not None:
            self.local.run(keys, args)
            return
        if self.redis is None:
            return
        task = asyncio.ensure_future(self._settle(keys, args))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _settle(self, keys: list[str], args: list[Any]) -> None:
        try:
            await self.run(keys, args)
        except LIMITS_ERRORS as exc:
            UNAVAILABLE.labels("settle_lost").inc()
            self.failures += 1
            now = time.monotonic()
            if now - self.last_warning > WARN_EVERY:
                self.last_warning = now
                log.warning(
                    "could not settle hold %s (%s); it expires by itself and its spend "
                    "reaches the limits only through the ledger",
                    args[1],
                    type(exc).__name__,
                )

    # --- seeding spend from the database ----------------------------------------------
    async def seed(
        self, key: KeyContext, team: TeamContext, day: str, month: str, keys: list[str]
    ) -> None:
        """Once per loaded team and key context: add the spend the limits store has
        never seen (it is new, was flushed, or is this process's own) from the ledger."""
        marker = f"{team.team_id}:{key.key_id}:{day}"
        if self.seeded.get(marker) == id(team) ^ id(key):
            return
        failed = self.seed_failed.get(marker)
        if failed is not None and time.monotonic() - failed < SEED_RETRY:
            return
        pending = self.seeding.get(marker)
        if pending is not None:
            await asyncio.shield(pending)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.seeding[marker] = future
        try:
            await self._seed(team.team_id, key.key_id, keys)
            if len(self.seeded) > 100_000:
                self.seeded.clear()  # one entry per key and day: drop old days now and then
            self.seeded[marker] = id(team) ^ id(key)
            self.seed_failed.pop(marker, None)
        except LIMITS_ERRORS:
            raise  # the breaker in admit() keeps this from hammering the store
        except Exception:
            # Admit anyway: the counters then miss what only the ledger knows.
            self.seed_failed[marker] = time.monotonic()
            log.exception("could not seed spend counters for team %s", team.team_id)
        finally:
            future.set_result(None)
            del self.seeding[marker]

    async def _seed(self, team_id: str, key_id: str, keys: list[str]) -> None:
        counters = script.spend_counters(keys)
        probe = await self.run(counters, ["probe"])
        missing = []
        for index, counter in enumerate(counters):
            if int(probe[index * 2]) == 0:
                first = int(_text(probe[index * 2 + 1]))
                scope_key = None if index < 3 else key_id
                missing.append((counter, scope_key, PERIODS[index % 3], first or None))
        if not missing:
            return
        amounts = await self.db.run(seed_amounts, team_id, [(k, p, f) for _, k, p, f in missing])
        args = script.seed_args(
            [(amount, period) for (_, _, period, _), amount in zip(missing, amounts, strict=True)]
        )
        await self.run([counter for counter, *_ in missing], args)
