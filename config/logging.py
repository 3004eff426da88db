"""Structured logging: one JSON object per line when ``LOG_FORMAT=json``.

Every record carries the relay request id of the request being served (a
context variable the relay sets when a request starts), so a log line can be
joined with the ``x-request-id`` header a client saw and with the usage event.

Secrets never reach a log line on purpose, and as a second line of defence the
formatter masks anything shaped like a credential (Baton keys, access tokens,
provider keys, bearer tokens, ``key=`` query parameters, passwords in URLs)
in the message and in tracebacks. Prompts are never logged by Baton's code.
"""

from __future__ import annotations

import contextvars
import logging
import re
import traceback
from datetime import UTC, datetime
from typing import Any

import orjson

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "baton_request_id", default=None
)

_SECRET_PATTERNS = [
    # Baton team keys and personal access tokens, OpenAI/Anthropic/DeepSeek-style keys.
    (re.compile(r"\b(sk-baton-|baton_pat_|sk-ant-|sk-proj-|sk-)[A-Za-z0-9_\-]{6,}"), r"\1***"),
    # Gemini / Google API keys.
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"), "AIza***"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=\-]{6,}"), r"\1 ***"),
    (re.compile(r"(?i)([?&](?:key|api[-_]?key|token|access_token)=)[^&\s\"']+"), r"\1***"),
    (
        re.compile(
            r"(?i)(\b(?:api[-_]?key|x-api-key|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"
        ),
        r"\1***",
    ),
    # user:password@ in URLs (database and Redis URLs).
    (re.compile(r"(://[^:/@\s]+:)[^@\s/]+@"), r"\1***@"),
]

# Attributes every LogRecord has; anything else passed with ``extra=`` is emitted as a field.
_STANDARD = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
    | {"message", "asctime", "request_id"}
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RequestIdFilter(logging.Filter):
    """Copies the current relay request id (if any) onto the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", "request_id", ...extra, "exc"}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            out["request_id"] = request_id
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_"):
                out[name] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            out["exc"] = redact("".join(traceback.format_exception(*record.exc_info)))
        elif record.exc_text:
            out["exc"] = redact(record.exc_text)
        return orjson.dumps(out, default=str).decode()


class PlainFormatter(logging.Formatter):
    """The human format, with the request id when there is one, and the same masking."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", None)
        if request_id:
            text = f"{text} [{request_id}]"
        return redact(text)


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """The ``LOGGING`` dict for settings.py. ``uvicorn.error``, where uvicorn writes its
    start-up and error lines, is included so that they are JSON too. ``uvicorn.access`` is
    left as uvicorn set it (production runs with ``--no-access-log``; the load balancer logs
    access): configuring its parent ``uvicorn`` here would make logging reset it to propagate,
    and uvicorn writes access lines whenever that logger reaches a handler, flag or not."""
    formatter = "json" if log_format == "json" else "plain"
    handler = {"handlers": ["console"], "level": level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "config.logging.RequestIdFilter"}},
        "formatters": {
            "plain": {"()": "config.logging.PlainFormatter"},
            "json": {"()": "config.logging.JsonFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": formatter,
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "INFO"},
            "uvicorn.error": handler,
        },
    }
