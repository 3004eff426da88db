"""Sample one Baton worker with py-spy while it is under load, and summarise where time goes.

py-spy is installed on demand into bench/.tools (pip --target), never into Baton's venv.
The summary (shares of samples, by function) goes into the benchmark report.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
TOOLS = BENCH / ".tools"
PROJECT_DIRS = ("gateway/", "wire/", "relay/", "config/", "billing/", "accounts/")


def py_spy() -> str | None:
    binary = TOOLS / "bin" / "py-spy"
    if not binary.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(TOOLS), "py-spy"],
            check=False,
        )
    return str(binary) if binary.exists() else None


def start(pid: int, seconds: int) -> tuple[subprocess.Popen[bytes], str] | None:
    binary = py_spy()
    if binary is None:
        return None
    out = tempfile.NamedTemporaryFile(suffix=".txt", delete=False).name  # noqa: SIM115
    proc = subprocess.Popen(
        [
            binary,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds),
            "--rate",
            "250",
            "--format",
            "raw",
            "--nonblocking",
            "--full-filenames",
            "--output",
            out,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, out


def short(frame: str) -> str:
    # "function (path/to/file.py:123)" -> "function (file.py)" with project paths kept relative
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in PROJECT_DIRS:
        if marker in path:
            return f"{name} ({marker}{path.split(marker, 1)[1]})"
    return f"{name} ({os.path.basename(path)})"


def package(frame: str) -> str:
    """The library (or project app) a raw py-spy frame belongs to."""
    path = frame.partition(" (")[2].rstrip(")").rsplit(":", 1)[0]
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    for marker in PROJECT_DIRS:
        if marker in path:
            return marker.rstrip("/") + " (Baton)"
    if "/asyncio/" in path:
        return "asyncio (stdlib)"
    return "other"


def summarise(raw_file: str, top: int = 12) -> list[str]:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    libraries: Counter[str] = Counter()
    total = 0
    for line in Path(raw_file).read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        raw = [
            f
            for f in stack.split(";")
            if f and not f.startswith("process ") and not f.startswith("thread ")
        ]
        if not raw:
            continue
        frames = [short(f) for f in raw]
        total += count
        own[frames[-1]] += count
        packages[package(raw[-1])] += count
        for name in {package(f) for f in raw}:
            libraries[name] += count
        for frame in set(frames):
            inclusive[frame] += count
    os.unlink(raw_file)
    if not total:
        return ["(no samples)"]
    lines = [
        f"{total} samples of one worker. Inclusive share (the function and what it calls), "
        "project code only:",
        "",
        "| function | inclusive |",
        "|---|---:|",
    ]
    project = [(f, n) for f, n in inclusive.most_common() if any(d in f for d in PROJECT_DIRS)]
    lines += [f"| `{f}` | {n * 100 / total:.1f} % |" for f, n in project[:top]]
    lines += [
        "",
        "By library: *self* is where the CPU was (the innermost frame), *inclusive* counts a "
        "sample for every library on its stack:",
        "",
        "| library | self | inclusive |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {name} | {n * 100 / total:.1f} % | {libraries[name] * 100 / total:.1f} % |"
        for name, n in packages.most_common(10)
    ]
    lines += [
        "",
        "Self time (where the CPU actually was), all code:",
        "",
        "| function | self |",
        "|---|---:|",
    ]
    lines += [f"| `{f}` | {n * 100 / total:.1f} % |" for f, n in own.most_common(top)]
    return lines
