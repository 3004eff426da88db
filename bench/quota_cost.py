"""Redis CPU per request of the quota script: admit plus settle, and lease renewals.

A focused measurement that takes one core for a few seconds, not the whole machine
(``make bench`` measures the same thing under load from ``INFO commandstats``, through
the real relay). It drives ``gateway.admission.Admission`` itself, as the relay does
(one pipelined connection, settles batched per team), against a Redis, with the
benchmark's limits (bench/setup_data.py: every limit of the team, the key and the
credential set, so every check runs and none refuses), and reads the Redis server's
own time for the script from ``INFO commandstats`` (``usec`` of ``evalsha``, which
includes the commands the script runs):

- ``admit_settle``: C requests in flight at a time (1: one after the other; 32: as
  under the benchmark's load) of T teams (1: the benchmark's one team, whose admits
  and settles share calls; 32: a team per connection, so that nothing is shared but a
  connection's own settles), Redis microseconds per request;
- ``no_limits``: the same for a team and key without limits (the record only);
- ``renewal``: requests held in flight while ``Admission.renew`` runs, Redis
  microseconds per renewal call and per record renewed.

    python bench/quota_cost.py [redis-url]     (default: a throwaway redis-server)

Prints one JSON line with a URL; without, also writes bench/results/quota-latest.json and .md
(``make bench`` runs it so; bench/update_docs.py copies the .md into BENCHMARKS.md). Run with
Baton's environment (BATON_TESTING=1 is enough).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

BIG = 10**15  # budgets in nanos: a million units of currency, never reached
REQUESTS = 20_000


def contexts(limited: bool) -> tuple[Any, Any]:
    from billing.money import Rate
    from billing.quota.snapshots import Limits, TeamQuota
    from gateway.contexts import KeyContext, Target, TeamContext
    from wire.providers import Upstream

    team_id, key_id, credential_id = (str(uuid.uuid4()) for _ in range(3))
    upstream = Upstream(
        provider="openai",
        family="openai",
        base_url="http://127.0.0.1:1/v1",
        api_key="x",
        model="demo-chat",
    )
    target = Target(credential_id, "bench", "OpenAI", upstream)
    rate = Rate(price_id=1, input=2_500_000_000, cached_input=0, cache_write=0, output=10**10)
    if limited:
        team_limits = Limits(rpm=10**6, tpm=10**9, concurrency=10**5, day=BIG, month=BIG)
        key_limits = Limits(rpm=10**6, tpm=10**9, concurrency=10**5, day=BIG, month=BIG, life=BIG)
        credentials = {credential_id: Limits(rpm=10**6, tpm=10**9)}
    else:
        team_limits, key_limits, credentials = Limits(), Limits(), {}
    quota = TeamQuota(
        limits=team_limits,
        rates={("openai", "demo-chat"): rate},
        credentials=credentials,
    )
    team = TeamContext(
        team_id=team_id,
        routes={"gpt-4o": (target,)},
        offered={},
        by_prefix={},
        quota=quota,
    )
    key = KeyContext(
        key_id=key_id,
        name="bench",
        team_id=team_id,
        allowed_models=None,
        networks=(),
        expires_at=None,
        revoked=False,
        limits=key_limits,
    )
    return key, team


async def _prompt() -> Any:
    from wire.tokens import PromptTokens

    return PromptTokens(estimate=20, bound=80)


def _prompt_count() -> Any:
    """Admit's prompt counter: a coroutine of PromptTokens now, an int before."""
    import wire.tokens

    if hasattr(wire.tokens, "PromptTokens"):
        return _prompt
    return lambda: 20


PROMPT: Any = None  # the prompt counter admit takes (set in measure: it changed shape)


def seed(url: str, team_id: str, key_id: str) -> None:
    """Seed the counters, as a first request does (nothing to seed from: no ledger)."""
    from billing.quota import script

    if not hasattr(script, "reconcile_call"):
        return  # an earlier Baton (measuring "before"): it seeds on its first admit
    from billing.quota.store import RedisStore

    store = RedisStore(url, 5)
    for scope in (None, key_id):
        store.run(*script.reconcile_call(team_id, scope, *script.periods(), (0, 0, 0)))


def script_stats(client: Any) -> tuple[int, int]:
    stats = client.info("commandstats").get("cmdstat_evalsha", {"calls": 0, "usec": 0})
    return int(stats["calls"]), int(stats["usec"])


async def admit_settle(url: str, limited: bool, concurrency: int, teams: int = 1) -> dict[str, Any]:
    import redis

    from gateway.admission import Admission
    from wire.dialects import Ask
    from wire.providers import Usage

    scopes = [contexts(limited) for _ in range(teams)]
    for key, team in scopes:
        seed(url, team.team_id, key.key_id)
    admission = Admission()
    admission.configure()
    ask = Ask(model="gpt-4o", output_cap=64)
    usage = Usage(prompt_tokens=20, completion_tokens=40)
    client = redis.Redis.from_url(url)

    async def one(key: Any, team: Any) -> None:
        hold = await admission.admit("req_" + uuid.uuid4().hex, key, team, ask, "chat", PROMPT)
        assert hold is not None
        await asyncio.sleep(0)
        send = admission.settle(hold, team.routes["gpt-4o"][0], usage)
        if callable(send):  # the relay sends it once the usage event is written
            send()

    async def worker(number: int, count: int) -> None:
        key, team = scopes[number % teams]
        for _ in range(count):
            await one(key, team)

    for number in range(200):  # warm: the script loaded, the connection open
        await one(*scopes[number % teams])
    await asyncio.sleep(0.05)
    calls, usec = script_stats(client)
    await asyncio.gather(*(worker(n, REQUESTS // concurrency) for n in range(concurrency)))
    if hasattr(admission, "flush"):  # settles batched per team (not "before")
        admission.flush()
    await asyncio.wait(set(admission.tasks))
    after_calls, after_usec = script_stats(client)
    await admission.close()
    client.close()
    done = REQUESTS // concurrency * concurrency
    return {
        "concurrency": concurrency,
        "teams": teams,
        "limited": limited,
        "requests": done,
        "script_calls_per_request": (after_calls - calls) / done,
        "redis_us_per_request": (after_usec - usec) / done,
    }


async def renewal(url: str, in_flight: int = 500, rounds: int = 20) -> dict[str, Any]:
    import redis

    from gateway.admission import Admission
    from wire.dialects import Ask

    key, team = contexts(True)
    seed(url, team.team_id, key.key_id)
    admission = Admission()
    admission.configure()
    ask = Ask(model="gpt-4o", output_cap=64, stream=True)
    holds = []
    for _ in range(in_flight):
        hold = await admission.admit("req_" + uuid.uuid4().hex, key, team, ask, "chat", PROMPT)
        assert hold is not None
        hold.admitted_at -= admission.tick  # old enough to be renewed
        hold.target = team.routes["gpt-4o"][0]
        holds.append(hold)
    if admission.upkeep_task is not None:
        admission.upkeep_task.cancel()
    client = redis.Redis.from_url(url)
    calls, usec = script_stats(client)
    started = time.process_time()
    for _ in range(rounds):
        await admission.renew()
    client_cpu = time.process_time() - started
    after_calls, after_usec = script_stats(client)
    await admission.close()
    client.close()
    renewed = in_flight * rounds
    return {
        "in_flight": in_flight,
        "rounds": rounds,
        "script_calls": after_calls - calls,
        "redis_us_per_record": (after_usec - usec) / renewed,
        "redis_us_per_round": (after_usec - usec) / rounds,
        "client_us_per_record": client_cpu * 1e6 / renewed,
    }


def script_floor(url: str, arguments: int = 40, calls: int = 5000) -> dict[str, Any]:
    """What any script call costs Redis before its script does anything: ``return 1`` with
    an admit's number of keys and arguments."""
    import redis

    client = redis.Redis.from_url(url)
    sha = client.script_load("return 1")
    _, before_usec = script_stats(client)
    for _ in range(calls):
        client.evalsha(sha, 3, "a", "b", "c", *range(arguments))
    _, after_usec = script_stats(client)
    client.close()
    return {"arguments": arguments, "redis_us_per_call": (after_usec - before_usec) / calls}


# Where a call's time goes: one primitive of the script at a time (the body of a script
# that does only that), with arguments shaped like the relay's.
RECORD = (
    "req_{id} 6f1c2a5e-8a3b-4c41-9d2e-5b7a0c3d9e11 3 "
    '{{"s":1733500000000,"h":1000000,"p":20,"e":"chat","d":"chat","a":"gpt-4o",'
    '"t":["0b6e1f0a-3c8d-4f6a-9e7b-2d5c8a1f4b30","openai","demo-chat",2500000000,10000000000]}}'
)
FIELD = "'k0123456789abcdef0123456789abcdef0123:'"
PRIMITIVES: list[tuple[str, str, str]] = [
    ("a call that does nothing (25 arguments)", "return 1", "numbers"),
    ("TIME", "redis.call('TIME') return 1", "numbers"),
    (
        "tonumber of the 25 arguments",
        "local s = 0 for i = 1, #ARGV do s = s + (tonumber(ARGV[i]) or 0) end return 1",
        "numbers",
    ),
    (
        "HMGET of 17 fields named by concatenation",
        f"local f = {{}} for i = 1, 17 do f[i] = {FIELD} .. i end "
        "redis.call('HMGET', KEYS[1], unpack(f)) return 1",
        "numbers",
    ),
    (
        "HSET of 12 numeric fields",
        f"local f = {{}} for i = 1, 12 do f[#f + 1] = {FIELD} .. i f[#f + 1] = 1.5e12 + i end "
        "redis.call('HSET', KEYS[1], unpack(f)) return 1",
        "numbers",
    ),
    (
        "ZADD of a record (one argument)",
        "redis.call('ZADD', KEYS[1], 5, ARGV[1]) return 1",
        "record",
    ),
]


def primitives(url: str, calls: int = 5000) -> list[dict[str, Any]]:
    import redis

    client = redis.Redis.from_url(url)
    out = []
    for index, (label, body, shape) in enumerate(PRIMITIVES):
        sha = client.script_load(body)
        argv = [
            [RECORD.format(id=uuid.uuid4().hex)]
            if shape == "record"
            else [str(10**12 + i) for i in range(25)]
            for _ in range(calls)
        ]
        _, before = script_stats(client)
        for args in argv:
            client.evalsha(sha, 1, f"bq:{{bench}}:p{index}", *args)
        _, after = script_stats(client)
        out.append({"primitive": label, "redis_us_per_call": (after - before) / calls})
    client.close()
    return out


def measure(url: str) -> dict[str, Any]:
    import django

    django.setup()
    import uvloop

    global PROMPT
    PROMPT = _prompt_count()
    out: dict[str, Any] = {
        "redis_url": url,
        "floor": script_floor(url),
        "primitives": primitives(url),
    }
    runs = []
    for limited, concurrency, teams in (
        (True, 1, 1),
        (True, 32, 1),
        (True, 32, 32),
        (False, 1, 1),
        (False, 32, 1),
        (False, 32, 32),
    ):
        runs.append(uvloop.run(admit_settle(url, limited, concurrency, teams)))
    out["admit_settle"] = [r for r in runs if r["limited"]]
    out["no_limits"] = [r for r in runs if not r["limited"]]
    from gateway.admission import Admission

    if hasattr(Admission, "renew"):
        out["renewal"] = uvloop.run(renewal(url))
    return out


def render(report: dict[str, Any]) -> str:
    """The report as BENCHMARKS.md shows it."""
    machine = report.get("machine", {})
    lines = [
        f"- `python bench/quota_cost.py` on a throwaway redis-server {machine.get('redis', '')}, "
        f"finished {report.get('finished_at', '')}; load average "
        f"{machine.get('load_before', 0):.2f} before, {machine.get('load_after', 0):.2f} after.",
        "- Redis's own time (`INFO commandstats`, `usec` of `evalsha`, which includes the "
        "commands the script runs), per request: admit + settle as gateway/admission.py "
        "sends them (settles batched per team for 2 ms), 20,000 requests per row.",
        "",
        "| limits | requests in flight | teams | script calls per request | Redis us per request |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in report["admit_settle"] + report["no_limits"]:
        label = "every kind (team, key, credential)" if row["limited"] else "none (the record only)"
        lines.append(
            f"| {label} | {row['concurrency']} | {row['teams']} | "
            f"{row['script_calls_per_request']:.2f} | {row['redis_us_per_request']:.1f} |"
        )
    floor = report["floor"]
    lines += [
        "",
        f"A script call's fixed price (`return 1` with {floor['arguments']} arguments): "
        f"{floor['redis_us_per_call']:.1f} us.",
    ]
    if report.get("primitives"):
        lines += [
            "",
            "Where a call's time goes: scripts that each do one thing the quota script does, "
            "5,000 calls each; each figure includes the price of the call itself (first row).",
            "",
            "| script body | Redis us per call |",
            "| --- | --- |",
        ]
        lines += [
            f"| {p['primitive']} | {p['redis_us_per_call']:.1f} |" for p in report["primitives"]
        ]
        lines.append("")
    renewal = report.get("renewal")
    if renewal:
        lines.append(
            f"Lease renewal ({renewal['in_flight']} requests in flight, {renewal['rounds']} "
            f"rounds, one call per team per round): {renewal['redis_us_per_record']:.1f} us of "
            f"Redis and {renewal['client_us_per_record']:.1f} us of the web process's CPU per "
            "record renewed, each record every third of `BATON_LEASE_SECONDS`, only for "
            "requests older than half of that."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    os.environ.setdefault("BATON_TESTING", "1")
    if len(sys.argv) > 1:
        os.environ["BATON_LIMITS_REDIS_URL"] = sys.argv[1]
        print(orjson.dumps(measure(sys.argv[1])).decode())
        return
    import subprocess
    from datetime import UTC, datetime

    from scripts.services import redis_server

    version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    load_before = os.getloadavg()[0]
    with redis_server() as server:
        os.environ["BATON_LIMITS_REDIS_URL"] = server.redis_url
        report = measure(server.redis_url)
    report["machine"] = {
        "redis": next((w for w in version if w.startswith("v=")), "").removeprefix("v="),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for name in (f"quota-{stamp}", "quota-latest"):
        (results / f"{name}.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        (results / f"{name}.md").write_text(render(report))
    print(render(report))


if __name__ == "__main__":
    main()
