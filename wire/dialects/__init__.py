"""Ingress dialects: the wire languages clients speak to Baton (wire/dialects/base.py)."""

from __future__ import annotations

from wire.dialects.base import Ask, Dialect, DialectError, DialectName, Refusal
from wire.dialects.chat import CHAT
from wire.dialects.messages import MESSAGES

DIALECTS: dict[str, Dialect] = {"chat": CHAT, "messages": MESSAGES}

__all__ = [
    "CHAT",
    "DIALECTS",
    "MESSAGES",
    "Ask",
    "Dialect",
    "DialectError",
    "DialectName",
    "Refusal",
]
