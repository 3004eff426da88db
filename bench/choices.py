"""The library and design choices of the hot path, each settled by a measurement.

Called by bench/run.py inside a running stack (``run_choices``); rendered by bench/report.py.

- JSON library: orjson vs the standard library on a typical request body and response.
- Upstream HTTP client: aiohttp vs httpx, client CPU per request against the fake upstream.
- Framework on the hot path: a Django async view behind Django's middleware vs a raw ASGI
  callable returning the same bytes, both under uvicorn (bench/probe_asgi.py).
- ASGI server: Baton under granian vs under uvicorn (uvloop + httptools), same worker count.
- Limits-store client: redis-py's asyncio client (a blocking connection pool, as a Redis
  client is usually set up) vs gateway/redis_pipe.py, both calling a script with the admit
  call's shape (14 keys, 26 arguments), one and eight callers at a time.
- Embedded limits store: the CPU one admit and its settle cost, one at a time, where the
  embedded default runs billing/quota/admission.lua in process (billing/quota/local.py: lupa and
  the few Redis commands the script uses) vs the same script on fakeredis (installed into
  bench/.tools for the comparison), and the same calls to the limits Redis through
  redis-py (client side only) for scale. Also standalone: ``python bench/choices.py
  embedded [redis-url]``.
- Frozen start-up heap: a full garbage-collector pass in a web process before and after
  ``gateway.heap.freeze_startup_heap`` (bench/gc_cost.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TOOLS = BENCH / ".tools"
GRANIAN = "granian==2.8.7"
FAKEREDIS = ["fakeredis==2.41.0", "sortedcontainers==2.4.0"]  # lupa and redis: Baton's own

REQUEST = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant. " * 20},
        {"role": "user", "content": "Summarise the following text please. " * 40},
    ],
    "temperature": 0.2,
    "max_tokens": 256,
    "stream": False,
}
RESPONSE = {
    "id": "chatcmpl-abc",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4o",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "word " * 200},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 400, "completion_tokens": 200, "total_tokens": 600},
}


def per_call_us(function: Callable[[], Any], iterations: int = 20_000) -> float:
    started = time.perf_counter()
    for _ in range(iterations):
        function()
    return (time.perf_counter() - started) / iterations * 1e6


def json_libraries() -> dict[str, float]:
    raw_request = json.dumps(REQUEST).encode()
    return {
        "orjson_parse_request_us": per_call_us(lambda: orjson.loads(raw_request)),
        "json_parse_request_us": per_call_us(lambda: json.loads(raw_request)),
        "orjson_dump_response_us": per_call_us(lambda: orjson.dumps(RESPONSE)),
        "json_dump_response_us": per_call_us(lambda: json.dumps(RESPONSE).encode()),
    }


CLIENT_SCRIPT = r"""
import asyncio, sys, time, orjson
which, url, n, conc = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
body = orjson.dumps({"model": "demo-chat", "messages": [{"role": "user", "content": "hi"}],
                     "max_tokens": 20, "stream": len(sys.argv) > 5})
headers = {"authorization": "Bearer sk-bench-upstream-0000", "content-type": "application/json"}

async def main():
    if which == "aiohttp":
        import aiohttp
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        async def one():
            async with session.post(url, data=body, headers=headers) as r:
                async for _ in r.content.iter_any():
                    pass
    else:
        import httpx
        session = httpx.AsyncClient(limits=httpx.Limits(max_connections=None, max_keepalive_connections=conc))
        async def one():
            async with session.stream("POST", url, content=body, headers=headers) as r:
                async for _ in r.aiter_raw():
                    pass
    async def worker(k):
        for _ in range(k):
            await one()
    for _ in range(50):
        await one()
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(n // conc) for _ in range(conc)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await (session.close() if which == "aiohttp" else session.aclose())
    print(orjson.dumps({"cpu_us_per_request": cpu / n * 1e6, "rps": n / wall}).decode())

import uvloop
uvloop.run(main())
"""


def http_clients(url: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for which in ("aiohttp", "httpx"):
        for stream in (False, True):
            args = [sys.executable, "-c", CLIENT_SCRIPT, which, url, "3000", "32"]
            if stream:
                args.append("stream")
            result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=180)
            key = f"{which}_{'stream' if stream else 'json'}"
            out[key] = (
                orjson.loads(result.stdout.strip().splitlines()[-1])
                if result.returncode == 0
                else {"error": result.stderr[-300:]}
            )
    return out


REDIS_SCRIPT = r"""
import asyncio, sys, time, orjson
sys.path.insert(0, sys.argv[3])
which, url = sys.argv[1], sys.argv[2]
LUA = "return #KEYS + #ARGV"
KEYS = [f"bq:{{team}}:k:{i}" for i in range(14)]
ARGS = ["admit", "req_0123456789abcdef", 660000, 12345678, 532, 60000, 0, 0, 0, 1,
        *range(1000, 1016)]

async def main():
    if which == "redis-py":
        import redis.asyncio as aioredis
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=512, timeout=1)
        client = aioredis.Redis.from_pool(pool)
        script = client.register_script(LUA)
        async def one():
            return await asyncio.wait_for(script(keys=KEYS, args=ARGS), 1)
    else:
        from gateway.redis_pipe import PipelinedRedis, Script
        client, script = PipelinedRedis(url, 1), Script(LUA)
        async def one():
            return await client.evalsha(script, KEYS, ARGS)
    out = {}
    for conc in (1, 8):
        n, latencies = 8000, []
        async def worker():
            for _ in range(n // conc):
                started = time.perf_counter()
                assert await one() == 40
                latencies.append(time.perf_counter() - started)
        for _ in range(200):
            await one()
        cpu = time.process_time()
        await asyncio.gather(*(worker() for _ in range(conc)))
        latencies.sort()
        out[f"c{conc}"] = {"cpu_us_per_call": (time.process_time() - cpu) / n * 1e6,
                           "p50_ms": latencies[len(latencies) // 2] * 1000}
    await client.aclose()
    print(orjson.dumps(out).decode())

import uvloop
uvloop.run(main())
"""


def redis_clients(url: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for which in ("redis-py", "pipelined"):
        result = subprocess.run(
            [sys.executable, "-c", REDIS_SCRIPT, which, url, str(ROOT)],
            capture_output=True,
            text=True,
            check=False,
            timeout=180,
        )
        out[which] = (
            orjson.loads(result.stdout.strip().splitlines()[-1])
            if result.returncode == 0
            else {"error": result.stderr[-300:]}
        )
    return out


EMBEDDED_SCRIPT = r"""
import os, sys, time, uuid, orjson
sys.path.insert(0, sys.argv[2])
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ["BATON_TESTING"] = "1"  # settings to import, no production secrets
import django
django.setup()
from billing.quota import script
from billing.quota.script import LUA
from billing.quota.snapshots import Limits
which = sys.argv[1]
if which == "embedded":
    from billing.quota.local import LocalLimits
    run = LocalLimits(LUA).run
else:
    if which == "fakeredis":
        sys.path.insert(0, sys.argv[3])
        import fakeredis
        client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    else:
        import redis
        client = redis.Redis.from_url(sys.argv[3])
    registered = client.register_script(LUA)
    run = lambda keys, args: registered(keys=keys, args=args)
BIG = 10**15
# The calls the relay makes (billing/quota/script.py), every kind of limit set on the team,
# its key and the provider credential: every check the script has runs, none refuses.
TEAM = Limits(rpm=10**6, tpm=10**9, concurrency=10**5, day=BIG, month=BIG)
KEY = Limits(rpm=10**6, tpm=10**9, concurrency=10**5, day=BIG, month=BIG, life=BIG)
CREDENTIAL = Limits(rpm=10**6, tpm=10**9)
team, key, credential = (str(uuid.uuid4()) for _ in range(3))
day, month = script.periods()
for scope in (None, key):
    run(*script.reconcile_call(team, scope, day, month, (0, 0, 0)))

def admit():
    request_id = "req_" + uuid.uuid4().hex
    record = script.Record(
        request_id=request_id, key_id=key, started_ms=int(time.time() * 1000), held=1000,
        prompt=20, team_held=True, key_held=True, endpoint="chat", dialect="chat",
        alias="bench", streamed=False, client_request_id="",
        target=script.Target(credential, "openai", "demo-chat", 2500000000, 10**10),
    ).member()
    keys, args = script.admit_call(
        team_id=team, granted=None, lease_ms=15000, window_ms=60000, day=day, month=month,
        prune_ms=5000, team=TEAM,
        requests=[script.Admit(record=record, cost=1000, tokens=100, key_id=key, key=KEY,
                               credentials={credential: CREDENTIAL}, every_target_limited=True)],
    )
    reply = run(keys, args)
    assert int(reply[0][0]) == 1, reply
    return record, request_id

def settle(record, request_id):
    item = script.Settle(
        record=record, request_id=request_id, key_id=key, cost=900, held=1000, tokens_back=10,
        used=90, at_ms=int(time.time() * 1000), renewed=False, team_active=True,
        team_tpm=TEAM.tpm, key_active=True, key_tpm=KEY.tpm, credential_id=credential,
        credential=CREDENTIAL,
    )
    reply = run(*script.settle_call(team, [item], 60000, day, month))
    assert int(reply[0]) == 1, reply

for _ in range(200):
    settle(*admit())
n = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
admit_cpu = settle_cpu = 0.0
for _ in range(n):
    started = time.process_time()
    held = admit()
    middle = time.process_time()
    settle(*held)
    admit_cpu += middle - started
    settle_cpu += time.process_time() - middle
print(orjson.dumps({"admit_us": admit_cpu / n * 1e6, "settle_us": settle_cpu / n * 1e6,
                    "cpu_us_per_admit_settle": (admit_cpu + settle_cpu) / n * 1e6}).decode())
"""


def ensure_fakeredis() -> Path | None:
    target = TOOLS / "fakeredis"
    if not (target / "fakeredis").exists():
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target"]
        subprocess.run([*pip, str(target), *FAKEREDIS], check=False, capture_output=True)
    return target if (target / "fakeredis").exists() else None


def embedded_admission(redis_url: str | None = None) -> dict[str, Any]:
    """CPU per admit + settle, one at a time: in process as the embedded default runs
    it, on fakeredis, and given a Redis, on it through redis-py (client side only)."""
    out: dict[str, Any] = {}
    fakeredis = ensure_fakeredis()
    for which, where in (
        ("embedded", ""),
        ("fakeredis", str(fakeredis or "")),
        ("redis", redis_url or ""),
    ):
        if not where and which != "embedded":
            out[which] = {"error": f"no {which} to measure"}
            continue
        result = subprocess.run(
            [sys.executable, "-c", EMBEDDED_SCRIPT, which, str(ROOT), where],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        out[which] = (
            orjson.loads(result.stdout.strip().splitlines()[-1])
            if result.returncode == 0
            else {"error": result.stderr[-300:]}
        )
    return out


def ensure_granian() -> bool:
    if not (TOOLS / "granian").exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(TOOLS), GRANIAN],
            check=False,
            capture_output=True,
        )
    return (TOOLS / "granian").exists()


def run_choices(
    stack: Any, args: Any, wrk: Callable[..., dict[str, Any]], log: Any
) -> dict[str, Any]:
    import run as bench_run  # bench/run.py (the caller)

    out: dict[str, Any] = {}
    log("choices: JSON libraries")
    out["json"] = json_libraries()
    log("choices: upstream HTTP client (aiohttp vs httpx)")
    out["http_client"] = http_clients(stack.target("direct")["url"])
    log("choices: limits-store client (redis-py vs pipelined)")
    out["redis_client"] = redis_clients(stack.env["REDIS_URL"])
    log("choices: the embedded default's limits store (admit + settle in process)")
    out["embedded_admission"] = embedded_admission(stack.env["REDIS_URL"])
    log("choices: a full GC pass, with and without the frozen start-up heap")
    gc_run = subprocess.run(
        [sys.executable, str(BENCH / "gc_cost.py")],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    out["gc"] = (
        orjson.loads(gc_run.stdout.strip().splitlines()[-1])
        if gc_run.returncode == 0
        else {"error": gc_run.stderr[-300:]}
    )
    seconds = max(3.0, args.seconds / 2)

    log("choices: Django view vs raw ASGI")
    port = bench_run.free_port()
    probe = stack.add(
        bench_run.Server(
            "probe",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "probe_asgi:application",
                "--app-dir",
                str(BENCH),
                "--port",
                str(port),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--workers",
                "1",
                "--lifespan",
                "off",
            ],
            stack.env,
            port,
        )
    )
    probe.wait_http("/raw")
    out["framework"] = {}
    for path in ("/raw", "/django"):
        run = wrk_get(f"http://127.0.0.1:{port}{path}", 64, seconds, probe.pids())
        out["framework"][path.strip("/")] = run
    probe.stop()

    log("choices: ASGI server (granian vs uvicorn)")
    out["server"] = {}
    for name in ("uvicorn", "granian"):
        if name == "granian" and not ensure_granian():
            out["server"]["granian"] = {"error": f"could not install {GRANIAN}"}
            continue
        port = bench_run.free_port()
        if name == "uvicorn":
            command = bench_run.uvicorn_command(port, args.workers)
            env = stack.env
        else:
            command = [
                sys.executable,
                "-m",
                "granian",
                "--interface",
                "asgi",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
                "--loop",
                "uvloop",
                "--no-ws",
                "config.asgi:application",
            ]
            env = {**stack.env, "PYTHONPATH": str(TOOLS)}
        server = stack.add(bench_run.Server(name, command, env, port))
        try:
            server.wait_http("/readyz")
        except SystemExit as exc:
            out["server"][name] = {"error": str(exc)[:300]}
            server.stop()
            continue
        time.sleep(1)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        problem = first_answer(url, stack.key)
        if problem:
            out["server"][name] = {"error": problem}
            server.stop()
            continue
        out["server"][name] = {
            kind: wrk(
                url,
                stack.key,
                "bench",
                kind == "stream",
                64,
                seconds,
                server.pids(),
                stack.fast.pids(),
            )
            for kind in ("json", "stream")
        }
        server.stop()
    return out


def first_answer(url: str, key: str) -> str | None:
    """None when one request through ``url`` succeeds, else what went wrong."""
    import urllib.error
    import urllib.request

    body = b'{"model":"bench","messages":[{"role":"user","content":"hi"}],"max_tokens":5}'
    request = urllib.request.Request(  # noqa: S310
        url,
        data=body,
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}: {exc.read()[:200]!r}"
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def wrk_get(url: str, connections: int, seconds: float, pids: list[int]) -> dict[str, Any]:
    import run as bench_run

    before = bench_run.cpu_seconds(pids)
    output = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{round(seconds)}s", url],
        capture_output=True,
        text=True,
        check=False,
    )
    cpu = bench_run.cpu_seconds(pids) - before
    rps = 0.0
    requests = 0
    for line in output.stdout.splitlines():
        if line.startswith("Requests/sec:"):
            rps = float(line.split()[1])
        if "requests in" in line:
            requests = int(line.split()[0])
    return {"rps": rps, "cpu_us_per_request": cpu / max(1, requests) * 1e6}


def render_choices(c: dict[str, Any]) -> list[str]:
    def num(value: Any, digits: int = 1) -> str:
        return f"{value:,.{digits}f}" if isinstance(value, int | float) else "n/a"

    js = c["json"]
    lines = [
        "### Choices, by measurement",
        "",
        f"- **JSON**: parsing a typical chat request takes {num(js['orjson_parse_request_us'])} us "
        f"with orjson vs {num(js['json_parse_request_us'])} us with `json`; writing a response "
        f"{num(js['orjson_dump_response_us'])} us vs {num(js['json_dump_response_us'])} us.",
    ]
    hc = c["http_client"]

    def client(key: str) -> str:
        x = hc.get(key, {})
        return (
            f"{num(x.get('cpu_us_per_request'), 0)} us CPU/request ({num(x.get('rps'), 0)} req/s)"
        )

    lines.append(
        f"- **Upstream HTTP client** (client process only, 32 concurrent, fake upstream): aiohttp "
        f"{client('aiohttp_json')} vs httpx {client('httpx_json')} non-streaming; streams: "
        f"aiohttp {client('aiohttp_stream')} vs httpx {client('httpx_stream')}."
    )
    rc = c.get("redis_client", {})
    if rc:

        def calls(name: str) -> str:
            x = rc.get(name, {})
            if "error" in x:
                return f"not measured ({x['error'][:80]})"
            return ", ".join(
                f"{num(x[c]['cpu_us_per_call'], 0)} us CPU/call and p50 {num(x[c]['p50_ms'], 3)}"
                f" ms {label}"
                for c, label in (("c1", "one at a time"), ("c8", "eight at a time"))
            )

        lines.append(
            "- **Limits-store client** (a script call shaped like admit: 14 keys, 26 arguments): "
            f"redis-py's asyncio client {calls('redis-py')}; Baton's pipelined connection "
            f"(gateway/redis_pipe.py) {calls('pipelined')}. Every request makes two such calls."
        )
    ea = c.get("embedded_admission", {})
    if ea:

        def pair(name: str) -> str:
            x = ea.get(name, {})
            if "error" in x:
                return f"not measured ({x['error'][:80]})"
            return (
                f"{num(x.get('cpu_us_per_admit_settle'), 0)} us CPU per admit + settle "
                f"({num(x.get('admit_us'), 0)} + {num(x.get('settle_us'), 0)})"
            )

        lines.append(
            "- **Embedded limits store** (one admit and its settle at a time, every kind of "
            "limit set): `billing/quota/admission.lua` in process on lupa with the few Redis commands "
            f"it uses (`billing/quota/local.py`) {pair('embedded')}; the same script on "
            f"fakeredis {pair('fakeredis')}; the same calls to the limits Redis through "
            f"redis-py, client side only, {pair('redis')}."
        )
    gcc = c.get("gc", {})
    if "full_pass_ms" in gcc:
        lines.append(
            f"- **Frozen start-up heap**: a web process tracks {gcc['tracked_objects']:,} objects "
            f"once the application is built; a full garbage-collector pass (which CPython runs "
            f"now and then as requests allocate, with the event loop stopped) takes "
            f"{num(gcc['full_pass_ms'], 2)} ms over them, and {num(gcc['full_pass_frozen_ms'], 2)}"
            " ms once `gateway.heap.freeze_startup_heap` has moved them out of the collector's way."
        )
    fw = c.get("framework", {})
    if fw:
        raw, dj = fw.get("raw", {}), fw.get("django", {})
        lines.append(
            f"- **Framework on the hot path** (one uvicorn worker, trivial JSON answer, wrk 64 "
            f"connections): raw ASGI {num(raw.get('rps'), 0)} req/s at "
            f"{num(raw.get('cpu_us_per_request'), 0)} us CPU/request vs a Django async view "
            f"behind Baton's middleware {num(dj.get('rps'), 0)} req/s at "
            f"{num(dj.get('cpu_us_per_request'), 0)} us. /v1 is raw ASGI: no Django middleware, "
            "no DRF."
        )
    sv = c.get("server", {})
    if sv:
        parts = []
        for name in ("uvicorn", "granian"):
            x = sv.get(name, {})
            if "error" in x:
                parts.append(f"{name}: not measured ({x['error'][:80]})")
            elif x:
                parts.append(
                    f"{name} {num(x['json']['rps'], 0)} req/s non-streaming "
                    f"({num(x['json']['server_cpu_ms_per_request'], 3)} CPU ms/req), "
                    f"{num(x['stream']['rps'], 0)} req/s streams "
                    f"({num(x['stream']['server_cpu_ms_per_request'], 3)} CPU ms/req)"
                )
        lines.append(
            "- **ASGI server** (Baton, same workers, 64 connections): " + "; ".join(parts) + "."
        )
    lines.append(
        "- **Stream chunks** are passed through as bytes: each SSE event is scanned for usage "
        "and rewritten only when it must be (wire/providers), never parsed and re-serialised "
        "as a whole."
    )
    return lines


if __name__ == "__main__":
    # Standalone: python bench/choices.py embedded [redis://...]
    if sys.argv[1:2] == ["embedded"]:
        print(json.dumps(embedded_admission(sys.argv[2] if len(sys.argv) > 2 else None), indent=1))
