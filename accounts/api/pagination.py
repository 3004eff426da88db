"""Limit/offset pagination that refuses what it cannot honour.

DRF's own falls back to the default for a limit it cannot read and passes any
offset or limit it can read straight to the database, so ``?limit=2**63`` was
a 500. Here both are whole numbers within documented bounds, or a 400 in the
API's error shape; the bounds are in the schema too.
"""

from __future__ import annotations

import re
from typing import Any

from django.utils.translation import gettext as _
from rest_framework import pagination
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

MAX_LIMIT = 1000
# The largest row count a database can hold (PostgreSQL's bigint).
MAX_OFFSET = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")


def query_integer(request: Request, name: str, *, minimum: int, maximum: int) -> int | None:
    """The query parameter ``name`` as a whole number from ``minimum`` to ``maximum``,
    None when absent; anything else is a field error."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if _DIGITS.fullmatch(raw) and minimum <= int(raw) <= maximum:
        return int(raw)
    raise ValidationError(
        {
            name: [
                _("Use a whole number from %(minimum)s to %(maximum)s.")
                % {"minimum": minimum, "maximum": maximum}
            ]
        }
    )


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    max_limit = MAX_LIMIT

    def get_limit(self, request: Request) -> int:
        limit = query_integer(request, self.limit_query_param, minimum=1, maximum=MAX_LIMIT)
        return limit if limit is not None else (self.default_limit or MAX_LIMIT)

    def get_offset(self, request: Request) -> int:
        offset = query_integer(request, self.offset_query_param, minimum=0, maximum=MAX_OFFSET)
        return offset or 0

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        bounds = {
            self.limit_query_param: {
                "minimum": 1,
                "maximum": MAX_LIMIT,
                "default": self.default_limit,
            },
            self.offset_query_param: {"minimum": 0, "maximum": MAX_OFFSET, "default": 0},
        }
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return parameters


class CursorPagination(pagination.CursorPagination):
    """For lists too long to count: the request log holds a row per request (millions a day
    at scale), and the COUNT behind limit/offset's ``count`` read every row of the team's in
    the window (BENCHMARKS.md, "The usage ledger at scale"). A cursor reads only the page:
    ``next`` and ``previous`` are links, there is no total. ``limit`` sets the page size,
    within the same bounds as elsewhere."""

    page_size_query_param = "limit"
    max_page_size = MAX_LIMIT
    ordering = ("-created_at", "-pk")

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        if "offset" in request.query_params:  # a client written for the other lists
            raise ValidationError(
                {"offset": [_("This list pages by cursor: follow its next and previous links.")]}
            )
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request: Request) -> int:
        limit = query_integer(request, self.page_size_query_param, minimum=1, maximum=MAX_LIMIT)
        return limit if limit is not None else (self.page_size or MAX_LIMIT)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(
                    {"minimum": 1, "maximum": MAX_LIMIT, "default": self.page_size}
                )
        return parameters
