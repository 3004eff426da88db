"""The team API keys endpoint: a key's own fields and its limits in one resource.

A team-scoped viewset (``TeamScopedViewSet``: 404 for outsiders, a role per method);
every change goes through ``accounts.apikeys``, which audits it and refreshes the
relay's caches. Input rules are the page's (``accounts.apikey_rules`` and billing's
limit bounds), so a bad value gets the same message in both places. A key itself
appears only in the response that created it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from accounts import apikey_rules, apikeys
from accounts.api.base import TeamScopedViewSet
from accounts.models import ApiKey, Role
from billing.api import serializers as limits
from billing.models import MAX_RPM, MAX_TPM

API_KEY_STATUSES = ("active", "revoked", "expired")


class ApiKeySerializer(serializers.ModelSerializer[ApiKey]):
    name = serializers.CharField(max_length=apikey_rules.MAX_NAME_LENGTH)
    masked_key = serializers.CharField(source="masked", read_only=True)
    allowed_models = serializers.ListField(
        child=serializers.CharField(
            max_length=apikey_rules.MAX_MODEL_NAME_LENGTH, trim_whitespace=True
        ),
        max_length=apikey_rules.MAX_MODELS,
        required=False,
        help_text="Model names or aliases this key may use; empty means all.",
    )
    ip_allowlist = serializers.ListField(
        child=serializers.CharField(max_length=100),
        max_length=apikey_rules.MAX_NETWORKS,
        required=False,
        help_text="CIDR blocks the key may be used from; empty means any address.",
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    # The same fields and bounds as key-limits (and the pages): null means no limit.
    rpm_limit = limits.rate(MAX_RPM, "Requests per minute for this key.")
    tpm_limit = limits.rate(MAX_TPM, "Tokens per minute for this key.")
    budget_limit = limits.budget("Spending cap per budget_period, in the team's currency.")
    status = serializers.SerializerMethodField()
    created_by = serializers.EmailField(source="created_by.email", read_only=True, allow_null=True)
    revoked_by = serializers.EmailField(source="revoked_by.email", read_only=True, allow_null=True)

    class Meta:
        model = ApiKey
        fields: tuple[str, ...] = (
            "id",
            "name",
            "masked_key",
            "last4",
            "status",
            "allowed_models",
            "expires_at",
            "ip_allowlist",
            "rpm_limit",
            "tpm_limit",
            "budget_limit",
            "budget_period",
            "created_by",
            "created_at",
            "last_used_at",
            "revoked_at",
            "revoked_by",
        )
        read_only_fields = ("id", "last4", "created_at", "last_used_at", "revoked_at")

    @extend_schema_field(serializers.ChoiceField(choices=API_KEY_STATUSES))
    def get_status(self, api_key: ApiKey) -> str:
        if api_key.revoked_at is not None:
            return "revoked"
        return "active" if api_key.is_active else "expired"

    def _existing(self) -> ApiKey | None:
        return self.instance if isinstance(self.instance, ApiKey) else None

    def validate_name(self, name: str) -> str:
        return apikey_rules.clean_name(self.context["team"], name, exclude=self._existing())

    def validate_allowed_models(self, models: list[str]) -> list[str]:
        return apikey_rules.clean_allowed_models(models)

    def validate_ip_allowlist(self, entries: list[str]) -> list[str]:
        return apikey_rules.clean_ip_allowlist(entries)

    def validate_expires_at(self, expires_at: datetime | None) -> datetime | None:
        existing = self._existing()
        return apikey_rules.clean_expiry(
            expires_at, unchanged=existing.expires_at if existing else None
        )


class CreatedApiKeySerializer(ApiKeySerializer):
    key = serializers.CharField(
        read_only=True,
        help_text="The API key itself. Returned only in this response; store it now.",
    )

    class Meta(ApiKeySerializer.Meta):
        fields = (*ApiKeySerializer.Meta.fields, "key")


class ApiKeyViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    TeamScopedViewSet,
):
    """A team's API keys for /v1. Members create keys and change or revoke
    their own; owners and admins manage every key; viewers only list."""

    team_queryset = ApiKey.objects.select_related("created_by", "revoked_by")
    serializer_class = ApiKeySerializer
    read_role = Role.VIEWER
    write_role = Role.MEMBER
    http_method_names = ["get", "post", "patch", "head", "options"]

    @extend_schema(request=ApiKeySerializer, responses={201: CreatedApiKeySerializer})
    @method_decorator(sensitive_variables("issued", "data", "response"))
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Issue a key. The response is the only place the key itself appears."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        issued = apikeys.create_api_key(
            self.membership, **serializer.validated_data, request=request
        )
        data = dict(
            CreatedApiKeySerializer(issued.api_key, context=self.get_serializer_context()).data
        )
        data["key"] = issued.key
        response = Response(data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response

    def perform_update(self, serializer: BaseSerializer[Any]) -> None:
        apikeys.update_api_key(
            self.membership,
            cast(ApiKey, serializer.instance),
            request=self.request,
            **serializer.validated_data,
        )

    @extend_schema(request=None, responses=ApiKeySerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Revoke the key everywhere within a second. Revoking cannot be undone."""
        api_key = self.get_object()
        apikeys.revoke_api_key(self.membership, api_key, request=request)
        return Response(ApiKeySerializer(api_key, context=self.get_serializer_context()).data)
