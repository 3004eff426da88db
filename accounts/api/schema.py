"""What drf-spectacular needs to know about Baton's own API classes.

Imported by ``AccountsConfig.ready`` so the extensions are registered before
any schema is generated.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import serializers


class PersonalTokenScheme(OpenApiAuthenticationExtension):
    """Personal access tokens as HTTP bearer auth, so the docs page's Authorize
    button takes one (the schema listed only the session cookie before)."""

    target_class = "accounts.api.auth.PersonalTokenAuthentication"
    name = "personalAccessToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        scheme: dict[str, Any] = build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix=self.target.keyword
        )
        scheme["description"] = (
            "A personal access token (baton_pat_...), created under Access tokens, "
            "sent as `Authorization: Bearer <token>`."
        )
        return scheme


class BoundedListSerializer(serializers.ListSerializer):
    """A nested ``many=True`` list whose ``min_length`` and ``max_length`` the
    schema shows (drf-spectacular leaves them out of nested lists). Use it as
    the child serializer's ``Meta.list_serializer_class``."""


class BoundedListScheme(OpenApiSerializerFieldExtension):
    target_class = BoundedListSerializer

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> Any:
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if self.target.min_length is not None:
            schema["minItems"] = self.target.min_length
        if self.target.max_length is not None:
            schema["maxItems"] = self.target.max_length
        return schema


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every error of the management API.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {
                "type": {
                    "type": "string",
                    "description": "invalid_request, rule_violation, authentication_failed, "
                    "permission_denied, not_found, method_not_allowed, throttled...",
                },
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "description": "For invalid input: each field's messages.",
                    "additionalProperties": True,
                },
            },
        }
    },
}


def document_errors(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A postprocessing hook: every operation may answer a 4xx in the error shape
    (``accounts.api.errors`` makes every error under /api/ take it)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    response = {
        "description": "The request was refused; `error.type` says why.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for item in result.get("paths", {}).values():
        for operation in item.values():
            operation.setdefault("responses", {}).setdefault("4XX", response)
    return result
