"""uv.lock agrees with pyproject.toml: what `make install`, the Dockerfile and CI install is
exactly what the project asks for. Offline: reads the two files (and asks uv to check, offline).

uv records in the lock the requirements it resolved from (the `baton` package's
`requires-dist`), so adding, removing or changing a requirement in pyproject.toml fails here
until `make lock` runs; and every requirement must be met by the version the lock pins.
"""

from __future__ import annotations

import copy
import itertools
import re
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "baton"

# The environments markers are compared in: every Python pyproject allows, the usual platforms.
MARKER_ENVIRONMENTS = [
    {
        "python_version": minor,
        "python_full_version": f"{minor}.0",
        "sys_platform": platform,
        "platform_system": system,
        "os_name": os_name,
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "platform_machine": machine,
    }
    for minor, (platform, system, os_name), machine in itertools.product(
        ("3.11", "3.12", "3.13"),
        (("linux", "Linux", "posix"), ("darwin", "Darwin", "posix"), ("win32", "Windows", "nt")),
        ("x86_64", "aarch64"),
    )
]


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((ROOT / name).read_text())
    return data


def wanted(pyproject: dict[str, Any]) -> dict[str | None, list[Requirement]]:
    """pyproject's requirements by group: None for the runtime ones, else the extra's name."""
    project = pyproject["project"]
    groups: dict[str | None, list[Requirement]] = {
        None: [Requirement(r) for r in project.get("dependencies", [])]
    }
    for extra, requirements in project.get("optional-dependencies", {}).items():
        groups[extra] = [Requirement(r) for r in requirements]
    return groups


def same_marker(a: Marker | None, b: Marker | None, extra: str | None) -> bool:
    environments = [{**env, "extra": extra or ""} for env in MARKER_ENVIRONMENTS]
    return all(
        (a is None or a.evaluate(env)) == (b is None or b.evaluate(env)) for env in environments
    )


def recorded(lock: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The project's own entry in the lock, and the requirements uv recorded it was locked from."""
    entries = [p for p in lock["package"] if p["name"] == PROJECT]
    assert len(entries) == 1, f"uv.lock has {len(entries)} entries for {PROJECT}"
    return entries[0], entries[0].get("metadata", {}).get("requires-dist", [])


def key(name: str, extras: Any, specifier: str) -> tuple[str, frozenset[str], SpecifierSet]:
    return canonicalize_name(name), frozenset(extras), SpecifierSet(specifier)


def lock_problems(pyproject: dict[str, Any], lock: dict[str, Any]) -> list[str]:
    """Every way uv.lock disagrees with pyproject.toml, as messages; empty when they agree."""
    problems: list[str] = []
    if SpecifierSet(lock["requires-python"]) != SpecifierSet(
        pyproject["project"]["requires-python"]
    ):
        problems.append(
            f"requires-python: pyproject {pyproject['project']['requires-python']!r}, "
            f"lock {lock['requires-python']!r}"
        )
    groups = wanted(pyproject)
    project_entry, recorded_requirements = recorded(lock)
    if sorted(e for e in groups if e) != sorted(
        project_entry.get("metadata", {}).get("provides-extras", [])
    ):
        problems.append("the extras in pyproject.toml are not the ones the lock was made for")

    # 1. The lock was made from exactly these requirements (uv's own record of its input).
    unmatched = list(recorded_requirements)
    for extra, requirements in groups.items():
        for req in requirements:
            hit = next(
                (
                    r
                    for r in unmatched
                    if key(r["name"], r.get("extras", ()), r.get("specifier", ""))
                    == key(req.name, req.extras, str(req.specifier))
                    and same_marker(
                        Marker(r["marker"]) if "marker" in r else None,
                        _with_extra(req.marker, extra),
                        extra,
                    )
                ),
                None,
            )
            if hit is None:
                where = f"[{extra}]" if extra else "dependencies"
                problems.append(f"{req} ({where}) is not what uv.lock was made from")
            else:
                unmatched.remove(hit)
    for r in unmatched:
        problems.append(
            f"uv.lock was made from {r['name']} {r.get('specifier', '')}, no longer wanted"
        )

    # 2. The version the lock pins meets every requirement, with the extras it asks for.
    packages: dict[str, list[dict[str, Any]]] = {}
    for package in lock["package"]:
        packages.setdefault(canonicalize_name(package["name"]), []).append(package)
    for req in itertools.chain.from_iterable(groups.values()):
        pinned = packages.get(canonicalize_name(req.name), [])
        if not pinned:
            problems.append(f"{req}: not in uv.lock")
        for package in pinned:
            if not req.specifier.contains(Version(package["version"]), prereleases=True):
                problems.append(f"{req}: uv.lock pins {package['version']}")
            for wanted_extra in req.extras:
                if wanted_extra not in package.get("optional-dependencies", {}):
                    problems.append(f"{req}: uv.lock has nothing for the extra {wanted_extra!r}")
    return problems


def _with_extra(marker: Marker | None, extra: str | None) -> Marker | None:
    if extra is None:
        return marker
    if marker is None:
        return Marker(f"extra == {extra!r}")
    return Marker(f"({marker}) and extra == {extra!r}")


def test_the_lock_matches_pyproject() -> None:
    assert lock_problems(load("pyproject.toml"), load("uv.lock")) == []


def test_the_lock_covers_runtime_and_dev_and_pins_hashes() -> None:
    lock = load("uv.lock")
    project_entry, _ = recorded(lock)
    assert project_entry["dependencies"], "no runtime requirements locked"
    assert project_entry["optional-dependencies"]["dev"], "no dev requirements locked"
    names = Counter(canonicalize_name(p["name"]) for p in lock["package"])
    for name in ("django", "uvicorn", "pytest", "mypy"):
        assert names[canonicalize_name(name)] >= 1, name
    registry = [p for p in lock["package"] if "registry" in p["source"]]
    assert len(registry) == len(lock["package"]) - 1  # everything but Baton comes from PyPI
    for package in registry:
        files = [package.get("sdist", {}), *package.get("wheels", [])]
        hashes = [f["hash"] for f in files if f]
        assert hashes and all(h.startswith("sha256:") for h in hashes), package["name"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # a requirement added to pyproject but not locked
        (lambda p: p["dependencies"].append("django-csp>=4"), "django-csp>=4"),
        # one removed from pyproject but still in the lock's input
        (lambda p: p["dependencies"].remove("orjson>=3.10,<4"), "orjson"),
        # a dev requirement added, and one whose range the pinned version no longer meets
        (lambda p: p["optional-dependencies"]["dev"].append("hypothesis>=6"), "hypothesis>=6"),
        (
            lambda p: p["dependencies"].__setitem__(0, "django>=6"),
            "django>=6: uv.lock pins",
        ),
        # an extra asked for that the lock did not resolve
        (
            lambda p: p["dependencies"].__setitem__(
                p["dependencies"].index("psycopg[binary,pool]>=3.2,<4"), "psycopg[c,pool]>=3.2,<4"
            ),
            "nothing for the extra 'c'",
        ),
        # a marker added
        (
            lambda p: p["optional-dependencies"]["dev"].__setitem__(
                0, p["optional-dependencies"]["dev"][0] + "; sys_platform == 'linux'"
            ),
            "is not what uv.lock was made from",
        ),
        (lambda p: p.__setitem__("requires-python", ">=3.12"), "requires-python"),
    ],
    ids=["added", "removed", "added-dev", "unmet", "extra", "marker", "python"],
)
def test_the_check_notices_drift(edit: Any, expected: str) -> None:
    """The check above fails on each kind of disagreement (on the real lock, pyproject edited)."""
    pyproject = copy.deepcopy(load("pyproject.toml"))
    edit(pyproject["project"])
    problems = lock_problems(pyproject, load("uv.lock"))
    assert any(expected in p for p in problems), problems


def test_uv_agrees_offline() -> None:
    """uv's own check, offline: what `make install` (uv export --locked) would refuse."""
    uv = Path(sys.executable).parent / "uv"
    assert uv.exists(), "make install puts uv in the virtualenv"
    result = subprocess.run(
        [str(uv), "lock", "--check", "--offline", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"uv.lock is out of date, run `make lock`:\n{result.stderr}"


def test_make_and_the_dockerfile_use_the_same_uv_and_the_lock() -> None:
    makefile = (ROOT / "Makefile").read_text()
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    make_uv = re.search(r"^UV_VERSION := (\S+)$", makefile, re.M)
    docker_uv = re.search(r"^ARG UV_VERSION=(\S+)$", dockerfile, re.M)
    assert make_uv and docker_uv and make_uv.group(1) == docker_uv.group(1)
    assert re.search(r"^\$\(STAMP\): .*\buv\.lock\b", makefile, re.M)
    assert "--require-hashes" in makefile and "--require-hashes" in dockerfile
    assert "--extra dev" not in dockerfile  # the image gets the runtime requirements only
