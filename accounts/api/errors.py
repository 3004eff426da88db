"""One JSON error shape for the management API.

``{"error": {"type": ..., "message": ..., "fields": {...}}}``: ``fields`` is
present for validation errors and maps each field to its messages.

Every error under ``/api/`` has this shape, whatever raised it: DRF's own
exceptions and the team rules (``exception_handler``), Django's refusals
inside a view (a body over the upload limit, a bad host), an unexpected
exception in a view (a 500, logged with its traceback like Django's own), and
anything that fails outside a view, such as an unknown URL or an exception in
a middleware (the ``handler*`` views, installed in ``config/urls.py``). Pages
keep Django's HTML error pages.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core import signals
from django.core.exceptions import (
    BadRequest,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
)
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.log import log_response
from django.utils.translation import gettext as _
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from accounts.actions import TeamRuleError

API_PREFIX = "/api/"

_TYPES = {
    400: "invalid_request",
    401: "authentication_failed",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "throttled",
    500: "server_error",
}


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for value in detail.values():
            return _first_message(value)
        return "Invalid input."
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else "Invalid input."
    return str(detail)


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}


def _server_error_message() -> str:
    return _("Something went wrong on our side. It has been logged; please try again later.")


def _django_refusal(exc: Exception) -> exceptions.APIException | None:
    """What Django would answer with a 400 (or 413) page, as a DRF exception."""
    if isinstance(exc, RequestDataTooBig):
        refusal: exceptions.APIException = PayloadTooLarge()
    elif isinstance(exc, (SuspiciousOperation, BadRequest)):
        refusal = exceptions.ParseError(_("The request was refused as malformed."))
    else:
        return None
    if isinstance(exc, SuspiciousOperation):
        # Where Django logs these, so security alerts keep working.
        logging.getLogger(f"django.security.{exc.__class__.__name__}").error(str(exc))
    return refusal


def _unexpected(exc: Exception, context: dict[str, Any]) -> Response:
    """A 500 for an exception no handler knows, done the way Django does its own:
    ``got_request_exception`` is sent (the test client re-raises from it, error
    trackers listen to it) and the traceback is logged to ``django.request``."""
    request = context.get("request")
    django_request: HttpRequest | None = getattr(request, "_request", request)
    signals.got_request_exception.send(sender=None, request=django_request)
    set_rollback()
    response = Response(
        error_body("server_error", _server_error_message()),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
    log_response(
        "%s: %s",
        response.reason_phrase,
        django_request.path if django_request is not None else "-",
        response=response,
        request=django_request,
        exception=exc,
    )
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, TeamRuleError):
        return Response(error_body("rule_violation", str(exc)), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    else:
        exc = _django_refusal(exc) or exc
    response = drf_exception_handler(exc, context)
    if response is None:
        return _unexpected(exc, context)
    body: dict[str, Any] = {
        "type": _TYPES.get(response.status_code, "error"),
        "message": _first_message(response.data),
    }
    if isinstance(exc, exceptions.ValidationError) and isinstance(response.data, dict):
        body["message"] = "Some fields are invalid."
        body["fields"] = response.data
    response.data = {"error": body}
    return response


# --- Django's error views: JSON under /api/, the HTML pages elsewhere -----------------


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _json(status_code: int, message: str) -> JsonResponse:
    return JsonResponse(error_body(_TYPES[status_code], message), status=status_code)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        return _json(400, _("The request was refused as malformed."))
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        return _json(403, _("You do not have permission to perform this action."))
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        return _json(404, _("Not found."))
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api(request):
        return _json(500, _server_error_message())
    return defaults.server_error(request)
