"""Endpoints for provider credentials and the provider catalog.

Team-scoped viewsets build on ``TeamScopedViewSet`` (404 for outsiders, a role
per method) and leave every change to the actions in ``relay.actions``, which
audit it and refresh the relay's caches.
"""

from __future__ import annotations

from typing import Any, cast

from django.db.models import QuerySet
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from accounts.api.base import TeamScopedViewSet
from accounts.models import Role
from relay import actions
from relay.api.serializers import (
    CredentialSerializer,
    CredentialTestSerializer,
    CredentialUpdateSerializer,
    ProviderSerializer,
    SecretSerializer,
)
from relay.forms import provider_choices
from relay.models import Provider, ProviderCredential


class ProviderViewSet(viewsets.ReadOnlyModelViewSet):
    """The provider catalog: what a credential can point at."""

    serializer_class = ProviderSerializer
    queryset = provider_choices()
    lookup_field = "slug"
    pagination_class = None

    def get_queryset(self) -> QuerySet[Provider]:
        return provider_choices()  # the demo provider's availability is read at run time


class CredentialViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TeamScopedViewSet,
):
    """A team's provider credentials. Everyone in the team can list them
    (secrets masked); owners and admins change them. The secret is
    write-only: responses carry ``secret_last4``."""

    team_queryset = ProviderCredential.objects.select_related("provider", "created_by")
    serializer_class = CredentialSerializer
    read_role = Role.VIEWER
    write_role = Role.ADMIN
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_serializer_class(self) -> type[BaseSerializer[Any]]:
        if self.action in ("update", "partial_update"):
            return CredentialUpdateSerializer
        return CredentialSerializer

    def perform_create(self, serializer: BaseSerializer[Any]) -> None:
        data = serializer.validated_data
        serializer.instance = actions.create_credential(
            self.membership,
            name=data["name"],
            provider=data["provider"],
            secret=data["secret"],
            region=data["region"],
            base_url=data["base_url"],
            extras=data["extras"],
            enabled=data.get("enabled", True),
            request=self.request,
        )

    def perform_update(self, serializer: BaseSerializer[Any]) -> None:
        credential = cast(ProviderCredential, serializer.instance)
        data = serializer.validated_data
        actions.update_credential(
            self.membership,
            credential,
            name=data.get("name", credential.name),
            region=data.get("region", credential.region),
            base_url=data.get("base_url", credential.base_url),
            extras=data.get("extras", credential.extras),
            enabled=data.get("enabled", credential.enabled),
            request=self.request,
        )

    def perform_destroy(self, instance: ProviderCredential) -> None:
        actions.delete_credential(self.membership, instance, request=self.request)

    @extend_schema(request=SecretSerializer, responses=CredentialSerializer)
    @action(detail=True, methods=["post"], url_path="secret")
    @method_decorator(sensitive_variables("serializer"))
    def secret(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Replace the secret. The old one is gone; the response shows the new last four."""
        credential = self.get_object()
        serializer = SecretSerializer(data=request.data, context={"provider": credential.provider})
        serializer.is_valid(raise_exception=True)
        actions.replace_secret(
            self.membership, credential, serializer.validated_data["secret"], request=request
        )
        return Response(
            CredentialSerializer(credential, context=self.get_serializer_context()).data
        )

    @extend_schema(request=None, responses=CredentialTestSerializer)
    @action(detail=True, methods=["post"])
    def test(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Send a minimal request to the provider with this credential and record the result."""
        credential = self.get_object()
        result = actions.run_credential_test(self.membership, credential, request=request)
        return Response(
            CredentialTestSerializer(
                {
                    "ok": result.ok,
                    "message": credential.last_test_message,
                    "latency_ms": result.latency_ms,
                    "tested_at": credential.last_tested_at,
                }
            ).data
        )
