"""Operations for the data plane: metrics, health, readiness and graceful shutdown.

``/metrics``  Prometheus text format, served only to ``BATON_METRICS_TOKEN`` (bearer) and/or
              from ``BATON_METRICS_ALLOW`` networks (loopback only when neither is set). With
              several worker processes ``PROMETHEUS_MULTIPROC_DIR`` makes any worker answer for
              all of them (prometheus_client's multiprocess mode); the gauges of a worker that
              died (even by SIGKILL) leave the sums at the next scrape.
``/healthz``  liveness: the process answers. No I/O.
``/readyz``   readiness: the database answers (in a worker thread, with a timeout), Redis
              answers (when configured), the usage sink is not stuck, the process is not
              draining. 503 with a JSON body naming what failed.

Per request the relay calls ``record(call)`` once, after settling; label children are cached
so that costs a few dictionary lookups and counter increments (``bench/metrics_cost.py``
measures it). Gauges that describe the process (open streams, unsent usage events) are set by
a background task once a second, never on the request path.

``Lifecycle`` is the graceful shutdown: on SIGTERM/SIGINT the process reports itself not
ready, lets open streams run for ``BATON_SHUTDOWN_GRACE_SECONDS``, then ends the rest cleanly
(a final SSE error event, so clients see why) and records their usage; the sink is flushed,
retrying while Redis is briefly unavailable, before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from django.conf import settings
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

from config import client_address
from wire.dialects import Refusal

if TYPE_CHECKING:
    from gateway.call import Call
    from gateway.metering import Sink


class RelayApp(Protocol):
    """What the operations endpoints and reports read of the running relay (gateway/asgi.py)."""

    open_streams: int
    lifecycle: Lifecycle
    sink: Sink | None
    redis: Any
    tasks: list[asyncio.Task[Any]]

    async def ensure_started(self) -> None: ...


log = logging.getLogger("baton.ops")
request_log = logging.getLogger("baton.requests")

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
REPORT_INTERVAL = 1.0

# Latency buckets from 5 ms to 2 minutes (LLM calls), overhead buckets from 50 us to 1 s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
OVERHEAD_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip

REQUESTS = Counter(
    "baton_requests",
    "Relay requests by endpoint, serving provider, upstream model and HTTP status.",
    ["endpoint", "provider", "model", "status"],
)
LATENCY = Histogram(
    "baton_request_duration_seconds",
    "Whole relay request time (to the last byte), by provider, model and status.",
    ["provider", "model", "status"],
    buckets=LATENCY_BUCKETS,
)
OVERHEAD = Histogram(
    "baton_overhead_seconds",
    "Time Baton itself added to a request (total minus time waiting on upstreams).",
    ["provider", "model"],
    buckets=OVERHEAD_BUCKETS,
)
TTFB = Histogram(
    "baton_stream_first_byte_seconds",
    "Streams: time until the first byte was sent to the client.",
    ["provider", "model"],
    buckets=LATENCY_BUCKETS,
)
UPSTREAM_ERRORS = Counter(
    "baton_upstream_errors",
    "Failed upstream attempts (connect errors, timeouts, 429, 5xx, rejected credentials).",
    ["provider", "code"],
)
FALLBACKS = Counter(
    "baton_fallbacks", "Requests moved on to another target after an upstream failure."
)
REFUSALS = Counter(
    "baton_refusals",
    "Requests Baton refused itself (bad key, unknown model, limits, budget, bad body).",
    ["reason"],
)
TOKENS = Counter(
    "baton_tokens", "Tokens relayed, by provider, model and kind.", ["provider", "model", "kind"]
)
COST = Counter("baton_cost", "Cost charged for relayed requests, by currency.", ["currency"])
USAGE_WRITTEN = Counter("baton_usage_events_written", "Usage events handed to durable storage.")
OPEN_STREAMS = Gauge(
    "baton_open_streams", "Streams being relayed right now.", multiprocess_mode="livesum"
)
SINK_PENDING = Gauge(
    "baton_usage_events_pending",
    "Usage events waiting in process memory to be written.",
    multiprocess_mode="livesum",
)
SINK_OLDEST = Gauge(
    "baton_usage_oldest_pending_seconds",
    "Age of the oldest usage event not yet written.",
    multiprocess_mode="livemax",
)
DRAINING = Gauge(
    "baton_draining", "1 while the process is shutting down.", multiprocess_mode="livemax"
)

_children: dict[tuple[str, str, str, str], tuple[Any, Any, Any]] = {}
_model_children: dict[tuple[str, str], tuple[Any, Any, Any, Any, Any]] = {}


def record(call: Call) -> None:
    """Account one finished relay request. Called once per request, after settling."""
    try:
        _record(call)
    except Exception:  # metrics must never turn a served request into an error
        log.warning("could not record metrics for %s", call.request_id, exc_info=True)


def _record(call: Call) -> None:
    target = call.target
    provider = target.upstream.provider if target is not None else ""
    model = target.upstream.model if target is not None else ""
    status = call.status or 500
    now = time.perf_counter()
    key = (call.endpoint, provider, model, str(status))
    children = _children.get(key)
    if children is None:
        children = (
            REQUESTS.labels(*key),
            LATENCY.labels(provider, model, key[3]),
            OVERHEAD.labels(provider, model),
        )
        _children[key] = children
    total = now - call.started
    children[0].inc()
    children[1].observe(total)
    if call.attempts == 0:
        # Refused before any upstream was tried: Baton's own answer.
        if status >= 400:
            REFUSALS.labels(call.error_class or str(status)).inc()
    else:
        children[2].observe(max(0.0, total - call.upstream_seconds))
        if call.attempts > 1:
            FALLBACKS.inc(call.attempts - 1)
        usage = call.usage
        if usage.prompt_tokens or usage.completion_tokens:
            per_model = _model_children.get((provider, model))
            if per_model is None:
                per_model = (
                    TOKENS.labels(provider, model, "prompt"),
                    TOKENS.labels(provider, model, "completion"),
                    TOKENS.labels(provider, model, "cached"),
                    TOKENS.labels(provider, model, "reasoning"),
                    TTFB.labels(provider, model),
                )
                _model_children[(provider, model)] = per_model
            per_model[0].inc(usage.prompt_tokens)
            per_model[1].inc(usage.completion_tokens)
            if usage.cached_tokens:
                per_model[2].inc(usage.cached_tokens)
            if usage.reasoning_tokens:
                per_model[3].inc(usage.reasoning_tokens)
            if call.ttfb is not None:
                per_model[4].observe(call.ttfb)
            hold = getattr(call, "hold", None)  # the admit step's hold, when quotas apply
            if hold is not None:
                _record_cost(hold, provider, model, usage)
    mode = settings.BATON_REQUEST_LOG
    if mode == "all" or (mode == "errors" and (status >= 500 or call.attempts > 1)):
        _log_request(call, provider, model, status, total)


def _record_cost(hold: Any, provider: str, model: str, usage: Any) -> None:
    """The request's price at the team's rate (the same rate admission settles with)."""
    try:
        rate = hold.quota.rates.get((provider, model))
        if rate is None:
            return
        nanos = rate.cost_of(usage)
        if nanos:
            COST.labels(str(hold.quota.currency)).inc(nanos / 1e9)
    except Exception:  # a metric must never break a request
        log.debug("could not price a request for metrics", exc_info=True)


def _log_request(call: Call, provider: str, model: str, status: int, total: float) -> None:
    """One line per request: identifiers, outcome and timings, never content or secrets."""
    usage = call.usage
    request_log.log(
        logging.WARNING if status >= 500 else logging.INFO,
        "%s %s -> %s %s",
        call.endpoint or "relay",
        call.alias,
        provider or "-",
        status,
        extra={
            "request_id": call.request_id,
            "client_request_id": call.client_request_id,
            "team_id": call.key.team_id if call.key is not None else None,
            "api_key_id": call.key.key_id if call.key is not None else None,
            "alias": call.alias,
            "provider": provider,
            "model": model,
            "status": status,
            "error_class": call.error_class,
            "attempts": call.attempts,
            "streamed": call.streamed,
            "latency_ms": round(total * 1000, 3),
            "overhead_ms": round(max(0.0, total - call.upstream_seconds) * 1000, 3),
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
        },
    )


def upstream_error(provider: str, code: str | None) -> None:
    UPSTREAM_ERRORS.labels(provider, code or "error").inc()


def report(relay: RelayApp) -> None:
    """Copy process state into gauges (the background task calls this once a second)."""
    OPEN_STREAMS.set(relay.open_streams)
    DRAINING.set(1 if relay.lifecycle.draining else 0)
    sink = relay.sink
    if sink is not None:
        SINK_PENDING.set(len(sink.pending))
        SINK_OLDEST.set(oldest_pending_age(sink))
        written = sink.written
        last = getattr(sink, "_reported_written", 0)
        if written > last:
            USAGE_WRITTEN.inc(written - last)
        sink._reported_written = written  # type: ignore[attr-defined]


async def report_forever(relay: RelayApp) -> None:
    while True:
        try:
            report(relay)
        except Exception:
            log.warning("could not update process metrics", exc_info=True)
        await asyncio.sleep(REPORT_INTERVAL)


def oldest_pending_age(sink: Sink) -> float:
    pending = sink.pending
    if not pending:
        return 0.0
    return max(0.0, time.time() - pending[0].created_at)


# --- the endpoints -------------------------------------------------------------------------


class Ops:
    """ASGI handler for /metrics, /healthz and /readyz of one RelayApp."""

    paths = frozenset({"/metrics", "/healthz", "/readyz"})

    def __init__(self, relay: RelayApp) -> None:
        self.relay = relay
        self._db_check: asyncio.Future[None] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"]
        if scope["method"] not in ("GET", "HEAD"):
            await respond(send, 405, {"error": "method not allowed"})
        elif path == "/healthz":
            await respond(send, 200, {"status": "ok"})
        elif path == "/readyz":
            status, body = await self.readiness()
            await respond(send, status, body)
        else:
            refusal = metrics_refusal(scope)
            if refusal is not None:
                status, message = refusal
                extra = [(b"www-authenticate", b"Bearer")] if status == 401 else []
                await respond(send, status, {"error": message}, extra)
                return
            payload = await self.exposition()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", CONTENT_TYPE_LATEST.encode())],
                }
            )
            await send({"type": "http.response.body", "body": payload})

    # --- /metrics ----------------------------------------------------------------
    async def exposition(self) -> bytes:
        await self.relay.ensure_started()
        report(self.relay)
        if MULTIPROCESS:
            from prometheus_client import multiprocess

            forget_dead_processes(os.environ["PROMETHEUS_MULTIPROC_DIR"])
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            main = generate_latest(registry)
        else:
            main = generate_latest(REGISTRY)
        extra = CollectorRegistry()
        extra.register(_Static(await self.stream_families()))
        return main + generate_latest(extra)

    async def stream_families(self) -> list[GaugeMetricFamily]:
        """Shared state read at scrape time: the usage streams' length and consumer lag."""
        redis = self.relay.redis
        if redis is None:
            return []
        from billing.events import stream_keys

        streams = stream_keys(settings.BATON_USAGE_STREAMS)
        try:
            async with asyncio.timeout(settings.BATON_READY_TIMEOUT):
                pipe = redis.pipeline(transaction=False)
                for stream in streams:
                    pipe.xlen(stream)
                lengths = [int(n) for n in await pipe.execute()]
                pipe = redis.pipeline(transaction=False)
                busy = [s for s, n in zip(streams, lengths, strict=True) if n]
                for stream in busy:
                    pipe.xinfo_groups(stream)
                groups = [g for reply in (await pipe.execute() if busy else []) for g in reply]
        except Exception as exc:
            log.warning("metrics: could not read the usage streams: %s", type(exc).__name__)
            return []
        shards = GaugeMetricFamily(
            "baton_usage_stream_shard_length",
            "Usage events in each Redis usage stream (BATON_USAGE_STREAMS).",
            labels=["stream"],
        )
        for stream, length in zip(streams, lengths, strict=True):
            shards.add_metric([stream], length)
        lags: dict[str, int] = {}
        for group in groups:
            name = group.get("name", b"")
            value = group.get("lag")
            if value is None:
                value = group.get("pending", 0)
            label = name.decode() if isinstance(name, bytes) else str(name)
            lags[label] = lags.get(label, 0) + int(value or 0)
        lag = GaugeMetricFamily(
            "baton_usage_stream_lag",
            "Usage events in the Redis streams not yet read by a consumer group.",
            labels=["group"],
        )
        for label, value in lags.items():
            lag.add_metric([label], value)
        return [
            GaugeMetricFamily(
                "baton_usage_stream_length",
                "Usage events in the Redis streams (written, not yet trimmed).",
                value=sum(lengths),
            ),
            shards,
            lag,
        ]

    # --- /readyz -------------------------------------------------------------------
    async def readiness(self) -> tuple[int, dict[str, Any]]:
        relay = self.relay
        checks: dict[str, str] = {}
        if relay.lifecycle.draining:
            checks["process"] = "draining: shutting down"
        await relay.ensure_started()
        database, redis = await asyncio.gather(self.check_database(), self.check_redis())
        checks["database"] = database
        if redis is not None:
            checks["redis"] = redis
        sink = relay.sink
        if sink is not None:
            age = oldest_pending_age(sink)
            if age > settings.BATON_READY_MAX_SINK_AGE:
                checks["usage_sink"] = (
                    f"stuck: {len(sink.pending)} usage events unsent, oldest {age:.0f}s"
                )
            else:
                checks["usage_sink"] = "ok"
        failed = [name for name, result in checks.items() if result != "ok"]
        body: dict[str, Any] = {"status": "unavailable" if failed else "ready", "checks": checks}
        if failed:
            body["failed"] = failed
        return (503 if failed else 200), body

    async def check_database(self) -> str:
        """SELECT 1 in a worker thread, at most one at a time, never longer than the timeout."""
        from gateway.db import in_thread

        if self._db_check is None or self._db_check.done():
            self._db_check = asyncio.ensure_future(in_thread(_ping_database))
        try:
            await asyncio.wait_for(asyncio.shield(self._db_check), settings.BATON_READY_TIMEOUT)
        except TimeoutError:
            return f"timeout: no answer within {settings.BATON_READY_TIMEOUT:g}s"
        except Exception as exc:
            log.warning("readiness: database check failed: %s", exc)
            return f"error: {type(exc).__name__}"
        return "ok"

    async def check_redis(self) -> str | None:
        if not settings.REDIS_URL:
            return None
        redis = self.relay.redis
        if redis is None:
            return "error: not connected"
        try:
            async with asyncio.timeout(settings.BATON_READY_TIMEOUT):
                await redis.ping()
        except TimeoutError:
            return f"timeout: no answer within {settings.BATON_READY_TIMEOUT:g}s"
        except Exception as exc:
            log.warning("readiness: Redis check failed: %s", type(exc).__name__)
            return f"error: {type(exc).__name__}"
        return "ok"


def forget_dead_processes(directory: str) -> None:
    """Drop the gauges of worker processes that are gone. A worker that exits cleanly marks
    itself dead (``stop``); one killed outright (SIGKILL, the OOM killer) cannot, and its last
    values (open streams, unsent usage events) would be added to the live ones until the
    directory is emptied at the next start. Every gauge is a ``live*`` gauge, kept in a file
    named after its process id, so a scrape drops the files of processes that no longer
    exist, as ``mark_process_dead`` does. Counters and histograms of dead processes stay:
    their totals are still true."""
    from prometheus_client import multiprocess

    pids = set()
    for path in Path(directory).glob("gauge_live*_*.db"):
        with contextlib.suppress(ValueError):
            pids.add(int(path.stem.rsplit("_", 1)[1]))
    for pid in pids:
        if not _process_exists(pid):
            multiprocess.mark_process_dead(pid, directory)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


class _Static:
    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self) -> list[GaugeMetricFamily]:
        return self.families


def _ping_database() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def metrics_refusal(scope: dict[str, Any]) -> tuple[int, str] | None:
    """Why this scrape is refused, or None. Both conditions apply when both are configured."""
    token = settings.BATON_METRICS_TOKEN
    allow = settings.BATON_METRICS_ALLOW
    if allow or not token:
        client = client_address.from_scope(scope)
        if not client or not _address_allowed(client, allow):
            return 403, "metrics are not served to this address"
    if token:
        presented = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, credential = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    presented = credential.strip()
        if not hmac.compare_digest(presented, token.encode()):
            return 401, "a valid metrics bearer token is required"
    return None


def _address_allowed(address: str, allow: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    networks = [ipaddress.ip_network(n, strict=False) for n in allow] if allow else LOOPBACK
    return any(ip in network for network in networks)


async def respond(
    send: Any, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": orjson.dumps(body)})


# --- graceful shutdown ------------------------------------------------------------------------

# What ends a stream cut at shutdown, rendered in the client's dialect.
SHUTDOWN_REFUSAL = Refusal(
    status=503,
    message="Baton is restarting; this stream was ended early. Retry the request.",
    type="server_error",
    code="server_shutting_down",
)


class Lifecycle:
    """Draining on SIGTERM/SIGINT: not ready at once, open streams ended after the grace."""

    def __init__(self) -> None:
        self.draining = False
        self.streams_ended = False
        self.watchers: set[asyncio.Future[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Chain our handler in front of the server's (uvicorn's) signal handlers."""
        self._loop = asyncio.get_running_loop()
        if threading.current_thread() is not threading.main_thread():
            return  # signals are only delivered to the main thread (tests run servers in threads)
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            if not callable(previous) or getattr(previous, "__self__", None) is self:
                # Only in front of a server that drains on its own (uvicorn does): with the
                # default disposition the process would die at once anyway.
                continue
            self._previous[sig] = previous
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.begin_drain)
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, frame)

    def begin_drain(self, grace: float | None = None) -> None:
        if self.draining:
            return
        self.draining = True
        grace = settings.BATON_SHUTDOWN_GRACE_SECONDS if grace is None else grace
        log.info("shutting down: %d open streams get %.0fs to finish", len(self.watchers), grace)
        loop = self._loop or asyncio.get_running_loop()
        loop.call_later(grace, self.end_streams)

    def end_streams(self) -> None:
        """Grace is over: make every open stream end itself (see ``RelayApp.relay_stream``)."""
        self.streams_ended = True
        if self.watchers:
            log.warning("ending %d open streams at shutdown", len(self.watchers))
        for watcher in list(self.watchers):
            watcher.cancel()

    def track(self, watcher: asyncio.Future[Any]) -> None:
        """Register a stream's disconnect watcher: cancelling it ends the stream."""
        if self.streams_ended:
            watcher.cancel()
            return
        self.watchers.add(watcher)
        watcher.add_done_callback(self.watchers.discard)

    async def end_stream(self, send: Any, pump: asyncio.Future[Any], tail: bytes) -> bool:
        """If the stream is being ended by shutdown, finish it cleanly for the client with
        ``tail`` (the dialect's error event and end of stream)."""
        if not self.streams_ended:
            return False
        with contextlib.suppress(BaseException):
            await asyncio.wait({pump})
        with contextlib.suppress(Exception):
            await send({"type": "http.response.body", "body": tail, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        return True


async def flush_remaining(sink: Sink | None, deadline_seconds: float = 10.0) -> None:
    """After the sink's own final flush: retry while events remain (Redis restarting...)."""
    if sink is None:
        return
    deadline = time.monotonic() + deadline_seconds
    while sink.pending and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        await sink.flush()
    if sink.pending:
        # Nothing else can be done in a process that is going away: leave a replayable record.
        for event in sink.pending:
            log.error(
                "usage event not written at shutdown", extra={"event": event.to_json().decode()}
            )


def start(relay: RelayApp) -> None:
    """At process start: the signal handlers and the process-metrics task."""
    relay.lifecycle.install()
    relay.tasks.append(asyncio.create_task(report_forever(relay)))


async def stop(relay: RelayApp) -> None:
    """At process end, after the sink's final flush."""
    await flush_remaining(relay.sink)
    if MULTIPROCESS:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())
