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
