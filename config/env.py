"""Tiny typed readers for environment settings.

Every reader fails loudly on a value it cannot understand: a typo in a
production environment must stop the process at start, not surface later as a
silently wrong default.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

N = TypeVar("N", int, float)


class ImproperlyConfiguredEnv(RuntimeError):
    """Raised at start when an environment variable has an unusable value."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def envstr(name: str, default: str = "") -> str:
    """A string, also read from the file named by ``NAME_FILE`` (Docker secrets)."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfiguredEnv(
                f"{name}_FILE={file_path!r} cannot be read: {exc}"
            ) from exc
    return os.environ.get(name, default)


def envbool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfiguredEnv(f"{name} must be one of true/false/1/0/yes/no, got {raw!r}")


def _number(name: str, default: N, minimum: N | None, parse: Callable[[str], N], what: str) -> N:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = parse(raw)
    except ValueError as exc:
        raise ImproperlyConfiguredEnv(f"{name} must be {what}, got {raw!r}") from exc
    if minimum is not None and value < minimum:
        raise ImproperlyConfiguredEnv(f"{name} must be at least {minimum}, got {value}")
    return value


def envint(name: str, default: int, *, minimum: int | None = None) -> int:
    return _number(name, default, minimum, int, "an integer")


def envfloat(name: str, default: float, *, minimum: float | None = None) -> float:
    return _number(name, default, minimum, float, "a number")


def envlist(name: str, default: list[str] | None = None) -> list[str]:
    raw = envstr(name)
    if not raw:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]
