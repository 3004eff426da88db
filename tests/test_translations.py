"""The Chinese catalog covers every string the product shows, and what ships is compiled from it.

Merges of parallel work have twice lost catalog entries (each side's ``makemessages`` drops the
other's new strings): the UI then shows English mid-page and nothing else notices. This runs
``makemessages`` on a copy of the source, exactly as ``make messages`` would, and requires that
it finds nothing new: no untranslated and no fuzzy entry, and the committed ``.mo`` is the one
``msgfmt`` makes from the committed ``.po``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATALOG = Path("locale/zh_Hans/LC_MESSAGES/django.po")
# What `make messages` ignores, and what is not source at all.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "node_modules", "staticfiles", "__pycache__", ".*-venv", "results", "*.mo"
)


def statistics(po: Path) -> dict[str, int]:
    """msgfmt's own count of translated, fuzzy and untranslated entries."""
    done = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", os.devnull, str(po)],
        capture_output=True,
        text=True,
        check=True,
    )
    counts = {"translated": 0, "fuzzy": 0, "untranslated": 0}
    for number, kind in re.findall(r"(\d+) (translated|fuzzy|untranslated)", done.stderr):
        counts[kind] = int(number)
    return counts


def test_the_catalog_translates_every_string_in_the_source(tmp_path: Path) -> None:
    copy = tmp_path / "src"
    shutil.copytree(ROOT, copy, ignore=NOT_SOURCE, symlinks=True)
    before = statistics(copy / CATALOG)
    assert before["translated"] > 500  # proves msgfmt read the real catalog
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans"],
        cwd=copy,
        env={**os.environ, "DEBUG": "1"},
        capture_output=True,
        check=True,
    )
    after = statistics(copy / CATALOG)
    assert after["fuzzy"] == 0 and after["untranslated"] == 0, (
        f"{after['untranslated']} strings of the source are not translated and "
        f"{after['fuzzy']} are fuzzy: run `make messages` and fill them in {CATALOG}"
    )
    assert after == before


def test_the_shipped_catalog_is_compiled_from_the_committed_one(tmp_path: Path) -> None:
    compiled = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "-o", str(compiled), str(ROOT / CATALOG)], check=True)
    assert compiled.read_bytes() == (ROOT / CATALOG).with_suffix(".mo").read_bytes(), (
        "run `make messages`: locale/zh_Hans/LC_MESSAGES/django.mo is stale"
    )
