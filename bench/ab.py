"""The realistic phase of two revisions of Baton, interleaved: what a change costs under load.

    python bench/ab.py REV [--rate R] [--rounds N] [--seconds S] [--split]

``REV`` (a commit, a tag, ``HEAD~3``) is checked out into a temporary git worktree, removed
at the end; this checkout is the other side. Each round runs both, in alternating order (A B,
then B A, ...) so that a drift of the shared machine falls on both alike; each run is
``bench/run.py``'s realistic phase at ``R`` requests a second (the stack of that revision:
its own throwaway PostgreSQL and Redis from scripts/services.py, the fake upstreams, two
workers), followed by the same load through the bare pass-through proxy. ``--split`` runs
the quota-split variant instead (half the requests for a team without limits).

Both revisions run on this checkout's virtualenv (for revisions with the same dependencies)
and with this checkout's ``bench/setup_data.py``.
Prints one JSON line per run, then the medians per revision; writes nothing else. The p99
of one 20 s run at half of saturation moves by 10 ms or more between identical runs on this
2-core machine (BENCHMARKS.md): compare medians over rounds, at a rate the machine carries.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
PY = str(ROOT / ".venv" / "bin" / "python")

# Runs inside one revision's checkout, under that checkout's scripts/services.py.
DRIVER = """
import os, resource, sys, orjson
sys.path.insert(0, os.path.join(os.getcwd(), "bench"))
_soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
import run
rate, seconds, first = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
with run.running(2) as stack:
    run.REDIS_PIDS[:] = stack.redis_pids()
    run.REDIS_URL[:] = [stack.env["REDIS_URL"]]
    for via in (first, "floor"):
        out = run.phase_realistic(stack, rate, seconds, via=via)
        row = {"via": via, "server_cpu_cores": out["server_cpu_cores"],
               "machine_busy_cores": out["machine_busy_cores"]}
        for name in ("overhead_ms", "no_limits_overhead_ms"):
            if name in out:
                row[name] = out[name]["total_ms"]
        print("ROW " + orjson.dumps(row).decode(), flush=True)
"""


def run_one(checkout: Path, rate: float, seconds: float, first: str) -> list[dict[str, Any]]:
    env = {**os.environ, "BATON_TESTING": ""}
    arguments = [str(rate), str(seconds), first]
    result = subprocess.run(
        [PY, str(ROOT / "scripts" / "services.py"), "--", PY, "-c", DRIVER, *arguments],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    rows = [orjson.loads(line[4:]) for line in result.stdout.splitlines() if line[:4] == "ROW "]
    if result.returncode or not rows:
        raise SystemExit(f"the run in {checkout} failed:\n{result.stderr[-3000:]}")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rev", help="the other revision (git)")
    parser.add_argument("--rate", type=float, default=400.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--split", action="store_true", help="the quota-split variant")
    args = parser.parse_args()
    other = Path(tempfile.mkdtemp(prefix="baton-ab-")) / "checkout"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(other), args.rev],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    # The benchmark's data as this checkout sets it up (a fix of the set-up, such as the
    # team's credit, must not show as a difference between the revisions).
    (other / "bench" / "setup_data.py").write_bytes((ROOT / "bench" / "setup_data.py").read_bytes())
    sides = {args.rev: other, "this checkout": ROOT}
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
    first = "quota-split" if args.split else "baton"
    try:
        for round_ in range(args.rounds):
            order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
            for name in order:
                for row in run_one(sides[name], args.rate, args.seconds, first):
                    row |= {"side": name, "round": round_}
                    results[name].append(row)
                    print(orjson.dumps(row).decode(), flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, check=False)
    summary: dict[str, Any] = {"rate": args.rate, "seconds": args.seconds, "rounds": args.rounds}
    for name, rows in results.items():
        for via in (first, "floor"):
            runs = [r for r in rows if r["via"] == via]
            for metric in ("overhead_ms", "no_limits_overhead_ms"):
                if metric in runs[0]:
                    summary[f"{name} / {via} / {metric}"] = {
                        q: round(statistics.median(r[metric][q] for r in runs), 2)
                        for q in ("p50", "p90", "p99")
                    }
            summary[f"{name} / {via} / server_cpu_cores"] = round(
                statistics.median(r["server_cpu_cores"] for r in runs), 3
            )
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
