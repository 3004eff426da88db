"""Serializers for credentials and the catalog.

Input rules are the pages' (``relay.forms``), so a bad value gets the same
message in both places. Secrets are write-only: a response carries
``secret_last4`` only.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Team
from relay import forms as rules
from relay.models import Provider, ProviderCredential
from relay.netguard import MAX_URL_LENGTH
from relay.secrets import MAX_SECRET_LENGTH


class BlankAsNullURLField(serializers.URLField):
    """A URL that may be absent: stored as "", answered as null (not a "" that
    the schema's ``format: uri`` would call invalid)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_null=True, **kwargs)

    def to_representation(self, value: str) -> str | None:  # type: ignore[override]
        return value or None


def _field_errors(exc: DjangoValidationError, default_field: str) -> serializers.ValidationError:
    if hasattr(exc, "error_dict"):
        return serializers.ValidationError(
            {
                field: [str(m) for e in errors for m in e.messages]
                for field, errors in exc.error_dict.items()
            }
        )
    return serializers.ValidationError({default_field: exc.messages})


class ProviderSerializer(serializers.ModelSerializer[Provider]):
    class Meta:
        model = Provider
        fields = (
            "slug",
            "name",
            "family",
            "regions",
            "default_region",
            "known_models",
            "embedding_models",
            "has_models_endpoint",
            "requires_base_url",
            "key_optional",
            "is_demo",
            "docs_url",
        )
        read_only_fields = fields

    docs_url = BlankAsNullURLField(
        read_only=True, help_text="The provider's documentation; null when the catalog has none."
    )


class ProviderSlugField(serializers.SlugRelatedField[Provider]):
    def get_queryset(self) -> Any:
        return rules.provider_choices()  # the demo provider's availability is read at run time


class CredentialSerializer(serializers.ModelSerializer[ProviderCredential]):
    provider = ProviderSlugField(
        slug_field="slug",
        queryset=rules.provider_choices(),
        error_messages={"does_not_exist": "Unknown provider {value!r}: see /api/providers/."},
    )
    provider_name = serializers.CharField(source="provider.name", read_only=True)
    name = serializers.CharField(max_length=rules.MAX_NAME_LENGTH)
    region = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    base_url = serializers.CharField(
        max_length=MAX_URL_LENGTH, required=False, allow_blank=True, default=""
    )
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        default="",
        help_text=f"The provider's API key (at most {MAX_SECRET_LENGTH} characters). Write-only.",
    )
    extras = serializers.DictField(required=False, default=dict)
    dialect_urls = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=MAX_URL_LENGTH),
        source="declared_dialects",
        required=False,
        default=dict,
        help_text=(
            "With a custom base_url only: the native dialects that server also speaks, "
            '{"messages": base URL (Baton posts to it + /messages), "responses": base URL '
            "(+ /responses)}. Requests in a declared dialect go there as they are; others are "
            "translated to Chat Completions. Checked like base_url. On PATCH it replaces "
            "what was declared; an empty value removes a dialect."
        ),
    )
    native_dialects = serializers.SerializerMethodField(
        help_text=(
            "What the relay reaches natively besides Chat Completions: {dialect: base URL}, "
            "from the catalog for the region or from dialect_urls."
        )
    )
    effective_base_url = serializers.SerializerMethodField()
    created_by = serializers.EmailField(source="created_by.email", read_only=True, allow_null=True)

    class Meta:
        model = ProviderCredential
        fields: tuple[str, ...] = (
            "id",
            "name",
            "provider",
            "provider_name",
            "region",
            "base_url",
            "effective_base_url",
            "secret",
            "secret_last4",
            "extras",
            "dialect_urls",
            "native_dialects",
            "enabled",
            "status",
            "status_reason",
            "created_by",
            "created_at",
            "updated_at",
            "last_tested_at",
            "last_test_ok",
            "last_test_message",
        )
        read_only_fields = (
            "id",
            "secret_last4",
            "status",
            "status_reason",
            "created_at",
            "updated_at",
            "last_tested_at",
            "last_test_ok",
            "last_test_message",
        )

    def get_effective_base_url(self, credential: ProviderCredential) -> str:
        return credential.effective_base_url()

    @extend_schema_field(serializers.DictField(child=serializers.URLField()))
    def get_native_dialects(self, credential: ProviderCredential) -> dict[str, str]:
        return credential.native_dialects()

    def to_representation(self, instance: ProviderCredential) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(instance)
        # The declared dialects are dialect_urls; extras keeps the provider's own settings.
        data["extras"] = rules.with_dialects(data.get("extras") or {}, {})
        return data

    @property
    def team(self) -> Team:
        team: Team = self.context["team"]
        return team

    def validate_name(self, name: str) -> str:
        exclude = self.instance if isinstance(self.instance, ProviderCredential) else None
        return rules.clean_name(self.team, name, exclude=exclude)

    def validate_base_url(self, url: str) -> str:
        return rules.clean_base_url(url) if url.strip() else ""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        provider: Provider = attrs["provider"]
        try:
            attrs["region"], attrs["base_url"] = rules.clean_location(
                provider, attrs.get("region", ""), attrs.get("base_url", "")
            )
        except DjangoValidationError as exc:
            raise _field_errors(exc, "base_url") from None
        try:
            attrs["secret"] = rules.clean_secret(provider, attrs.get("secret", ""))
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"secret": exc.messages}) from None
        try:
            attrs["extras"] = rules.clean_extras(provider, attrs.get("extras") or {})
        except DjangoValidationError as exc:
            raise serializers.ValidationError(
                {"extras": _field_errors(exc, "extras").detail}
            ) from None
        dialects = _clean_dialects(attrs["base_url"], attrs.pop("declared_dialects", {}))
        attrs["extras"] = rules.with_dialects(attrs["extras"], dialects)
        return attrs


def _clean_dialects(base_url: str, urls: dict[str, str]) -> dict[str, str]:
    try:
        return rules.clean_dialect_urls(base_url, urls)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(
            {"dialect_urls": _field_errors(exc, "dialect_urls").detail}
        ) from None


class CredentialUpdateSerializer(CredentialSerializer):
    """PATCH: everything but the provider and the secret (see ``.../secret/``)."""

    provider = ProviderSlugField(slug_field="slug", read_only=True)
    secret = None  # type: ignore[assignment]

    class Meta(CredentialSerializer.Meta):
        fields = tuple(f for f in CredentialSerializer.Meta.fields if f != "secret")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "secret" in self.initial_data:
            raise serializers.ValidationError(
                {"secret": ["Replace a secret with POST .../credentials/<id>/secret/."]}
            )
        credential: ProviderCredential = self.instance  # type: ignore[assignment]
        provider = credential.provider
        if "region" in attrs or "base_url" in attrs:
            try:
                attrs["region"], attrs["base_url"] = rules.clean_location(
                    provider,
                    attrs.get("region", credential.region),
                    attrs.get("base_url", credential.base_url),
                )
            except DjangoValidationError as exc:
                raise _field_errors(exc, "base_url") from None
        extras = rules.with_dialects(credential.extras or {}, {})
        if "extras" in attrs:
            try:
                extras = rules.clean_extras(provider, attrs["extras"] or {})
            except DjangoValidationError as exc:
                raise serializers.ValidationError(
                    {"extras": _field_errors(exc, "extras").detail}
                ) from None
        base_url = attrs.get("base_url", credential.base_url)
        if "declared_dialects" in attrs:
            dialects = _clean_dialects(base_url, attrs.pop("declared_dialects"))
        else:
            # What was declared belongs to the custom base URL; without one, it goes.
            dialects = credential.declared_dialects if base_url else {}
        attrs["extras"] = rules.with_dialects(extras, dialects)
        return attrs


class SecretSerializer(serializers.Serializer[Any]):
    secret = serializers.CharField(write_only=True, allow_blank=True, trim_whitespace=False)

    def validate_secret(self, secret: str) -> str:
        provider: Provider = self.context["provider"]
        return rules.clean_secret(provider, secret)


class CredentialTestSerializer(serializers.Serializer[Any]):
    ok = serializers.BooleanField()
    message = serializers.CharField()
    latency_ms = serializers.IntegerField(allow_null=True)
    tested_at = serializers.DateTimeField()
