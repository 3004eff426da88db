"""``make bench`` / ``make bench-compare``: Baton in its production configuration, measured.

Run under ``scripts/services.py`` (which provides PostgreSQL and Redis). Everything runs on
loopback: the fake upstream (its own processes), Baton under uvicorn with one worker per core,
wrk for saturated load, and bench/loadgen.py (its own processes) for what wrk cannot measure.

    python bench/run.py            # the Baton benchmark          -> bench/results/bench-*.{json,md}
    python bench/run.py --compare  # Baton vs the LiteLLM proxy   -> bench/results/compare-*.{json,md}

Phases are bounded in time; the whole run fits in a few minutes on a 2-core machine. The JSON
file holds every measurement; bench/report.py renders it, bench/update_docs.py copies the
latest report into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import platform
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(1, str(ROOT))  # after bench/ itself: scripts/services.py for free ports
from loadgen import DIALECT_HEADERS, request_body  # noqa: E402  (bench/loadgen.py)

from scripts.services import free_port  # noqa: E402

BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
PY = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
CORES = os.cpu_count() or 1
MAX_TOKENS = 20  # content chunks per stream, and completion tokens per non-stream reply
LONG_CHUNKS = 250  # the many-streams phase: one chunk every 100 ms, ~25 s per stream
# The dialects phase: each line is (the client's dialect, the Baton alias, the upstream's
# dialect). A translated line's upstream work is a chat completion, so its direct baseline is
# the fake's chat endpoint; a native line's is the same dialect at the fake.
DIALECT_LINES = {
    "chat": ("chat", "bench", "chat"),
    "messages native": ("messages", "messages-native", "messages"),
    "messages translated": ("messages", "messages-translated", "chat"),
    "responses native": ("responses", "responses-native", "responses"),
    "responses translated": ("responses", "responses-translated", "chat"),
}
DIALECT_CONNECTIONS = 64
PER_CHUNK_STREAM = 100  # a second stream length: CPU per chunk is the slope between the two
# The fake's Messages and Responses replies are 20 tokens, max_tokens only capping them (chat
# takes max_tokens as the length): a chunks directive above every max_tokens makes the body set
# the length on every line alike, each reply ending as cut by max_tokens.
NATIVE_CHUNKS = 1000
NATIVE_MODEL = {"chat": "demo-chat", "messages": "claude-sonnet-4-5", "responses": "demo-chat"}
ENDPOINT = {"chat": "chat/completions", "messages": "messages", "responses": "responses"}
LITELLM_VERSION = "1.108.7"
LITELLM_VENV = BENCH / ".litellm-venv"
TOOLS = BENCH / ".tools"  # granian and py-spy, installed on demand with pip --target


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- processes and /proc accounting ------------------------------------------------------------


class Server:
    """A long-running child process with its output in a log file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], port: int) -> None:
        self.name, self.port = name, port
        self.logfile = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix=f"bench-{name}-", suffix=".log", delete=False
        )
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=self.logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_http(
        self, path: str, timeout: float = 60, headers: dict[str, str] | None = None
    ) -> None:
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited at start:\n{self.logs()[-3000:]}")
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{self.port}{path}", headers=headers or {}
                )
                with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise SystemExit(f"{self.name} did not answer {path}:\n{self.logs()[-3000:]}")

    def pids(self) -> list[int]:
        """The processes doing the work: the children (workers) if any, else the process."""
        children = descendants(self.proc.pid)
        workers = [p for p in children if b"resource_tracker" not in cmdline(p)]
        return workers or [self.proc.pid]

    def logs(self) -> str:
        return Path(self.logfile.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        Path(self.logfile.name).unlink(missing_ok=True)


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        current = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == current:
                found.append(pid)
                frontier.append(pid)
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLK_TCK


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except OSError:
            continue
    return total


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all processes), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


def steal_seconds() -> float:
    """CPU seconds the hypervisor gave to other guests while we wanted them (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (fields[7] if len(fields) > 7 else 0) / CLK_TCK


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- load -------------------------------------------------------------------------------------

WRK_LUA = """
wrk.method = "POST"
wrk.body = [[{body}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {{"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,' ..
    '"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%f}}\\n', summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


REDIS_PIDS: list[int] = []  # set once the stack runs: Redis CPU per request is reported too
REDIS_URL: list[str] = []  # and Redis's own time per command (INFO commandstats)


def redis_commandstats() -> dict[str, tuple[int, int]]:
    """{command: (calls, microseconds)} from the benchmark's Redis."""
    if not REDIS_URL:
        return {}
    import redis

    client = redis.Redis.from_url(REDIS_URL[0])
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {
        name.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"]))
        for name, v in stats.items()
    }


def wrk(
    url: str,
    key: str,
    model: str,
    stream: bool,
    connections: int,
    seconds: float,
    watch: list[int],
    fake: list[int],
    dialect: str = "chat",
    max_tokens: int = MAX_TOKENS,
) -> dict[str, Any]:
    """Closed loop at ``connections``; CPU of the watched processes, the fake and wrk itself."""
    body = request_body(dialect, model, stream, max_tokens).decode()
    headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in DIALECT_HEADERS[dialect].items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_LUA.format(body=body, key=key, headers=headers))
    command = [
        "wrk",
        "-t",
        str(min(2, connections)),
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        script.name,
        url,
    ]
    before = (
        cpu_seconds(watch), cpu_seconds(fake), children_cpu(), machine_busy(),
        cpu_seconds(REDIS_PIDS),
    )  # fmt: skip
    commands_before = redis_commandstats()
    output = subprocess.run(command, capture_output=True, text=True, check=False)
    commands_after = redis_commandstats()
    after = (
        cpu_seconds(watch), cpu_seconds(fake), children_cpu(), machine_busy(),
        cpu_seconds(REDIS_PIDS),
    )  # fmt: skip
    os.unlink(script.name)
    line = next((x for x in output.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise SystemExit(f"wrk failed: {output.stdout}\n{output.stderr}")
    raw = orjson.loads(line[len("WRKJSON ") :])
    requests = raw["requests"]
    duration = raw["duration_us"] / 1e6
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["status"] + raw["timeout"]
    good = max(1, requests - raw["status"])
    return {
        "connections": connections,
        "stream": stream,
        "requests": requests,
        "rps": requests / duration,
        "errors": errors,
        "error_detail": {k: raw[k] for k in ("connect", "read", "write", "status", "timeout")},
        "latency_ms": {
            "p50": raw["p50_us"] / 1000,
            "p90": raw["p90_us"] / 1000,
            "p99": raw["p99_us"] / 1000,
            "max": raw["max_us"] / 1000,
        },
        "server_cpu_ms_per_request": (after[0] - before[0]) * 1000 / good,
        "server_cpu_cores": (after[0] - before[0]) / duration,
        "fake_cpu_cores": (after[1] - before[1]) / duration,
        "wrk_cpu_cores": (after[2] - before[2]) / duration,
        "machine_busy_cores": (after[3] - before[3]) / duration,
        "redis_cpu_ms_per_request": (after[4] - before[4]) * 1000 / good,
        "redis_commands_per_request": {
            name: {
                "calls": (calls - commands_before.get(name, (0, 0))[0]) / good,
                "us": (usec - commands_before.get(name, (0, 0))[1]) / good,
            }
            for name, (calls, usec) in commands_after.items()
            if usec - commands_before.get(name, (0, 0))[1] > 0
        },
    }


def loadgen(mode: str, spec: dict[str, Any], processes: int = 1) -> list[dict[str, Any]]:
    procs = [
        subprocess.Popen(
            [PY, str(BENCH / "loadgen.py"), mode, "--spec", orjson.dumps(spec).decode()],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=400)
        if proc.returncode:
            raise SystemExit(f"loadgen {mode} failed with status {proc.returncode}")
        results.append(orjson.loads(out.strip().splitlines()[-1]))
    return results


# --- the system under test ----------------------------------------------------------------


def baton_env(multiproc_dir: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BATON_", "DJANGO_")) and key not in ("DEBUG", "LOG_FORMAT")
    }
    env.update(
        {
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "BATON_MASTER_KEYS": "bench1:" + base64.b64encode(os.urandom(32)).decode(),
            "BATON_API_KEY_PEPPER": secrets.token_urlsafe(32),
            "BATON_ALLOW_LOOPBACK_UPSTREAMS": "true",
            "BATON_DATA_DIR": tempfile.mkdtemp(prefix="bench-data-"),
            "PROMETHEUS_MULTIPROC_DIR": multiproc_dir,
            "LOG_LEVEL": "WARNING",
            "BATON_REQUEST_LOG": "errors",
        }
    )
    return env


def uvicorn_command(port: int, workers: int, app: str = "config.asgi:application") -> list[str]:
    return [
        PY,
        "-m",
        "uvicorn",
        app,
        "--app-dir",
        str(BENCH if app.startswith("floor_proxy") else ROOT),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--lifespan",
        "on",
        "--timeout-graceful-shutdown",
        "10",
        "--backlog",
        "4096",
    ]


def fake_command(port: int, *extra: str) -> list[str]:
    return [PY, "-m", "fake_upstream", "--port", str(port), *extra]


def pip_versions(python: str, names: list[str]) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        f"for n in {names!r}:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    result = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    return orjson.loads(result.stdout) if result.returncode == 0 else {}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return {
        "cpu": cpu,
        "cores": CORES,
        "memory_gib": round(memory / 2**30, 1),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "wrk": (wrk_version.stdout + wrk_version.stderr).split("\n")[0].strip(),
        "packages": pip_versions(
            PY,
            [
                "django",
                "uvicorn",
                "uvloop",
                "httptools",
                "aiohttp",
                "orjson",
                "redis",
                "psycopg",
                "prometheus-client",
            ],
        ),
        "redis_server": subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip(),
    }


class Stack:
    """PostgreSQL and Redis (from services.py), the fakes, and Baton itself."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.multiproc = tempfile.mkdtemp(prefix="bench-prom-")
        self.env = baton_env(self.multiproc)
        self.servers: list[Server] = []
        self.floor: Server | None = None
        self.fast_port, self.real_port, self.port = free_port(), free_port(), free_port()

    def start(self) -> None:
        log("migrating the database")
        subprocess.run(
            [PY, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT,
            env=self.env,
            check=True,
        )
        self.fast = self.add(
            Server("fake-fast", fake_command(self.fast_port), self.env, self.fast_port)
        )
        self.real = self.add(
            Server(
                "fake-realistic",
                fake_command(self.real_port, "--latency-ms", "90", "--jitter-ms", "20"),
                self.env,
                self.real_port,
            )
        )
        self.fast.wait_http("/_fake/health")
        self.real.wait_http("/_fake/health")
        self.direct_key = "sk-bench-upstream-0000"
        native_responses = self.native_base("responses")
        spec = {
            "aliases": {
                "bench": f"http://127.0.0.1:{self.fast_port}/v1",
                "bench-real": f"http://127.0.0.1:{self.real_port}/v1",
                "bench-long": f"http://127.0.0.1:{self.fast_port}/_f/chunk_ms=100/v1",
                # The dialects phase (all on the instant fake): Anthropic's own Messages, a
                # base URL declaring its Responses endpoint, and chat-only targets for both.
                "messages-native": {
                    "base_url": self.native_base("messages"),
                    "provider": "anthropic",
                    "model": NATIVE_MODEL["messages"],
                },
                "messages-translated": f"http://127.0.0.1:{self.fast_port}/v1",
                "responses-native": {
                    "base_url": native_responses,
                    "extras": {"dialects": {"responses": native_responses}},
                },
                "responses-translated": f"http://127.0.0.1:{self.fast_port}/v1",
            }
        }
        result = subprocess.run(
            [PY, str(BENCH / "setup_data.py"), orjson.dumps(spec).decode()],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode:
            raise SystemExit(f"setup failed:\n{result.stdout}\n{result.stderr}")
        data = orjson.loads(result.stdout.strip().splitlines()[-1])
        self.key, self.limits = data["key"], data["limits"]
        self.open_key = data["open_key"]  # a team without limits: no admission call
        log(f"tenant ready; limits: {self.limits}")
        self.baton = self.start_baton(uvicorn_command(self.port, self.workers), "baton")

    def start_floor(self) -> Server:
        """bench/floor_proxy.py in front of the realistic fake upstream, started once."""
        if self.floor is None:
            upstreams = {
                name: f"http://127.0.0.1:{port}/v1/chat/completions"
                for name, port in (("real", self.real_port), ("fast", self.fast_port))
            }
            env = self.env | {"BENCH_FLOOR_UPSTREAMS": orjson.dumps(upstreams).decode()}
            port = free_port()
            command = uvicorn_command(port, self.workers, "floor_proxy:application")
            self.floor = self.add(Server("floor", command, env, port))
            self.floor.wait_http("/healthz")
            time.sleep(1.0)
        return self.floor

    def start_baton(self, command: list[str], name: str, port: int | None = None) -> Server:
        server = self.add(Server(name, command, self.env, port or self.port))
        server.wait_http("/readyz")
        time.sleep(1.0)  # let every worker finish its start-up
        return server

    def add(self, server: Server) -> Server:
        self.servers.append(server)
        return server

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        shutil.rmtree(self.multiproc, ignore_errors=True)
        shutil.rmtree(self.env["BATON_DATA_DIR"], ignore_errors=True)

    def redis_pids(self) -> list[int]:
        port = self.env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0]
        return [
            int(p)
            for p in os.listdir("/proc")
            if p.isdigit()
            and b"redis-server" in cmdline(int(p))
            and port.encode() in cmdline(int(p))
        ]

    def native_base(self, dialect: str) -> str:
        """The instant fake's base URL for a native ``dialect`` line (see NATIVE_CHUNKS)."""
        path = "/anthropic/v1" if dialect == "messages" else "/v1"
        return f"http://127.0.0.1:{self.fast_port}/_f/chunks={NATIVE_CHUNKS}{path}"

    def dialect_targets(self, line: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(direct to the fake, through Baton) for one line of the dialects phase."""
        dialect, alias, upstream = DIALECT_LINES[line]
        baton = self.target("baton", alias)
        baton["url"] = baton["url"].replace("/chat/completions", f"/{ENDPOINT[dialect]}")
        direct = self.target("direct") | {"dialect": upstream, "model": NATIVE_MODEL[upstream]}
        if upstream != "chat":
            direct["url"] = f"{self.native_base(upstream)}/{ENDPOINT[upstream]}"
        return direct, baton | {"dialect": dialect}

    def target(self, where: str, model: str = "bench") -> dict[str, Any]:
        if where == "direct":
            port = self.real_port if model == "bench-real" else self.fast_port
            return {
                "url": f"http://127.0.0.1:{port}/v1/chat/completions",
                "key": self.direct_key,
                "model": "demo-chat",
            }
        return {
            "url": f"http://127.0.0.1:{self.port}/v1/chat/completions",
            "key": self.key,
            "model": model,
        }


@contextlib.contextmanager
def running(workers: int) -> Iterator[Stack]:
    stack = Stack(workers)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


# --- phases ---------------------------------------------------------------------------------


# How a complete stream ends in each dialect (its last data line contains one of these).
STREAM_END = {
    "chat": ("[DONE]",),
    "messages": ('"message_stop"',),
    "responses": ('"response.completed"', '"response.incomplete"'),
}


def check_stream(stack: Stack, target: dict[str, Any]) -> int:
    """Sanity: a stream through ``target`` ends as its dialect ends a complete stream; the
    number of its events."""
    import urllib.request

    dialect = target.get("dialect", "chat")
    request = urllib.request.Request(  # noqa: S310
        target["url"],
        data=request_body(dialect, target["model"], True, MAX_TOKENS),
        headers={
            "authorization": f"Bearer {target['key']}",
            "content-type": "application/json",
            **DIALECT_HEADERS[dialect],
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        text = response.read().decode()
    events = [line for line in text.split("\n") if line.startswith("data: ")]
    if not any(end in events[-1] for end in STREAM_END[dialect]):
        raise SystemExit(f"stream through {target['url']} did not end: {text[-300:]}")
    return len(events)


def phase_unloaded(stack: Stack, requests: int) -> dict[str, Any]:
    log(f"unloaded: {requests} requests each way, one at a time")
    targets = {"direct": stack.target("direct"), "baton": stack.target("baton")}
    result = unloaded(
        targets,
        requests,
        warmup=200,
        healthz=f"http://127.0.0.1:{stack.port}/healthz",
        redis_url=stack.env["REDIS_URL"],
    )
    for kind in ("json", "stream"):
        result[kind]["overhead_ms"] = overhead(result[kind]["direct"], result[kind]["baton"])
    return result


def unloaded(
    targets: dict[str, dict[str, Any]], requests: int, warmup: int, **extra: Any
) -> dict[str, Any]:
    """One request at a time, rotating through ``targets`` (bench/loadgen.py unloaded)."""
    spec = {
        "targets": targets,
        "requests": requests,
        "warmup": warmup,
        "max_tokens": MAX_TOKENS,
        **extra,
    }
    busy = machine_busy()
    started = time.monotonic()
    [result] = loadgen("unloaded", spec)
    result["machine_busy_cores"] = (machine_busy() - busy) / (time.monotonic() - started)
    return result


def overhead(direct: dict[str, Any], baton: dict[str, Any]) -> dict[str, Any]:
    """Baton minus direct at each percentile, for the whole response and its first byte."""
    return {
        metric: {q: baton[metric][q] - direct[metric][q] for q in ("p50", "p90", "p99")}
        for metric in ("total", "ttfb")
    }


def baton_saturated(stack: Stack, args: argparse.Namespace, fake_pids: list[int]) -> dict[str, Any]:
    """The saturated phase through Baton, at each of ``args.concurrency``."""
    return phase_saturated(
        "baton",
        stack.target("baton")["url"],
        stack.key,
        "bench",
        stack.baton.pids(),
        fake_pids,
        args.concurrency,
        args.seconds,
    )


def phase_saturated(
    name: str,
    url: str,
    key: str,
    model: str,
    watch: list[int],
    fake: list[int],
    concurrencies: list[int],
    seconds: float,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for stream in (False, True):
        kind = "stream" if stream else "json"
        wrk(url, key, model, stream, 64, 2, watch, fake)  # warm-up
        runs = []
        for connections in concurrencies:
            run = wrk(url, key, model, stream, connections, seconds, watch, fake)
            log(
                f"saturated {name} {kind} c={connections}: {run['rps']:.0f} req/s, "
                f"p99 {run['latency_ms']['p99']:.1f} ms, errors {run['errors']}, "
                f"{run['server_cpu_ms_per_request']:.3f} CPU ms/req"
            )
            runs.append(run)
        out[kind] = runs
    return out


def phase_dialects(stack: Stack, requests: int, seconds: float) -> dict[str, Any]:
    """Chat (the baseline), Messages and Responses, each native and translated (DIALECT_LINES),
    on the instant upstream. Unloaded: every line's requests and the direct ones interleaved,
    one at a time. Saturated: wrk at DIALECT_CONNECTIONS, the lines back to back for each kind
    (non-streaming, 20-chunk streams, PER_CHUNK_STREAM-chunk streams), in two rounds of half
    the time, the second in the reverse order; Baton's CPU per request, per stream, and per
    chunk (the slope between the two stream lengths)."""
    started = time.monotonic()
    lines = {line: stack.dialect_targets(line) for line in DIALECT_LINES}
    targets: dict[str, dict[str, Any]] = {}
    out: dict[str, Any] = {
        "requests": requests,
        "seconds": seconds,
        "connections": DIALECT_CONNECTIONS,
        "chunks": [MAX_TOKENS, PER_CHUNK_STREAM],
        "lines": {},
    }
    for line, (direct, baton) in lines.items():
        targets[f"direct {direct['dialect']}"] = direct  # shared by lines with the same upstream
        targets[line] = baton
        events = {"direct": check_stream(stack, direct), "baton": check_stream(stack, baton)}
        out["lines"][line] = {"stream_events": events}
    log(f"dialects: unloaded, {requests} requests to each of {len(targets)} targets in turn")
    measured = unloaded(targets, requests, warmup=100)
    out["unloaded_busy_cores"] = measured["machine_busy_cores"]
    for line, (direct, _) in lines.items():
        out["lines"][line]["unloaded"] = {
            kind: {
                "direct": measured[kind][f"direct {direct['dialect']}"],
                "baton": measured[kind][line],
                "overhead_ms": overhead(
                    measured[kind][f"direct {direct['dialect']}"], measured[kind][line]
                ),
            }
            for kind in ("json", "stream")
        }
    watch, fake = stack.baton.pids(), stack.fast.pids()
    chat = lines["chat"][1]
    wrk(chat["url"], chat["key"], chat["model"], False, DIALECT_CONNECTIONS, 1, watch, fake)
    kinds = (
        ("json", False, MAX_TOKENS),
        ("stream", True, MAX_TOKENS),
        ("long_stream", True, PER_CHUNK_STREAM),
    )
    for kind, stream, chunks in kinds:
        # Two rounds, the second in the reverse order, half the time each: this machine's
        # speed drifts within a phase, and the ratios to chat must not take the drift for a
        # difference between lines (one round in one order read 0.96x to 1.15x for the same
        # line in three runs).
        halves: dict[str, list[dict[str, Any]]] = {line: [] for line in lines}
        for order in (list(lines), list(reversed(lines))):
            for line in order:
                baton = lines[line][1]
                halves[line].append(
                    wrk(
                        baton["url"],
                        baton["key"],
                        baton["model"],
                        stream,
                        DIALECT_CONNECTIONS,
                        seconds / 2,
                        watch,
                        fake,
                        dialect=baton["dialect"],
                        max_tokens=chunks,
                    )
                )
        for line, (first, second) in halves.items():
            run = merge_runs(first, second)
            log(
                f"dialects {line} {kind}: {run['rps']:.0f} req/s, errors {run['errors']}, "
                f"{run['server_cpu_ms_per_request']:.3f} CPU ms/req"
            )
            out["lines"][line][kind] = run
    for data in out["lines"].values():
        data["figures"] = dialect_figures(data)
    base = out["lines"]["chat"]["figures"]
    for data in out["lines"].values():
        data["vs_chat"] = {
            name: value / base[name] if base[name] else None
            for name, value in data["figures"].items()
            if name != "errors"
        }
    out["elapsed_s"] = time.monotonic() - started
    return out


def merge_runs(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two wrk runs of one target as one: counts added, per-request figures weighted by
    requests, per-second ones by duration; the latencies are the first run's."""
    requests = a["requests"] + b["requests"]
    durations = (a["requests"] / a["rps"], b["requests"] / b["rps"])
    good = (max(1, a["requests"] - a["error_detail"]["status"]),
            max(1, b["requests"] - b["error_detail"]["status"]))  # fmt: skip

    def per_request(x: float, y: float) -> float:
        return (x * good[0] + y * good[1]) / (good[0] + good[1])

    def per_second(x: float, y: float) -> float:
        return (x * durations[0] + y * durations[1]) / sum(durations)

    merged = dict(a)
    merged |= {
        "requests": requests,
        "rps": requests / sum(durations),
        "errors": a["errors"] + b["errors"],
        "error_detail": {k: v + b["error_detail"][k] for k, v in a["error_detail"].items()},
        "runs": 2,
    }
    for name in ("server_cpu_ms_per_request", "redis_cpu_ms_per_request"):
        merged[name] = per_request(a[name], b[name])
    for name in ("server_cpu_cores", "fake_cpu_cores", "wrk_cpu_cores", "machine_busy_cores"):
        merged[name] = per_second(a[name], b[name])
    zero = {"calls": 0.0, "us": 0.0}
    merged["redis_commands_per_request"] = {
        command: {
            field: per_request(
                a["redis_commands_per_request"].get(command, zero)[field],
                b["redis_commands_per_request"].get(command, zero)[field],
            )
            for field in ("calls", "us")
        }
        for command in set(a["redis_commands_per_request"]) | set(b["redis_commands_per_request"])
    }
    return merged


def dialect_figures(line: dict[str, Any]) -> dict[str, float]:
    """The figures a dialects line is compared by (milliseconds unless named otherwise)."""
    un, json_run, stream_run = line["unloaded"], line["json"], line["stream"]
    long_cpu = line["long_stream"]["server_cpu_ms_per_request"]
    return {
        "overhead_p50": un["json"]["overhead_ms"]["total"]["p50"],
        "overhead_p99": un["json"]["overhead_ms"]["total"]["p99"],
        "ttfb_overhead_p50": un["stream"]["overhead_ms"]["ttfb"]["p50"],
        "ttfb_overhead_p99": un["stream"]["overhead_ms"]["ttfb"]["p99"],
        "rps": json_run["rps"],
        "stream_rps": stream_run["rps"],
        "cpu_per_request": json_run["server_cpu_ms_per_request"],
        "cpu_per_stream": stream_run["server_cpu_ms_per_request"],
        "cpu_us_per_chunk": (long_cpu - stream_run["server_cpu_ms_per_request"])
        * 1000
        / (PER_CHUNK_STREAM - MAX_TOKENS),
        "fake_cpu_per_request": json_run["fake_cpu_cores"] * 1000 / json_run["rps"],
        "fake_cpu_per_stream": stream_run["fake_cpu_cores"] * 1000 / stream_run["rps"],
        "errors": sum(line[kind]["errors"] for kind in ("json", "stream", "long_stream")),
    }


def phase_realistic(
    stack: Stack, rate: float, seconds: float, via: str = "baton"
) -> dict[str, Any]:
    """``rate`` requests a second through the relaying hop, interleaved with direct ones.

    ``via="floor"``: through bench/floor_proxy.py instead of Baton. ``via="quota-split"``:
    through Baton, every other request for a second team with the same routes and no limits
    (``no_limits`` in the result: no admission call), so both halves share every moment."""
    log(
        f"realistic: open loop at {rate:.0f} req/s through {via} for {seconds:.0f}s,"
        " ~100 ms upstream"
    )
    server = stack.start_floor() if via == "floor" else stack.baton
    relayed = stack.target("baton", "bench-real")
    targets = {"baton": relayed, "direct": stack.target("direct", "bench-real")}
    # Three through the relay for each direct one: the relay runs at the intended rate while
    # the direct baseline, sampled in the same moments, adds little load of its own.
    pattern, first_share = ["baton", "baton", "direct", "baton"], 1.0
    if via == "floor":
        relayed["url"] = f"http://127.0.0.1:{server.port}/real/v1/chat/completions"
        relayed["key"], relayed["model"] = stack.direct_key, "demo-chat"
    if via == "quota-split":
        targets["no_limits"] = relayed | {"key": stack.open_key}
        pattern = ["baton", "no_limits", "direct", "baton", "no_limits", "baton", "no_limits"]
        pattern += ["direct"]
        first_share = 0.5  # the loadgen's rate is that of the pattern's first target
    spec = {
        "targets": targets,
        "pattern": pattern,
        "stream": True,
        "rate": rate * first_share,
        "duration": seconds,
        "max_tokens": MAX_TOKENS,
        "seed": 7,
    }
    for target in targets.values():  # warm, both workers: contexts loaded, connections open
        for _ in range(10):
            check_stream(stack, target)
    before, busy, steal = cpu_seconds(server.pids()), machine_busy(), steal_seconds()
    [out] = loadgen("open", spec)
    wall = out.pop("generator")
    out["generator"] = wall
    out["rate"], out["seconds"], out["via"] = rate, seconds, via
    out["server_cpu_cores"] = (cpu_seconds(server.pids()) - before) / wall["wall_s"]
    out["machine_busy_cores"] = (machine_busy() - busy) / wall["wall_s"]
    out["steal_cores"] = (steal_seconds() - steal) / wall["wall_s"]
    for label, name in (("baton", "overhead_ms"), ("no_limits", "no_limits_overhead_ms")):
        if label in out:
            out[name] = {
                metric: {
                    q: out[label][metric][q] - out["direct"][metric][q]
                    for q in ("p50", "p90", "p99")
                }
                for metric in ("total_ms", "ttfb_ms")
            }
    return out


def phase_streams(stack: Stack, count: int, ramp: float) -> dict[str, Any]:
    log(f"many streams: {count} concurrent, a chunk every 100 ms, ~25 s each")
    pids = stack.baton.pids()
    idle_rss = rss_bytes(pids)
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    began = time.monotonic()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.monotonic() - began, rss_bytes(pids)))
            stop.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu_before = cpu_seconds(pids)
    fake_before = cpu_seconds(stack.fast.pids())
    busy_before = machine_busy()
    processes = 2
    spec = {
        "target": stack.target("baton", "bench-long"),
        "count": count // processes,
        "ramp": ramp,
        "max_tokens": LONG_CHUNKS,
    }
    results = loadgen("streams", spec, processes=processes)
    elapsed = time.monotonic() - began
    stop.set()
    sampler.join()
    errors: dict[str, int] = {}
    for result in results:
        for name, n in result["errors"].items():
            errors[name] = errors.get(name, 0) + n
    first_end = min(r["duration_s"]["p50"] or 0 for r in results) * 0.9 + ramp
    window = [(t, rss) for t, rss in samples if ramp + 2 <= t <= first_end]
    slope = linear_slope(window)
    # Allocator arenas fill during the first seconds; the second half shows the steady state.
    late = window[len(window) // 2 :]
    late_slope = linear_slope(late)
    plateau = window[0][1] if window else idle_rss
    return {
        "streams": count,
        "completed": sum(r["completed"] for r in results),
        "errors": errors,
        "error_count": sum(errors.values()),
        "duration_s": max(r["duration_s"]["max"] or 0 for r in results),
        "reads_per_stream_p50": results[0]["reads_per_stream"]["p50"],
        "idle_rss_mib": idle_rss / 2**20,
        "rss_all_open_mib": plateau / 2**20,
        "rss_per_open_stream_kib": (plateau - idle_rss) / count / 1024,
        "rss_slope_bytes_per_s": slope,
        "rss_slope_bytes_per_s_per_stream": slope / count,
        "rss_late_slope_bytes_per_s": late_slope,
        "rss_late_window_s": [late[0][0], late[-1][0]] if late else None,
        "rss_end_mib": window[-1][1] / 2**20 if window else None,
        "machine_busy_cores": (machine_busy() - busy_before) / elapsed,
        "rss_window_s": [window[0][0], window[-1][0]] if window else None,
        "rss_samples": [(round(t, 2), rss) for t, rss in samples],
        "server_cpu_cores": (cpu_seconds(pids) - cpu_before) / elapsed,
        "fake_cpu_cores": (cpu_seconds(stack.fast.pids()) - fake_before) / elapsed,
        "generator_cpu_cores": sum(r["generator"]["cpu_s"] for r in results) / elapsed,
    }


def linear_slope(points: list[tuple[float, int]]) -> float:
    if len(points) < 3:
        return 0.0
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    num = sum((t - mean_t) * (y - mean_y) for t, y in points)
    den = sum((t - mean_t) ** 2 for t, _ in points)
    return num / den if den else 0.0


def phase_metrics_cost(stack: Stack) -> dict[str, Any]:
    log("metrics cost per request")
    result = subprocess.run(
        [PY, str(BENCH / "metrics_cost.py")],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        return {"error": result.stderr[-500:]}
    return orjson.loads(result.stdout.strip().splitlines()[-1])


def phase_profile(stack: Stack, fake: list[int], seconds: float) -> list[str]:
    """py-spy on one worker during a saturated non-streaming run (64 connections)."""
    import pyspy as spy  # bench/pyspy.py

    worker = stack.baton.pids()[0]
    started = spy.start(worker, max(1, round(seconds)))
    if started is None:
        return ["py-spy could not be installed; no profile."]
    log("profiling one worker with py-spy under saturated load")
    proc, out = started
    wrk(stack.target("baton")["url"], stack.key, "bench", False, 64, seconds, [worker], fake)
    proc.wait(60)
    return spy.summarise(out)


def phase_floor_own_half(stack: Stack, seconds: float, realistic_seconds: float) -> dict[str, Any]:
    """The floor proxy measured Baton's way: saturated (wrk, streams, 64 connections, instant
    upstream), then the realistic open loop at half of *its own* saturated rate."""
    floor = stack.start_floor()
    url = f"http://127.0.0.1:{floor.port}/fast/v1/chat/completions"
    fake = stack.fast.pids()
    wrk(url, stack.direct_key, "demo-chat", True, 64, 2, floor.pids(), fake)  # warm-up
    saturated = wrk(url, stack.direct_key, "demo-chat", True, 64, seconds, floor.pids(), fake)
    log(f"floor saturated (streams, c=64): {saturated['rps']:.0f} req/s")
    realistic = phase_realistic(stack, saturated["rps"] / 2, realistic_seconds, via="floor")
    return {"saturated": saturated, "realistic": realistic}


def phase_realistic_profile(stack: Stack, rate: float, seconds: float) -> list[str]:
    """py-spy on one worker during a second realistic run (where the open-loop time goes)."""
    import pyspy as spy  # bench/pyspy.py

    worker = stack.baton.pids()[0]
    started = spy.start(worker, max(1, round(seconds)))
    if started is None:
        return ["py-spy could not be installed; no profile."]
    log("profiling one worker with py-spy under the realistic load")
    proc, out = started
    phase_realistic(stack, rate, seconds)
    proc.wait(60)
    return spy.summarise(out)


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return max(runs, key=lambda run: run["rps"])


# --- main -------------------------------------------------------------------------------------


def bench(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"kind": "bench", "machine": machine(), "workers": args.workers}
    started = time.monotonic()
    with running(args.workers) as stack:
        report["limits"] = stack.limits
        REDIS_PIDS[:] = stack.redis_pids()
        REDIS_URL[:] = [stack.env["REDIS_URL"]]
        report["stream_events"] = {
            "direct": check_stream(stack, stack.target("direct")),
            "baton": check_stream(stack, stack.target("baton")),
        }
        fake_pids = stack.fast.pids()
        if args.only == "dialects":  # that phase alone, while working on it
            report["kind"] = "dialects"
            report["dialects"] = phase_dialects(stack, args.dialect_requests, args.dialect_seconds)
            report["elapsed_s"] = time.monotonic() - started
            return report
        if args.rate:  # a quick look at one phase while working on it, not a full report
            report["kind"] = "realistic"
            report["realistic"] = phase_realistic(stack, args.rate, args.realistic_seconds)
            report["realistic_floor"] = phase_realistic(
                stack, args.rate, args.realistic_seconds, via="floor"
            )
            report["realistic_quota_split"] = phase_realistic(
                stack, args.rate, args.realistic_seconds, via="quota-split"
            )
            report["floor_own_half"] = phase_floor_own_half(
                stack, args.seconds, args.realistic_seconds
            )
            if args.profile:
                report["realistic_profile"] = phase_realistic_profile(
                    stack, args.rate, args.realistic_seconds
                )
            report["elapsed_s"] = time.monotonic() - started
            return report
        report["unloaded"] = phase_unloaded(stack, args.unloaded)
        report["fake_alone"] = {
            kind: wrk(
                stack.target("direct")["url"],
                stack.direct_key,
                "demo-chat",
                kind == "stream",
                64,
                args.seconds,
                fake_pids,
                fake_pids,
            )
            for kind in ("json", "stream")
        }
        report["saturated"] = baton_saturated(stack, args, fake_pids)
        if args.profile:
            report["profile"] = phase_profile(stack, fake_pids, args.seconds)
        report["dialects"] = phase_dialects(stack, args.dialect_requests, args.dialect_seconds)
        rate = best(report["saturated"]["stream"])["rps"] / 2
        report["realistic"] = phase_realistic(stack, rate, args.realistic_seconds)
        # The same load through a bare pass-through proxy: the floor of any extra hop here.
        report["realistic_floor"] = phase_realistic(
            stack, rate, args.realistic_seconds, via="floor"
        )
        # Half the requests for a team without limits, in the same moments: what the
        # admission call costs under this load.
        report["realistic_quota_split"] = phase_realistic(
            stack, rate, args.realistic_seconds, via="quota-split"
        )
        # ... and the floor measured exactly as Baton is: at half of its own saturated rate.
        report["floor_own_half"] = phase_floor_own_half(stack, args.seconds, args.realistic_seconds)
        if args.profile:
            report["realistic_profile"] = phase_realistic_profile(
                stack, rate, args.realistic_seconds
            )
        # The same at a quarter of saturation: how the overhead depends on how busy the
        # (shared) cores are. An extra row, never a replacement for the one above.
        report["realistic_quarter"] = phase_realistic(stack, rate / 2, args.realistic_seconds)
        report["streams"] = phase_streams(stack, args.streams, ramp=5.0)
        report["metrics_cost"] = phase_metrics_cost(stack)
        if args.choices:
            from choices import run_choices  # bench/choices.py

            report["choices"] = run_choices(stack, args, wrk, log)
    report["elapsed_s"] = time.monotonic() - started
    return report


def litellm_config(stack: Stack, master_key: str) -> str:
    path = Path(tempfile.mkdtemp(prefix="bench-litellm-")) / "config.yaml"
    path.write_text(
        "model_list:\n"
        "  - model_name: bench\n"
        "    litellm_params:\n"
        "      model: openai/demo-chat\n"
        f"      api_base: http://127.0.0.1:{stack.fast_port}/v1\n"
        f"      api_key: {stack.direct_key}\n"
        "general_settings:\n"
        f"  master_key: {master_key}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )
    return str(path)


def compare(args: argparse.Namespace) -> dict[str, Any]:
    litellm = LITELLM_VENV / "bin" / "litellm"
    if not litellm.exists():
        raise SystemExit(
            f"LiteLLM is not installed: python3 -m venv {LITELLM_VENV} && "
            f"{LITELLM_VENV}/bin/pip install 'litellm[proxy]=={LITELLM_VERSION}' "
            "(make bench-compare does this)"
        )
    report: dict[str, Any] = {"kind": "compare", "machine": machine(), "workers": args.workers}
    report["machine"]["litellm"] = pip_versions(str(LITELLM_VENV / "bin" / "python"), ["litellm"])
    started = time.monotonic()
    with running(args.workers) as stack:
        report["limits"] = stack.limits
        REDIS_PIDS[:] = stack.redis_pids()
        REDIS_URL[:] = [stack.env["REDIS_URL"]]
        master = "sk-litellm-bench-master"
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.update({"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"})
        command = [
            str(litellm),
            "--config",
            litellm_config(stack, master),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            str(args.workers),
        ]
        proxy = stack.add(Server("litellm", command, env, port))
        proxy.wait_http("/health/liveliness", timeout=180)
        time.sleep(2)
        lite_target = {
            "url": f"http://127.0.0.1:{port}/v1/chat/completions",
            "key": master,
            "model": "bench",
        }
        report["stream_events"] = {
            "litellm": check_stream(stack, lite_target),
            "baton": check_stream(stack, stack.target("baton")),
        }
        fake_pids = stack.fast.pids()
        report["litellm"] = phase_saturated(
            "litellm",
            lite_target["url"],
            master,
            "bench",
            proxy.pids(),
            fake_pids,
            args.concurrency,
            args.seconds,
        )
        proxy.stop()
        report["baton"] = baton_saturated(stack, args, fake_pids)
    ratios: dict[str, Any] = {}
    for kind in ("json", "stream"):
        ratios[kind] = [
            {
                "connections": b["connections"],
                "rps_ratio": b["rps"] / lt["rps"] if lt["rps"] else None,
                "cpu_per_request_ratio": (
                    lt["server_cpu_ms_per_request"] / b["server_cpu_ms_per_request"]
                    if b["server_cpu_ms_per_request"]
                    else None
                ),
            }
            for b, lt in zip(report["baton"][kind], report["litellm"][kind], strict=True)
        ]
        best_b, best_l = best(report["baton"][kind]), best(report["litellm"][kind])
        ratios[kind + "_best"] = best_b["rps"] / best_l["rps"] if best_l["rps"] else None
    report["ratios"] = ratios
    report["elapsed_s"] = time.monotonic() - started
    return report


def realistic_summary(report: dict[str, Any]) -> str:
    lines = []
    for name in ("realistic", "realistic_quota_split", "realistic_floor"):
        lines += realistic_lines(report[name])
    lines += realistic_lines(report["floor_own_half"]["realistic"])
    lines += [f"    {line}" for line in report.get("realistic_profile", [])]
    return "\n".join(lines) + "\n"


def realistic_lines(real: dict[str, Any]) -> list[str]:
    lines = []
    for name in ("overhead_ms", "no_limits_overhead_ms"):
        if name in real:
            o = real[name]
            lines.append(
                f"{real['via']} ({name}): {real['rate']:.0f} req/s for {real['seconds']:.0f} s: "
                + ", ".join(
                    f"{metric} p50 {o[metric]['p50']:.2f} p99 {o[metric]['p99']:.2f} ms"
                    for metric in ("total_ms", "ttfb_ms")
                )
            )
    errors = {
        label: x["errors"] for label, x in real.items() if isinstance(x, dict) and "errors" in x
    }
    lines.append(
        f"  {real['server_cpu_cores']:.2f} cores, machine {real['machine_busy_cores']:.2f}"
        f" (steal {real.get('steal_cores', 0):.2f}); errors {errors}"
    )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compare", action="store_true", help="Baton vs the LiteLLM proxy")
    parser.add_argument("--workers", type=int, default=CORES)
    parser.add_argument("--seconds", type=float, default=8.0, help="per saturated run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--unloaded", type=int, default=2000, help="requests each way")
    parser.add_argument("--realistic-seconds", type=float, default=20.0)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--no-choices", dest="choices", action="store_false")
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument(
        "--dialect-requests", type=int, default=1000, help="unloaded, per dialects target"
    )
    parser.add_argument(
        "--dialect-seconds", type=float, default=4.0, help="per saturated dialects run"
    )
    parser.add_argument(
        "--only",
        choices=["dialects"],
        help="only this phase, for quick iterations; writes bench/results/dialects-*",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="only the realistic phase at this rate (req/s through Baton), for quick iterations;"
        " writes bench/results/realistic-*.json",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is missing (saturated load): apt-get install wrk", file=sys.stderr)
        return 1
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get(
        "REDIS_URL"
    ):
        print("run under scripts/services.py (PostgreSQL + Redis): make bench", file=sys.stderr)
        return 1
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sys.path.insert(0, str(BENCH))
    report = compare(args) if args.compare else bench(args)
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    from report import render  # bench/report.py

    parts = [report]
    if report["kind"] == "bench":  # the dialects phase has its own report and section
        parts.append(dialects_report(report))
    for part in parts:
        kind = part["kind"]
        markdown = render(part) if kind != "realistic" else realistic_summary(part)
        for name in (f"{kind}-{stamp}", f"{kind}-latest"):
            (RESULTS / f"{name}.json").write_bytes(orjson.dumps(part, option=orjson.OPT_INDENT_2))
            (RESULTS / f"{name}.md").write_text(markdown)
        log(f"wrote {RESULTS}/{kind}-{stamp}.json and .md in {part['elapsed_s']:.0f}s")
        print(markdown)
    return 0


def dialects_report(report: dict[str, Any]) -> dict[str, Any]:
    """A full run's dialects phase as a report of its own (bench/results/dialects-*)."""
    shared = ("machine", "workers", "limits", "finished_at", "dialects")
    return {"kind": "dialects", **{name: report[name] for name in shared}} | {
        "elapsed_s": report["dialects"]["elapsed_s"]
    }


if __name__ == "__main__":
    sys.exit(main())
