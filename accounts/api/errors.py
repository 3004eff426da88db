"""One JSON error shape for the management API.

``{"error": {"type": ..., "message": ..., "fields": {...}}}``: ``fields`` is
present for validation errors and maps each field to its messages.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.actions import TeamRuleError

_TYPES = {
    400: "invalid_request",
    401: "authentication_failed",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    415: "unsupported_media_type",
    429: "throttled",
}


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for value in detail.values():
            return _first_message(value)
        return "Invalid input."
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else "Invalid input."
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, TeamRuleError):
        return Response(
            {"error": {"type": "rule_violation", "message": str(exc)}},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    body: dict[str, Any] = {
        "type": _TYPES.get(response.status_code, "error"),
        "message": _first_message(response.data),
    }
    if isinstance(exc, exceptions.ValidationError) and isinstance(response.data, dict):
        body["message"] = "Some fields are invalid."
        body["fields"] = response.data
    response.data = {"error": body}
    return response
