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
and with this checkout's ``bench/setup_data.py``. Prints one JSON line per run, then the
medians per revision, and writes them to bench/results/ab-latest.json and .md
(bench/update_docs.py copies the .md into BENCHMARKS.md). The p99 of one 20 s run at half of
saturation moves by 10 ms or more between identical runs on this 2-core machine
(BENCHMARKS.md): compare medians over rounds, at a rate the machine carries.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
PY = str(ROOT / ".venv" / "bin" / "python")
RESULTS = ROOT / "bench" / "results"

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


def summarise(
    args: argparse.Namespace, results: dict[str, list[dict[str, Any]]], first: str
) -> dict[str, Any]:
    """Medians per revision over the rounds, with every run kept."""
    report: dict[str, Any] = {
        "kind": "ab",
        "rev": args.rev,
        "head": git("rev-parse", "--short", "HEAD"),
        "rate": args.rate,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "variant": first,
        "load_average": os.getloadavg(),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": [row for rows in results.values() for row in rows],
        "medians": {},
    }
    for name, rows in results.items():
        for via in (first, "floor"):
            runs = [r for r in rows if r["via"] == via]
            for metric in ("overhead_ms", "no_limits_overhead_ms", "server_cpu_cores"):
                if metric not in runs[0]:
                    continue
                values = [r[metric] for r in runs]
                report["medians"][f"{name}|{via}|{metric}"] = (
                    {q: statistics.median(v[q] for v in values) for q in ("p50", "p90", "p99")}
                    if isinstance(values[0], dict)
                    else statistics.median(values)
                )
    return report


def render(report: dict[str, Any]) -> str:
    medians = report["medians"]
    sides = sorted({key.split("|")[0] for key in medians}, key=lambda s: s != report["rev"])
    lines = [
        f"- `python bench/ab.py {report['rev']} --rate {report['rate']:.0f} --rounds "
        f"{report['rounds']} --seconds {report['seconds']:.0f}"
        + (" --split`" if report["variant"] == "quota-split" else "`")
        + f" on {report['head']}, finished {report['finished_at']}; "
        + (
            f"load average {report['load_average'][0]:.2f} at the end."
            if report.get("load_average")
            else "load average not recorded."
        ),
        f"- {report['rounds']} rounds, each running both revisions (alternating which goes "
        "first), each run on a fresh stack; the medians over the rounds. Overhead: "
        "the relayed request's time minus a direct one's at the same percentile, same moments.",
        "",
        "| revision | requests | overhead p50 ms | p90 ms | p99 ms | server cores |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    labels = {
        "overhead_ms": "team with limits",
        "no_limits_overhead_ms": "team without limits",
    }
    for side in sides:
        for via in (report["variant"], "floor"):
            cores = medians.get(f"{side}|{via}|server_cpu_cores")
            for metric, label in labels.items():
                values = medians.get(f"{side}|{via}|{metric}")
                if values is None:
                    continue
                if via == "floor":
                    label = "bare proxy (floor)"
                lines.append(
                    f"| {report['head'] if side == 'this checkout' else side} | {label} | {values['p50']:.2f} | {values['p90']:.2f} | "
                    f"{values['p99']:.2f} | {cores:.3f} |"
                )
    return "\n".join(lines) + "\n"


def write(report: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for name in (f"ab-{stamp}", "ab-latest"):
        (RESULTS / f"{name}.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        (RESULTS / f"{name}.md").write_text(render(report))


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


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
    report = summarise(args, results, first)
    write(report)
    print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
