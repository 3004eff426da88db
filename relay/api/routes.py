"""Management API for model routes: ``/api/teams/<team_id>/routes/``.

A route is an alias (the model name clients send) with its ordered targets.
Targets are nested: on write, a list of ``{credential, upstream_model,
priority, weight}`` that replaces the route's current targets. A credential
is looked up among the team's own credentials only; any other id is a field
error. Input rules are the pages' (``relay.route_forms``); every change goes
through the audited actions in ``relay.routes``.
"""

from __future__ import annotations

from typing import Any, cast

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers

from accounts.api.base import TeamScopedViewSet
from accounts.api.schema import BoundedListSerializer
from accounts.models import Role, Team
from relay import dialects as dialect_rules
from relay import routes
from relay.models import ModelRoute, ProviderCredential, RouteTarget
from relay.route_forms import (
    MAX_ALIAS_LENGTH,
    MAX_DESCRIPTION_LENGTH,
    MAX_MODEL_LENGTH,
    MAX_PRIORITY,
    MAX_TARGETS,
    MAX_WEIGHT,
    MIN_PRIORITY,
    MIN_WEIGHT,
    TargetSpec,
    check_targets,
    clean_alias,
    clean_description,
    clean_priority,
    clean_upstream_model,
    clean_weight,
)


def _messages(exc: DjangoValidationError) -> serializers.ValidationError:
    return serializers.ValidationError(exc.messages)


class TeamCredentialField(serializers.PrimaryKeyRelatedField):
    """A credential id, resolved among the requesting team's credentials only."""

    default_error_messages = {
        "required": gettext_lazy("Choose a provider key (a credential id)."),
        "does_not_exist": gettext_lazy("Not one of this team's provider keys: {pk_value}."),
        "incorrect_type": gettext_lazy("Send the credential's id (a UUID)."),
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("pk_field", serializers.UUIDField(format="hex_verbose"))
        super().__init__(**kwargs)

    def get_queryset(self) -> models.QuerySet[ProviderCredential]:
        team: Team | None = self.context.get("team")
        if team is None:
            return ProviderCredential.objects.none()
        return ProviderCredential.objects.filter(team=team).select_related("provider")

    def to_internal_value(self, data: Any) -> ProviderCredential:
        try:
            return cast(ProviderCredential, super().to_internal_value(data))
        except serializers.ValidationError as exc:
            # A malformed UUID gets the pk field's own message; say it plainly.
            detail = exc.detail
            if isinstance(detail, list) and detail and "UUID" in str(detail[0]):
                self.fail("incorrect_type", data_type=type(data).__name__)
            raise


class RouteTargetSerializer(serializers.ModelSerializer[RouteTarget]):
    credential = TeamCredentialField(help_text="The id of one of the team's provider keys.")
    credential_name = serializers.CharField(source="credential.name", read_only=True)
    provider = serializers.CharField(source="credential.provider_id", read_only=True)
    provider_name = serializers.CharField(source="credential.provider.name", read_only=True)
    upstream_model = serializers.CharField(
        max_length=MAX_MODEL_LENGTH,
        help_text=f"The model name at the provider (1-{MAX_MODEL_LENGTH} characters).",
    )
    priority = serializers.IntegerField(
        required=False,
        default=0,
        min_value=MIN_PRIORITY,
        max_value=MAX_PRIORITY,
        help_text=f"{MIN_PRIORITY}-{MAX_PRIORITY}; lower priorities are tried first.",
    )
    weight = serializers.IntegerField(
        required=False,
        default=1,
        min_value=MIN_WEIGHT,
        max_value=MAX_WEIGHT,
        help_text=f"{MIN_WEIGHT}-{MAX_WEIGHT}; targets of equal priority share traffic by weight.",
    )

    dialects = serializers.SerializerMethodField(
        help_text=(
            "How a request in each dialect besides chat reaches this target: native (passed "
            "through as it is) or translated (through Chat Completions). Always lists "
            "messages, and every other dialect one of the team's provider keys serves natively; "
            "empty for an embedding model."
        )
    )

    class Meta:
        model = RouteTarget
        list_serializer_class = BoundedListSerializer
        fields = (
            "credential",
            "credential_name",
            "provider",
            "provider_name",
            "upstream_model",
            "priority",
            "weight",
            "dialects",
        )

    @extend_schema_field(
        serializers.DictField(child=serializers.ChoiceField(choices=dialect_rules.PATHS))
    )
    def get_dialects(self, target: RouteTarget) -> dict[str, str]:
        shown = self.context.get("dialects") or dialect_rules.shown_dialects([target.credential])
        return dialect_rules.target_paths(target.credential, target.upstream_model, shown)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # PATCH makes nested fields optional too; a target still needs both.
        missing = [f for f in ("credential", "upstream_model") if f not in attrs]
        if missing:
            raise serializers.ValidationError(
                {f: [serializers.Field.default_error_messages["required"]] for f in missing}
            )
        return attrs

    def validate_upstream_model(self, value: str) -> str:
        try:
            return clean_upstream_model(value)
        except DjangoValidationError as exc:
            raise _messages(exc) from None

    def validate_priority(self, value: int) -> int:
        try:
            return clean_priority(value)
        except DjangoValidationError as exc:
            raise _messages(exc) from None

    def validate_weight(self, value: int) -> int:
        try:
            return clean_weight(value)
        except DjangoValidationError as exc:
            raise _messages(exc) from None


class RouteSerializer(serializers.ModelSerializer[ModelRoute]):
    alias = serializers.CharField(
        max_length=MAX_ALIAS_LENGTH,
        help_text=(
            f"The model name clients send, e.g. gpt-4o (1-{MAX_ALIAS_LENGTH} characters, "
            "no whitespace, unique in the team)."
        ),
    )
    description = serializers.CharField(
        max_length=MAX_DESCRIPTION_LENGTH, required=False, allow_blank=True, default=""
    )
    # min_length and max_length go to the ListSerializer (unknown to the stubs).
    targets = RouteTargetSerializer(  # type: ignore[call-arg]
        many=True,
        allow_empty=False,
        min_length=1,
        max_length=MAX_TARGETS,
        help_text=(f"1-{MAX_TARGETS} targets. On write they replace the route's current targets."),
    )

    class Meta:
        model = ModelRoute
        fields = ("id", "alias", "description", "targets", "created_at")
        read_only_fields = ("id", "created_at")

    @property
    def team(self) -> Team:
        team: Team = self.context["team"]
        return team

    def validate_alias(self, alias: str) -> str:
        exclude = self.instance if isinstance(self.instance, ModelRoute) else None
        try:
            return clean_alias(self.team, alias, exclude=exclude)
        except DjangoValidationError as exc:
            raise _messages(exc) from None

    def validate_description(self, description: str) -> str:
        try:
            return clean_description(description)
        except DjangoValidationError as exc:
            raise _messages(exc) from None

    def validate_targets(self, targets: list[dict[str, Any]]) -> list[TargetSpec]:
        specs = [
            TargetSpec(
                credential=t["credential"],
                upstream_model=t["upstream_model"],
                priority=t.get("priority", 0),
                weight=t.get("weight", 1),
            )
            for t in targets
        ]
        try:
            return check_targets(self.team, specs)
        except DjangoValidationError as exc:
            raise _messages(exc) from None


@extend_schema_view(
    list=extend_schema(summary="List the team's model aliases with their targets"),
    create=extend_schema(summary="Create a model alias"),
    retrieve=extend_schema(summary="One model alias"),
    update=extend_schema(summary="Replace a model alias and its targets"),
    partial_update=extend_schema(
        summary="Change a model alias; targets, when sent, replace the current ones"
    ),
    destroy=extend_schema(summary="Delete a model alias"),
)
class RouteViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TeamScopedViewSet,
):
    """A team's model aliases. Everyone in the team reads them; owners and
    admins change them. Every change is audited and reaches the relay within
    a second."""

    team_queryset = ModelRoute.objects.prefetch_related(
        models.Prefetch(
            "targets",
            queryset=RouteTarget.objects.select_related("credential__provider").order_by(
                "priority", "-weight", "id"
            ),
        )
    )
    serializer_class = RouteSerializer
    read_role = Role.VIEWER
    write_role = Role.ADMIN
    lookup_value_regex = r"\d+"

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if "team" in context:
            context["dialects"] = dialect_rules.shown_dialects(
                ProviderCredential.objects.filter(team=context["team"]).select_related("provider")
            )
        return context

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        data = serializer.validated_data
        route = routes.create_route(
            self.membership,
            alias=data["alias"],
            description=data.get("description", ""),
            targets=data["targets"],
            request=self.request,
        )
        serializer.instance = self.get_queryset().get(pk=route.pk)

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        route = cast(ModelRoute, serializer.instance)
        data = serializer.validated_data
        kwargs: dict[str, Any] = {}
        for field in ("alias", "description", "targets"):
            if field in data:
                kwargs[field] = data[field]
        routes.update_route(self.membership, route, request=self.request, **kwargs)
        serializer.instance = self.get_queryset().get(pk=route.pk)

    def perform_destroy(self, instance: ModelRoute) -> None:
        routes.delete_route(self.membership, instance, request=self.request)
