"""The benchmark's Python load generator (asyncio + aiohttp), run as its own process.

    python bench/loadgen.py MODE --spec JSON

It prints one JSON object on stdout: the measurements plus the generator's own CPU time, so the
report can show that the generator was not the bottleneck. Modes:

``unloaded``  one request at a time, rotating through the targets (direct to the fake upstream,
              through Baton), so drift affects all equally; total latency and time to first
              body byte.
``open``      open loop: requests start on a Poisson schedule at ``rate`` per second and per
              target for ``duration`` seconds, whatever happens to earlier ones (no coordinated
              omission: latency is measured from the scheduled start); arrivals alternate
              between the targets (direct and Baton) so both see the same conditions.
``streams``   ``count`` concurrent streams opened over ``ramp`` seconds, each read to the end.

wrk drives the saturated phases (bench/run.py); this generator covers what wrk cannot measure.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sys
import time
from typing import Any

import aiohttp
import orjson

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a Baton dependency
    uvloop = None  # type: ignore[assignment]


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "n": len(ordered),
        "p50": pick(0.50),
        "p90": pick(0.90),
        "p99": pick(0.99),
        "max": ordered[-1],
        "mean": sum(ordered) / len(ordered),
    }


PROMPT = "benchmark prompt, please answer"
# Headers a client of each dialect sends besides its key and the content type.
DIALECT_HEADERS = {"chat": {}, "messages": {"anthropic-version": "2023-06-01"}, "responses": {}}


def request_body(dialect: str, model: str, stream: bool, max_tokens: int) -> bytes:
    """The benchmark's request in ``dialect``: one user message, ``max_tokens`` of reply."""
    payload: dict[str, Any] = {"model": model}
    if dialect == "responses":
        payload |= {"input": PROMPT, "max_output_tokens": max_tokens}
    else:  # chat and Messages share this shape
        payload |= {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": max_tokens}
    if stream:
        payload["stream"] = True
    return orjson.dumps(payload)


class Target:
    """One endpoint to send requests to (the fake upstream itself, or Baton), in the
    target's ``dialect`` (chat completions unless it says otherwise)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.url: str = spec["url"]
        self.dialect: str = spec.get("dialect", "chat")
        self.headers = {
            "authorization": f"Bearer {spec['key']}",
            "content-type": "application/json",
            **DIALECT_HEADERS[self.dialect],
        }
        self.model: str = spec["model"]

    def body(self, stream: bool, max_tokens: int) -> bytes:
        return request_body(self.dialect, self.model, stream, max_tokens)


async def one(
    session: aiohttp.ClientSession, target: Target, body: bytes, start: float, stream: bool
) -> tuple[float, float, float | None, int]:
    """(total seconds, first-byte seconds, Baton's overhead header in ms, bytes) from ``start``."""
    async with session.post(target.url, data=body, headers=target.headers) as response:
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {(await response.read())[:200]!r}")
        header = response.headers.get("x-baton-overhead-ms")
        first = await response.content.readany()
        ttfb = time.perf_counter() - start
        size = len(first)
        if stream:
            while True:
                data = await response.content.readany()
                if not data:
                    break
                size += len(data)
            if not first.startswith(b"data:") and b"data:" not in first:
                raise RuntimeError("not an SSE stream")
        else:
            size += len(await response.read())
        return time.perf_counter() - start, ttfb, float(header) if header else None, size


def session(limit: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=limit, force_close=False, keepalive_timeout=60)
    return aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=600), auto_decompress=False
    )


async def unloaded(spec: dict[str, Any]) -> dict[str, Any]:
    labels = list(spec["targets"])
    targets = {name: Target(target) for name, target in spec["targets"].items()}
    out: dict[str, Any] = {}
    async with session(4) as http:
        for stream in (False, True):
            name = "stream" if stream else "json"
            samples: dict[str, dict[str, list[float]]] = {
                label: {"total": [], "ttfb": [], "header": []} for label in labels
            }
            bodies = {
                label: target.body(stream, spec["max_tokens"]) for label, target in targets.items()
            }
            for i in range(spec["warmup"] + spec["requests"]):
                # Rotate the order so that no target always goes first.
                order = labels[i % len(labels) :] + labels[: i % len(labels)]
                for label in order:
                    start = time.perf_counter()
                    total, ttfb, header, _ = await one(
                        http, targets[label], bodies[label], start, stream
                    )
                    if i >= spec["warmup"]:
                        samples[label]["total"].append(total * 1000)
                        samples[label]["ttfb"].append(ttfb * 1000)
                        if header is not None:
                            samples[label]["header"].append(header)
            out[name] = {
                label: {metric: percentiles(values) for metric, values in metrics.items()}
                for label, metrics in samples.items()
            }
        # The floor any extra hop pays: Baton's /healthz (uvicorn + a bare ASGI answer), and
        # one Redis round trip (what the admit step and the sink each need at least once).
        if spec.get("healthz"):
            hop: list[float] = []
            for i in range(spec["warmup"] + spec["requests"]):
                start = time.perf_counter()
                async with http.get(spec["healthz"]) as response:
                    await response.read()
                if i >= spec["warmup"]:
                    hop.append((time.perf_counter() - start) * 1000)
            out["healthz_ms"] = percentiles(hop)
    if spec.get("redis_url"):
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(spec["redis_url"])
        pings: list[float] = []
        for i in range(spec["warmup"] + spec["requests"]):
            start = time.perf_counter()
            await client.ping()
            if i >= spec["warmup"]:
                pings.append((time.perf_counter() - start) * 1000)
        await client.aclose()
        out["redis_ping_ms"] = percentiles(pings)
    return out


async def open_loop(spec: dict[str, Any]) -> dict[str, Any]:
    """Poisson arrivals, ``rate`` per second for the first target of ``pattern``; arrivals are
    interleaved between the targets by ``pattern``, so that every target sees the same
    conditions (other load on the machine included)."""
    labels = list(spec["targets"])
    targets = {label: Target(spec["targets"][label]) for label in labels}
    # Which target each successive arrival goes to, e.g. 3 x Baton then 1 x direct.
    pattern: list[str] = spec.get("pattern") or labels
    stream = spec["stream"]
    rate = spec["rate"] * len(pattern) / pattern.count(pattern[0])
    duration = spec["duration"]
    bodies = {label: t.body(stream, spec["max_tokens"]) for label, t in targets.items()}
    results: dict[str, dict[str, Any]] = {
        label: {"totals": [], "ttfbs": [], "headers": [], "errors": {}, "sent": 0}
        for label in labels
    }
    tasks: set[asyncio.Task[None]] = set()
    rng = random.Random(spec.get("seed", 1))

    async with session(0) as http:

        async def fire(label: str, scheduled: float) -> None:
            out: dict[str, Any] = results[label]
            try:
                total, ttfb, header, _ = await one(
                    http, targets[label], bodies[label], scheduled, stream
                )
            except Exception as exc:
                name = type(exc).__name__ + (f" {exc}" if isinstance(exc, RuntimeError) else "")
                out["errors"][name[:120]] = out["errors"].get(name[:120], 0) + 1
                return
            out["totals"].append(total * 1000)
            out["ttfbs"].append(ttfb * 1000)
            if header is not None:
                out["headers"].append(header)

        began = time.perf_counter()
        next_at = began
        sent = 0
        lateness: list[float] = []
        while next_at - began < duration:
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            lateness.append((time.perf_counter() - next_at) * 1000)
            label = pattern[sent % len(pattern)]
            results[label]["sent"] += 1
            task = asyncio.create_task(fire(label, next_at))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
            next_at += rng.expovariate(rate)
        if tasks:
            await asyncio.wait(tasks, timeout=60)
        elapsed = time.perf_counter() - began
    return {
        label: {
            "sent": out["sent"],
            "completed": len(out["totals"]),
            "errors": out["errors"],
            "offered_rate": rate * pattern.count(label) / len(pattern),
            "achieved_rate": out["sent"] / elapsed,
            "total_ms": percentiles(out["totals"]),
            "ttfb_ms": percentiles(out["ttfbs"]),
            "overhead_header_ms": percentiles(out["headers"]),
        }
        for label, out in results.items()
    } | {"schedule_lateness_ms": percentiles(lateness)}


async def streams(spec: dict[str, Any]) -> dict[str, Any]:
    target = Target(spec["target"])
    count, ramp = spec["count"], spec["ramp"]
    body = target.body(True, spec["max_tokens"])
    errors: dict[str, int] = {}
    chunks: list[int] = []
    durations: list[float] = []
    opened = 0

    async with session(0) as http:

        async def run_one(delay: float) -> None:
            nonlocal opened
            await asyncio.sleep(delay)
            started = time.perf_counter()
            reads = 0
            try:
                async with http.post(target.url, data=body, headers=target.headers) as response:
                    if response.status != 200:
                        raise RuntimeError(f"HTTP {response.status}")
                    opened += 1
                    tail = b""
                    while True:
                        data = await response.content.readany()
                        if not data:
                            break
                        reads += 1
                        tail = (tail + data)[-64:]
                    if b"[DONE]" not in tail:
                        raise RuntimeError("stream ended without [DONE]")
            except Exception as exc:
                name = type(exc).__name__ + (f" {exc}" if isinstance(exc, RuntimeError) else "")
                errors[name[:120]] = errors.get(name[:120], 0) + 1
                return
            chunks.append(reads)
            durations.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(run_one(ramp * i / count) for i in range(count)))
        elapsed = time.perf_counter() - began
    return {
        "streams": count,
        "opened": opened,
        "completed": len(durations),
        "errors": errors,
        "elapsed_s": elapsed,
        "duration_s": percentiles(durations),
        "reads_per_stream": percentiles([float(c) for c in chunks]),
    }


MODES = {"unloaded": unloaded, "open": open_loop, "streams": streams}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("--spec", required=True, help="JSON parameters")
    args = parser.parse_args()
    spec = orjson.loads(args.spec)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cpu_before = time.process_time()
    wall_before = time.perf_counter()
    run = uvloop.run if uvloop is not None else asyncio.run
    result = run(MODES[args.mode](spec))
    cpu = time.process_time() - cpu_before
    wall = time.perf_counter() - wall_before
    result["generator"] = {"cpu_s": cpu, "wall_s": wall, "cpu_share": cpu / wall if wall else 0}
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
