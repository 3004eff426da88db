"""The admit and settle steps: every limit a request is under, checked and held at once,
and the request's durable record until it is settled or billed anyway.

``Admission.admit`` estimates what a request may cost (prompt tokens plus its output
cap, priced at the dearest target its model can reach) and runs ``admission.lua`` once:
key and team budgets (day, month, key lifetime), the prepaid credit balance,
concurrency, requests and tokens per minute, and the provider credentials' own rate
limits. If everything fits, the script holds the estimate and writes the request's
record in its team's in-flight set in the same atomic step, so any number of Baton
processes sharing the Redis can never admit more than the limits allow.
``Admission.settle`` turns the hold into the real cost once the response is done.

A request that reached the upstream is billed, whatever dies. The record is written for
every request, limits or not (a team without limits pays one ZADD and one ZREM for it),
before the upstream is called, and it is durable where Redis is (AOF in production).
While the request runs, this process renews its lease every third of
``BATON_LEASE_SECONDS`` (``Admission.renew``: one call per team per tick, off the request
path, only for requests older than half a tick) and reports where it went and how many
completion tokens it has streamed. The settle is sent only once the request's usage
event is written (the relay passes it to the sink as the event's ``then``). If the
process dies before, a reaper (billing/quota/reaper.py: here every tick, and Celery
beat) bills the record from what it last reported, within 3 leases of its last
renewal; settle and reap agree in the script (a settle after the reap counts nothing,
and the ledger keeps one row per request id). The embedded default keeps its records in
process: a crash of its one process loses them with everything else it held.

Short leases, not long holds. Concurrency counts live leases, so a request whose
process died, or whose renewals a limits-store outage stopped, frees its slot within
4/3 of a lease; money stays held by the record until settled or reaped, so a blip never
lets a budget be spent twice.

Counters that converge on the ledger (billing/quota/reconcile.py). A settle that fails
(the store is unreachable) is kept, its lease renewed, and retried each tick. A
reconciliation raises a scope's counters to the ledger's totals (counter := max(counter,
ledger), in the script) and leaves a watermark; a settle whose event is older than the
watermark counts nothing (the totals have it, or the next ones will) and asks for
another reconciliation of its scopes a lease later. Celery beat reconciles every scope
with recent spend every ``BATON_RECONCILE_SECONDS`` (in the embedded default, this
process the scopes it serves); a scope the store has never seen, or lost, is reconciled
before anything is admitted in it (the script answers "seed"). The bound while the
store is unreachable, in fail-open mode: requests are served unchecked (the overrun is
what the team spends meanwhile) and their spend reaches the counters when the store is
back, through the retried settles, or through the ledger at the next reconciliation for
what was lost (tests/quotas/test_inflight.py: counters equal the ledger once it clears).

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

Redis CPU. A scope without limits is not passed at all; a scope is one hash
(one HMGET, one HSET); settles are batched per team for ``SETTLE_BATCH_SECONDS``, so
their fixed costs are shared. bench/quota_cost.py measures admit + settle from
``INFO commandstats``.

The store unreachable (connection refused, or three timeouts in a row): the
team's ``on_redis_failure`` or ``BATON_LIMITS_ON_REDIS_FAILURE`` decides,
serve ("open") or refuse with a 503 ("closed"); every such request is logged
(at most every 10 s) and counted in ``baton_limits_unavailable_total``, and
for a second nothing waits on the store again. A team without limits is always
served (its record is then not written: outcome "unrecorded").

Without a limits Redis (the embedded default) the same script runs in process, on
lupa's Lua (billing/quota/local.py), settled at once rather than in batches. The
ledger reads of seeding go through the relay cache's ``ColdPath`` (gateway/db.py): a
database that does not answer delays a request by at most ``BATON_CACHE_LOAD_TIMEOUT``
once, and the seed is tried again ``SEED_RETRY`` seconds later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
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
from billing.quota import reaper, script
from billing.quota.local import LOCAL, LocalLimits
from billing.quota.reconcile import reconcile
from billing.quota.script import LUA, PERIODS, periods
from billing.quota.snapshots import Limits, TeamQuota
from gateway import routing
from gateway.contexts import KeyContext, Target, TeamContext
from gateway.cooldown import Cooldowns
from gateway.db import ColdPath, in_thread
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
SETTLE_BATCH_SECONDS = 0.002  # settles of one team within this share one script call
SETTLE_BATCH_MAX = 64
ADMIT_BATCH_MAX = 32
RETRY_MAX = 100_000  # failed settles kept for retry; beyond, reconciliation catches up
DIRTY_ROUNDS = 3  # reconciliations of a scope after a late or lost settle
RECONCILES_PER_TICK = 50
UNAVAILABLE = Counter(
    "baton_limits_unavailable_total",
    "Requests whose limits could not be checked, by what Baton did.",
    ["outcome"],
)
LIMITS_ERRORS = (RedisError, OSError, TimeoutError)

Scope = tuple[str, str | None]  # (team id, key id or None for the team's own scope)


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
    """An admitted request: what ``settle`` and the lease renewals need to know."""

    id: str
    team_id: str
    key_id: str
    quota: TeamQuota
    key_limits: Limits
    tokens: int = 0  # reserved from the tokens-per-minute limits
    cost: int = 0  # nanos held
    prompt: int = 0  # estimated prompt tokens
    record: script.Record | None = None
    member: str = ""  # the record as a member of the team's in-flight set
    team_active: bool = False  # the team's scope was checked (and holds the cost)
    key_active: bool = False
    placed: bool = False
    admitted_at: float = 0.0  # monotonic
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    # Set by the relay while the request runs; reported on renewal.
    target: Target | None = None
    stream: Any = None  # the stream translator: ``estimated_completion_tokens`` so far
    reported: str = ""
    renewed: bool = False
    gone: bool = False  # a renewal found no record (reaped, or the store lost it)
    settling: bool = False  # done; its settle is on its way (renewed until it lands)

    def report(self) -> str:
        """Where the request went and what it has streamed, for its record."""
        target = self.target
        if target is None:
            return ""
        rate = self.quota.rates.get((target.upstream.provider, target.upstream.model))
        completion = int(self.stream.estimated_completion_tokens) if self.stream else 0
        return script.Report(
            script.Target(
                target.credential_id,
                target.upstream.provider,
                target.upstream.model,
                rate.input if rate else 0,
                rate.output if rate else 0,
            ),
            completion,
        ).dump()


@dataclass(slots=True)
class Pending:
    """A settle not yet (or not successfully) sent."""

    team_id: str
    item: script.Settle
    at: float  # epoch seconds the request's usage event was written


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
        self.lease = 15.0  # seconds
        self.reconcile_every = 300.0
        self.default_output = 4096
        self.refuse_unpriced = False
        self.broken_until = 0.0
        self.timeouts = 0  # in a row
        self.failures = 0
        self.last_warning = 0.0
        self.unpriced_seen: set[tuple[str, str]] = set()
        self.live: dict[str, Hold] = {}  # placed and not settled yet
        self.registered: dict[str, float] = {}  # team -> when the reapers look at it (epoch)
        self.batches: dict[str, list[Pending]] = {}
        self.admits: dict[
            tuple[str, int],
            tuple[TeamQuota, bool, list[tuple[script.Admit, asyncio.Future[list[Any]]]]],
        ] = {}
        self.admit_flush = False
        self.flusher: asyncio.Task[None] | None = None
        self.retries: list[Pending] = []
        self.dirty: dict[Scope, tuple[float, int]] = {}  # scope -> (not before, rounds left)
        self.reconciled: dict[Scope, float] = {}  # scope -> monotonic time of the last one
        self.seed_failed: dict[Scope, float] = {}
        self.seeding: dict[Scope, asyncio.Future[bool]] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.upkeep_task: asyncio.Task[None] | None = None
        self.renewal_calls = 0  # renew calls sent, and records renewed (for the benchmark)
        self.renewed_records = 0

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
        self.lease = conf.lease_seconds()
        self.reconcile_every = conf.reconcile_seconds()
        self.default_output = conf.default_output_tokens()
        self.refuse_unpriced = conf.unpriced_models() == "refuse"
        self.configured = True

    @property
    def tick(self) -> float:
        """Seconds between lease renewals (and everything else the upkeep does)."""
        return self.lease / 3

    async def close(self) -> None:
        if self.upkeep_task is not None:
            self.upkeep_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.upkeep_task
            self.upkeep_task = None
        self.flush()
        if self.retries and self.redis is not None:
            with contextlib.suppress(*LIMITS_ERRORS):
                await self.retry_settles()
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

    def ensure_upkeep(self) -> None:
        if self.upkeep_task is None or self.upkeep_task.done():
            self.upkeep_task = asyncio.ensure_future(self.upkeep())

    # --- admit --------------------------------------------------------------------
    async def admit(
        self,
        request_id: str,
        key: KeyContext,
        team: TeamContext,
        ask: Ask,
        endpoint: Endpoint,
        count_prompt: Callable[[], Awaitable[PromptTokens]],
        *,
        dialect: str = "chat",
        client_request_id: str = "",
    ) -> Hold | None:
        """Check, hold and record, or raise the refusal. None when the model has no
        route (the route step refuses it). ``dialect`` (what the client speaks) and
        ``client_request_id`` (its own id for the request) are for the record."""
        if not self.configured:
            self.configure()
        targets = routing.candidates(team, ask.model)
        if not targets:
            return None
        quota = team.quota
        rates = [quota.rates.get((t.upstream.provider, t.upstream.model)) for t in targets]
        if None in rates:
            self.unpriced([t for t, rate in zip(targets, rates, strict=True) if rate is None])
        hold = Hold(id=request_id, team_id=team.team_id, key_id=key.key_id, quota=quota,
                    key_limits=key.limits)  # fmt: skip

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
        # more than it holds, at the dearest target; the record names that target until
        # the relay reports the one it used. Tokens per minute: the realistic estimate
        # (module docstring), which is also what a reaper bills for the prompt.
        dearest, price = targets[0], None
        for target, rate in zip(targets, rates, strict=True):
            if rate is None:
                continue
            cost = rate.estimate(prompt.bound, money_out)
            if price is None or cost > hold.cost:
                dearest, price, hold.cost = target, rate, cost
        hold.prompt = prompt.estimate
        hold.tokens = prompt.estimate + tpm_out
        hold.team_active = quota.prepaid or quota.limits.any
        hold.key_active = key.limits.any
        limited = {
            t.credential_id: quota.credentials[t.credential_id]
            for t in targets
            if t.credential_id in quota.credentials
        }
        enforced = hold.team_active or hold.key_active or bool(limited)
        hold.record = script.Record(
            request_id=request_id,
            key_id=key.key_id,
            started_ms=int(time.time() * 1000),
            held=hold.cost,
            prompt=prompt.estimate,
            team_held=hold.team_active,
            key_held=hold.key_active,
            endpoint=endpoint,
            dialect=dialect,
            alias=ask.model,
            streamed=bool(ask.stream),
            client_request_id=client_request_id,
            target=script.Target(
                dearest.credential_id,
                dearest.upstream.provider,
                dearest.upstream.model,
                price.input if price else 0,
                price.output if price else 0,
            ),
        )
        hold.member = hold.record.member()
        if time.monotonic() < self.broken_until:
            return self.unavailable(hold, None, enforced)

        request = script.Admit(
            record=hold.member,
            cost=hold.cost,
            tokens=hold.tokens,
            key_id=key.key_id,
            key=key.limits if hold.key_active else None,
            credentials=limited,
            every_target_limited=all(t.credential_id in limited for t in targets),
        )
        noseed = False
        seeds = 0
        while True:
            try:
                reply = await self.call_admit(
                    team.team_id, quota, request, hold.team_active, noseed
                )
                if int(reply[0]) == 1 or _text(reply[1]) != "seed":
                    break
                # The store has never counted this scope (or lost it): the ledger first.
                seeds += 1
                scope_key = key.key_id if int(reply[2]) == 2 else None
                if not await self.seed((team.team_id, scope_key)) or seeds >= 2:
                    noseed = True
            except LIMITS_ERRORS as exc:
                return self.unavailable(hold, exc, enforced)
        self.timeouts = 0
        if int(reply[0]) != 1:
            raise self.refusal(reply, key, team)
        hold.placed = True
        hold.admitted_at = time.monotonic()
        self.live[hold.id] = hold
        self.ensure_upkeep()
        for scope, active in (((team.team_id, None), hold.team_active),
                              ((team.team_id, key.key_id), hold.key_active)):  # fmt: skip
            if active and scope not in self.reconciled:
                if len(self.reconciled) > 100_000:
                    self.reconciled.clear()
                self.reconciled[scope] = time.monotonic()
        hold.headers = rate_headers(reply[1:13])
        if len(reply) > 13 and self.cooldowns is not None:
            self.cool_exhausted(targets, list(limited), reply[13:])
        return hold

    async def call_admit(
        self, team_id: str, quota: TeamQuota, request: script.Admit, active: bool, noseed: bool
    ) -> list[Any]:
        """One request's admit. On Redis, admits of one team (and one snapshot of its
        limits) made in the same event-loop turn go as one call: nothing waits for a
        batch to fill, the batch is what one write would have carried anyway."""
        if self.local is not None or noseed:
            keys, args = self.admit_call(team_id, quota, [request], active, noseed)
            await self.ensure_registered(team_id)
            reply = await self.run(keys, args)
            return list(reply[0])
        batch = self.admits.get((team_id, id(quota)))
        if batch is None:
            batch = self.admits[(team_id, id(quota))] = (quota, active, [])
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        batch[2].append((request, future))
        if not self.admit_flush:
            self.admit_flush = True
            asyncio.get_running_loop().call_soon(self.flush_admits)
        return await future

    def admit_call(
        self,
        team_id: str,
        quota: TeamQuota,
        requests: Sequence[script.Admit],
        active: bool,
        noseed: bool = False,
    ) -> script.Call:
        day, month = periods()
        return script.admit_call(
            team_id=team_id,
            requests=requests,
            team=quota.limits if active else None,
            granted=quota.granted if quota.prepaid else None,
            lease_ms=int(self.lease * 1000),
            window_ms=int(self.window_ms),
            day=day,
            month=month,
            prune_ms=int(self.tick * 1000),
            noseed=noseed,
        )

    def flush_admits(self) -> None:
        self.admit_flush = False
        batches, self.admits = self.admits, {}
        for (team_id, _), (quota, active, waiting) in batches.items():
            for first in range(0, len(waiting), ADMIT_BATCH_MAX):
                self.start(
                    self.send_admits(
                        team_id, quota, active, waiting[first : first + ADMIT_BATCH_MAX]
                    )
                )

    async def send_admits(
        self,
        team_id: str,
        quota: TeamQuota,
        active: bool,
        waiting: list[tuple[script.Admit, asyncio.Future[list[Any]]]],
    ) -> None:
        keys, args = self.admit_call(team_id, quota, [w[0] for w in waiting], active)
        try:
            await self.ensure_registered(team_id)
            replies = await self.run(keys, args)
        except BaseException as exc:
            for _, future in waiting:
                if not future.done():
                    future.set_exception(
                        exc if isinstance(exc, Exception) else RedisConnectionError()
                    )
            if not isinstance(exc, Exception):
                raise
            return
        for (request, future), reply in zip(waiting, replies, strict=True):
            if not future.done():
                future.set_result(list(reply))
            elif int(reply[0]) == 1:
                self.release(team_id, request, quota, active)

    def release(self, team_id: str, request: script.Admit, quota: TeamQuota, active: bool) -> None:
        """An admitted request whose caller is gone (cancelled while waiting): let go."""
        record = script.Record.parse(request.record)
        item = script.Settle(
            record=request.record,
            request_id=record.request_id,
            key_id=request.key_id,
            cost=0,
            held=request.cost,
            tokens_back=request.tokens,
            used=0,
            at_ms=int(time.time() * 1000),
            renewed=False,
            team_active=active,
            team_tpm=quota.limits.tpm,
            key_active=request.key is not None,
            key_tpm=request.key.tpm if request.key is not None else None,
        )
        self.enqueue(Pending(team_id, item, time.time()))

    async def ensure_registered(self, team_id: str) -> None:
        """At most once a lease per team, register it with the reapers (in the same
        write as the admit call it comes with)."""
        now = time.time()
        due = self.registered.get(team_id)
        if due is not None and now < due - self.lease:
            return
        self.registered[team_id] = now + 2 * self.lease
        self.start(self.register({team_id: now + 2 * self.lease}))

    async def register(self, teams: dict[str, float]) -> None:
        keys, args = script.index_call({t: int(due * 1000) for t, due in teams.items()})
        try:
            await self.run(keys, args)
        except LIMITS_ERRORS:
            for team_id in teams:
                self.registered.pop(team_id, None)

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

    def unavailable(self, hold: Hold, exc: BaseException | None, enforced: bool = True) -> Hold:
        """The limits store did not answer: serve or refuse, as configured (a team without
        limits is served, its record unwritten)."""
        mode = (hold.quota.on_redis_failure or conf.on_redis_failure()) if enforced else "open"
        UNAVAILABLE.labels(mode if enforced else "unrecorded").inc()
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
    def settle(
        self, hold: Hold, target: Target | None, usage: Usage, at: float | None = None
    ) -> Callable[[], None] | None:
        """Work out the real cost of an admitted request whose usage event is written at
        ``at`` (the event's ``created_at``; now by default). Returns the call that sends the
        settle (None when there is nothing to send): the relay makes it once the event is
        written (``Sink.emit``'s ``then``), so a process that dies before that leaves the
        record for a reaper rather than neither. Never blocks, never raises: the response
        is already out."""
        try:
            pending = self.prepare_settle(hold, target, usage, time.time() if at is None else at)
        except Exception:
            # An unsettled record is reaped.
            log.exception("could not settle hold %s", hold.id)
            return None
        if pending is None:
            return None

        def send() -> None:
            try:
                self.enqueue(pending)
            except Exception:
                log.exception("could not settle hold %s", hold.id)

        return send

    def prepare_settle(
        self, hold: Hold, target: Target | None, usage: Usage, at: float
    ) -> Pending | None:
        cost = 0
        if target is not None and (usage.prompt_tokens or usage.completion_tokens):
            rate = hold.quota.rates.get((target.upstream.provider, target.upstream.model))
            if rate is not None:
                cost = rate.cost_of(usage)
        used = usage.prompt_tokens + usage.completion_tokens
        limits = hold.quota.credentials.get(target.credential_id) if target is not None else None
        if not (hold.placed or hold.team_active or hold.key_active or limits is not None):
            return None  # nothing recorded, nothing counted
        hold.settling = True
        item = script.Settle(
            record=hold.member if hold.placed else "",
            request_id=hold.id,
            key_id=hold.key_id,
            cost=cost,
            held=hold.cost,
            tokens_back=hold.tokens - used if hold.placed else 0,
            used=used,
            at_ms=math.floor(at * 1000),
            renewed=hold.renewed,
            team_active=hold.team_active,
            team_tpm=hold.quota.limits.tpm,
            key_active=hold.key_active,
            key_tpm=hold.key_limits.tpm,
            credential_id=target.credential_id if target is not None and limits else None,
            credential=limits,
        )
        return Pending(hold.team_id, item, at)

    def enqueue(self, pending: Pending) -> None:
        if self.local is not None:
            self.send_now([pending])
            return
        if self.redis is None:
            return
        batch = self.batches.setdefault(pending.team_id, [])
        batch.append(pending)
        if len(batch) >= SETTLE_BATCH_MAX:
            self.start(self.send(self.batches.pop(pending.team_id)))
        if self.flusher is None:
            self.flusher = self.start(self.flush_soon())

    def start(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def flush_soon(self) -> None:
        await asyncio.sleep(SETTLE_BATCH_SECONDS)
        self.flusher = None
        self.flush()

    def flush(self) -> None:
        """Send every batch of settles waiting (one call per team)."""
        batches, self.batches = self.batches, {}
        for items in batches.values():
            self.start(self.send(items))

    def send_now(self, items: list[Pending]) -> None:
        """The in-process store: settle at once."""
        assert self.local is not None
        day, month = periods()
        keys, args = script.settle_call(
            items[0].team_id, [p.item for p in items], int(self.window_ms), day, month
        )
        self.settled(items, self.local.run(keys, args))

    async def send(self, items: list[Pending]) -> bool:
        day, month = periods()
        keys, args = script.settle_call(
            items[0].team_id, [p.item for p in items], int(self.window_ms), day, month
        )
        try:
            reply = await self.run(keys, args)
        except LIMITS_ERRORS as exc:
            self.settle_failed(items, exc)
            return False
        self.settled(items, reply)
        return True

    def settled(self, items: Sequence[Pending], reply: Sequence[Any]) -> None:
        for pending, status, skipped in zip(items, reply[::2], reply[1::2], strict=True):
            item = pending.item
            # Settled: the lease needs no more renewals.
            self.live.pop(item.request_id, None)
            status = int(status)
            if int(skipped):
                # A reconciliation read the ledger after the event was written: the event
                # is in its totals, or (still in the usage stream) in the next one's.
                self.mark_dirty(pending.team_id, item)
            elif status == 2:
                # A reaper billed it from its record (an estimate); the ledger keeps
                # whichever event came first, and the counters follow the ledger.
                log.info("request %s was settled after a reaper billed it", item.request_id)
                self.mark_dirty(pending.team_id, item)
            elif status == 3 and item.record:
                # Already settled (a retry whose first reply was lost), or the store lost
                # its data: counted nowhere for sure, so reconcile.
                self.mark_dirty(pending.team_id, item)

    def settle_failed(self, items: list[Pending], exc: BaseException) -> None:
        """Keep failed settles for the next tick (the record stays held meanwhile, and
        its lease renewed, so a reaper does not take it)."""
        UNAVAILABLE.labels("settle_retried").inc(len(items))
        self.failures += 1
        self.retries.extend(items)
        if len(self.retries) > RETRY_MAX:
            dropped, self.retries = self.retries[:-RETRY_MAX], self.retries[-RETRY_MAX:]
            for pending in dropped:
                self.live.pop(pending.item.request_id, None)
                self.mark_dirty(pending.team_id, pending.item)
        now = time.monotonic()
        if now - self.last_warning > WARN_EVERY:
            self.last_warning = now
            log.warning(
                "could not settle %d requests (%s); retrying each %.1f s until the limits "
                "store answers",
                len(items),
                type(exc).__name__,
                self.tick,
            )

    async def retry_settles(self) -> None:
        if not self.retries:
            return
        pending, self.retries = self.retries, []
        by_team: dict[str, list[Pending]] = {}
        for p in pending:
            by_team.setdefault(p.team_id, []).append(p)
        batches = [
            items[first : first + SETTLE_BATCH_MAX]
            for items in by_team.values()
            for first in range(0, len(items), SETTLE_BATCH_MAX)
        ]
        for number, batch in enumerate(batches):
            if not await self.send(batch):
                # Still away: keep the rest for the next tick rather than wait on each.
                for rest in batches[number + 1 :]:
                    self.retries.extend(rest)
                return

    def mark_dirty(self, team_id: str, item: script.Settle) -> None:
        """Reconcile the request's scopes once its event is surely in the ledger (a lease
        from now: the usage stream is seconds behind), and a few times after."""
        not_before = time.time() + self.lease
        if item.team_active:
            self.dirty[(team_id, None)] = (not_before, DIRTY_ROUNDS)
        if item.key_active:
            self.dirty[(team_id, item.key_id)] = (not_before, DIRTY_ROUNDS)

    # --- upkeep: leases, retries, reconciliation, reaping -------------------------------
    async def upkeep(self) -> None:
        """Runs while the process serves: every third of a lease."""
        while True:
            await asyncio.sleep(self.tick * random.uniform(0.8, 1.2))
            for step in (self.renew, self.retry_settles, self.reconcile_due, self.reap):
                try:
                    await step()
                except LIMITS_ERRORS:
                    pass  # the store is away: the next tick tries again
                except Exception:
                    log.exception("limits upkeep step %s failed", step.__name__)

    async def renew(self) -> None:
        """Renew the leases of this process's requests in flight, one call per team, and
        keep their teams registered with the reapers."""
        now = time.monotonic()
        by_team: dict[str, list[Hold]] = {}
        for hold in list(self.live.values()):
            if not hold.gone and hold.record and now - hold.admitted_at >= self.tick / 2:
                by_team.setdefault(hold.team_id, []).append(hold)
        if not by_team:
            return
        await self.register({team_id: time.time() + 2 * self.lease for team_id in by_team})
        for team_id in by_team:
            self.registered[team_id] = time.time() + 2 * self.lease
        for team_id, holds in by_team.items():
            reports = [h.report() for h in holds]
            entries = [
                (h.record, h.member, "" if r == h.reported else r)
                for h, r in zip(holds, reports, strict=True)
                if h.record is not None  # always: only holds with a record are renewed
            ]
            for hold in holds:
                hold.renewed = True  # its report (or a reaper's mark) may be in the store
            keys, args = script.renew_call(team_id, entries, int(self.lease * 1000))
            reply = await self.run(keys, args)
            self.renewal_calls += 1
            self.renewed_records += len(holds)
            for hold, report, status in zip(holds, reports, reply, strict=True):
                if int(status) == 1:
                    hold.reported = report
                else:
                    hold.gone = True
                    if not hold.settling:  # a settle landing meanwhile removes it too
                        log.warning("request %s lost its in-flight record (reaped?)", hold.id)

    async def reconcile_due(self) -> None:
        """Reconcile the scopes a late or lost settle left behind; in the embedded default
        also every scope this process serves, every ``BATON_RECONCILE_SECONDS`` (with a
        limits Redis, Celery beat does that for every process: billing/tasks.py)."""
        now, clock = time.time(), time.monotonic()
        due: list[Scope] = [s for s, (after, _) in self.dirty.items() if after <= now]
        if self.local is not None:
            due += [
                s
                for s, last in self.reconciled.items()
                if clock - last >= self.reconcile_every and s not in self.dirty
            ]
        if due and not self.db.healthy:
            return  # the database is known to be away: the next tick tries again
        for scope in due[:RECONCILES_PER_TICK]:
            team_id, key_id = scope
            done = await in_thread(reconcile, team_id, key_id)
            if done.raised:
                log.info("raised the spend counters of %s to the ledger by %d nanos", scope,
                         done.raised)  # fmt: skip
            self.reconciled[scope] = time.monotonic()
            if scope in self.dirty:
                _, rounds = self.dirty[scope]
                if rounds <= 1:
                    del self.dirty[scope]
                else:
                    self.dirty[scope] = (time.time() + max(self.lease, 1.0), rounds - 1)

    async def reap(self) -> None:
        """Bill the requests of processes that died (any process's, this one's peers)."""
        if self.db.healthy:  # what it bills goes to the database
            await in_thread(reaper.reap)

    async def seed(self, scope: Scope) -> bool:
        """Reconcile a scope the store has never counted before admitting in it; False
        when the ledger cannot be read (admission then goes ahead without it)."""
        failed = self.seed_failed.get(scope)
        if failed is not None and time.monotonic() - failed < SEED_RETRY:
            return False
        pending = self.seeding.get(scope)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.seeding[scope] = future
        ok = False
        try:
            # On the request path: a bounded wait, and the relay cache's breaker.
            await self.db.run(reconcile, scope[0], scope[1])
            ok = True
            self.seed_failed.pop(scope, None)
            self.reconciled[scope] = time.monotonic()
            # Events still in the usage stream are not in the totals yet: look again.
            self.dirty[scope] = (time.time() + self.lease, DIRTY_ROUNDS)
        except LIMITS_ERRORS:
            raise  # the breaker in admit() keeps this from hammering the store
        except Exception:
            self.seed_failed[scope] = time.monotonic()
            log.exception("could not read the ledger to seed the spend counters of %s", scope)
        finally:
            future.set_result(ok)
            del self.seeding[scope]
        return ok
