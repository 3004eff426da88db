"""The documentation stays true to the repository it describes.

- Every relative link in the Markdown files (README.md, ARCHITECTURE.md, docs/, ...) points
  at a file that exists, and at a heading that exists when it names one.
- ARCHITECTURE.md names only files and dotted names that exist: every backticked path, and
  every backticked ``package.module.name`` of the product. A path written as planned
  (followed by "(planned)") must not exist yet: once it does, the map says so.
- The code map has a section for every product package, and names every module of the data
  plane (``gateway/``) and of the wire formats (``wire/``).
- Nothing points outside the repository (the design notes and references the project was
  started from are not part of it).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "ARCHITECTURE.md"
SKIPPED_DIRS = {
    ".git",
    ".venv",
    "node_modules",
    "staticfiles",
    "var",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".litellm-venv",
    ".tools",
    "results",
}
PRODUCT = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
    "root_packages"
]
# Backticked words with a slash in ARCHITECTURE.md that are request syntax, not files.
NOT_PATHS = {"provider/model", "credential-name/model"}
EXTENSIONS = (".py", ".md", ".html", ".lua", ".toml", ".yaml", ".yml", ".po", ".js", ".css")


def walk(suffixes: tuple[str, ...]) -> Iterator[Path]:
    for path in sorted(ROOT.rglob("*")):
        relative = path.relative_to(ROOT)
        if any(part in SKIPPED_DIRS or part.endswith(".egg-info") for part in relative.parts):
            continue
        if path.is_file() and (path.suffix in suffixes or path.name in suffixes):
            yield path


def markdown_files() -> list[Path]:
    return list(walk((".md",)))


def prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: formatting and punctuation dropped, spaces
    become hyphens, lower case."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for line in prose(path.read_text()).splitlines():
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            name, n = base, 0
            while name in found:
                n += 1
                name = f"{base}-{n}"
            found.add(name)
    return found


def links(path: Path) -> list[str]:
    text = re.sub(r"`[^`\n]*`", "", prose(path.read_text()))
    return re.findall(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)


def test_the_markdown_files_are_found() -> None:
    names = {str(p.relative_to(ROOT)) for p in markdown_files()}
    assert {"README.md", "ARCHITECTURE.md", "docs/configuration.md"} <= names


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    broken = []
    for target in links(path):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target}: no heading #{anchor} in {destination.relative_to(ROOT)}")
    assert not broken, f"{path.relative_to(ROOT)}: " + "; ".join(broken)


def test_readme_and_architecture_link_each_other() -> None:
    readme = links(ROOT / "README.md")
    assert "ARCHITECTURE.md" in readme
    assert any(target.startswith("docs/") for target in readme)
    assert "README.md" in links(ARCHITECTURE)


def backticked(text: str) -> list[tuple[str, str]]:
    """Each backticked span of the prose, with the text that follows it."""
    body = prose(text)
    return [(m.group(1), body[m.end() : m.end() + 12]) for m in re.finditer(r"`([^`\n]+)`", body)]


def is_path(span: str) -> bool:
    if span in NOT_PATHS or any(c in span for c in " <>{}[]*=\"'(),:") or "://" in span:
        return False
    return not span.startswith(("/", "-", ".")) and ("/" in span or span.endswith(EXTENSIONS))


def test_architecture_names_only_files_that_exist() -> None:
    text = ARCHITECTURE.read_text()
    checked, missing, landed = 0, [], []
    for span, after in backticked(text):
        if not is_path(span):
            continue
        exists = (ROOT / span).exists()
        if after.lstrip().startswith("(planned)"):
            if exists:
                landed.append(span)
        elif not exists:
            missing.append(span)
        checked += 1
    assert not missing, f"ARCHITECTURE.md names files that do not exist: {missing}"
    assert not landed, f"ARCHITECTURE.md calls these planned, but they exist now: {landed}"
    assert checked >= 100  # a guard against a parser that silently finds little


def resolve(name: str) -> bool:
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        module = ".".join(parts[:end])
        try:
            if importlib.util.find_spec(module) is None:
                continue
        except ModuleNotFoundError:  # a parent of it is a module, not a package
            continue
        if end == len(parts):
            return True
        target: object = importlib.import_module(module)
        for attribute in parts[end:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def test_architecture_names_only_code_that_exists() -> None:
    pattern = re.compile(rf"^(?:{'|'.join(PRODUCT)})(?:\.[A-Za-z_]\w*)+$")
    names = {span for span, _ in backticked(ARCHITECTURE.read_text()) if pattern.match(span)}
    missing = sorted(name for name in names if not resolve(name))
    assert not missing, f"ARCHITECTURE.md names code that does not exist: {missing}"
    assert len(names) >= 15


def test_the_code_map_covers_every_package() -> None:
    text = ARCHITECTURE.read_text()
    headings = set(re.findall(r"^### `([a-z_]+)/`", text, flags=re.MULTILINE))
    assert set(PRODUCT) <= headings, f"no code map section for {set(PRODUCT) - headings}"
    named = {span for span, _ in backticked(text)}
    unnamed = [
        str(path.relative_to(ROOT))
        for package in ("gateway", "wire")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.name != "__init__.py" and str(path.relative_to(ROOT)) not in named
    ]
    assert not unnamed, f"modules of the data plane and wire formats not on the map: {unnamed}"


# Pieces of the references the project was started from, which a clone does not have. Split
# so that this file does not match itself.
OUTSIDE = re.compile(
    "|".join(
        (
            r"\.\./" + r"shared/",
            r"/work/" + r"shared",
            r"shared/" + r"reference",
            r"\bDESIGN" + r"\.md\b",
            r"\bprotocols" + r"\.md\b",
            r"\blessons" + r"\.md\b",
            r"providers" + r"\.md section",
        )
    )
)


def test_nothing_points_outside_the_repository() -> None:
    suffixes = (*EXTENSIONS, ".txt", ".example", ".sh", "Makefile", "Dockerfile", "run")
    files = list(walk(suffixes))
    assert len(files) > 200
    hits = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in files
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not hits, f"references to files outside the repository: {hits}"


def test_every_guarantee_of_the_reliability_section_names_a_test_that_exists() -> None:
    """README's Reliability section states each guarantee with the test that proves it, as
    ``tests/...py::test_name`` (a pytest node id): each bullet names one, and each exists."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n### Reliability\n", 1)[1].split("\n## ", 1)[0]
    bullets = section.split("\n- ")[1:]
    assert bullets
    for bullet in bullets:
        named = re.findall(r"`(tests/[\w/]+\.py)::(test_\w+)`", bullet)
        assert named, f"a guarantee without its test: {bullet[:80]}"
        for path, name in named:
            source = ROOT / path
            assert source.is_file(), path
            assert re.search(rf"^def {name}\(", source.read_text(), re.MULTILINE), f"{path}::{name}"
