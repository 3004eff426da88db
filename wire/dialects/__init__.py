"""Ingress dialects: the wire languages clients speak to Baton (wire/dialects/base.py)."""

from __future__ import annotations

from wire.dialects.base import Ask, Dialect, DialectError, DialectName, Refusal
from wire.dialects.chat import CHAT
from wire.dialects.messages import MESSAGES
from wire.dialects.responses import RESPONSES

DIALECTS: dict[str, Dialect] = {"chat": CHAT, "messages": MESSAGES, "responses": RESPONSES}

__all__ = [
    "CHAT",
    "DIALECTS",
    "MESSAGES",
    "RESPONSES",
    "Ask",
    "Dialect",
    "DialectError",
    "DialectName",
    "Refusal",
]
