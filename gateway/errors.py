"""Errors the relay itself returns, always in OpenAI's shape."""

from __future__ import annotations

import orjson


class RelayError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> bytes:
        return orjson.dumps(
            {
                "error": {
                    "message": self.message,
                    "type": self.type,
                    "param": self.param,
                    "code": self.code,
                }
            }
        )


def invalid_key(message: str = "Invalid Baton API key.") -> RelayError:
    return RelayError(401, message, code="invalid_api_key")


def model_not_found(model: str) -> RelayError:
    return RelayError(
        404,
        f"The model {model!r} does not exist or this API key may not use it.",
        code="model_not_found",
        param="model",
    )


def database_unavailable(what: str) -> RelayError:
    """A lookup that needed the database while it does not answer (gateway/db.py)."""
    return RelayError(
        503,
        f"Baton cannot {what} right now: its database is not answering. Try again shortly.",
        type="server_error",
        code="database_unavailable",
        headers={"retry-after": "1"},
    )
