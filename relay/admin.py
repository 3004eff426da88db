"""Admin for the provider catalog and (read-mostly) team credentials.

A credential's ciphertext and secret never appear here: the form excludes
them and the pages show only the masked last four characters. Credentials
are created and their secrets replaced by the team, not in the admin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from relay.models import Provider, ProviderCredential

# Base URLs typed without a scheme mean https (Django 6's default, chosen now).
URL_FIELDS: Mapping[type[models.Field[Any, Any]], Mapping[str, Any]] = {
    models.URLField: {"assume_scheme": "https"}
}


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    formfield_overrides = URL_FIELDS
    list_display = (
        "name",
        "slug",
        "family",
        "enabled",
        "is_demo",
        "has_models_endpoint",
        "sort_order",
    )
    list_editable = ("enabled", "sort_order")
    list_filter = ("family", "enabled")
    search_fields = ("slug", "name")
    fieldsets = (
        (
            None,
            {"fields": ("slug", "name", "family", "enabled", "is_demo", "sort_order", "docs_url")},
        ),
        ("Addresses", {"fields": ("regions", "default_region", "requires_base_url")}),
        ("Behaviour", {"fields": ("auth_style", "key_optional", "has_models_endpoint")}),
        ("Models", {"fields": ("known_models", "embedding_models")}),
    )

    def get_readonly_fields(
        self, request: HttpRequest, obj: Provider | None = None
    ) -> tuple[str, ...]:
        # Credentials point at the slug; renaming it would orphan them.
        return ("slug",) if obj is not None else ()


@admin.register(ProviderCredential)
class ProviderCredentialAdmin(admin.ModelAdmin):
    formfield_overrides = URL_FIELDS
    list_display = (
        "name",
        "team",
        "provider",
        "masked_secret",
        "enabled",
        "status",
        "last_test_ok",
        "created_at",
    )
    list_filter = ("status", "enabled", "provider")
    search_fields = ("name", "team__name")
    exclude = ("secret_ciphertext", "secret_last4")
    readonly_fields = (
        "id",
        "team",
        "provider",
        "masked_secret",
        "region",
        "base_url",
        "extras",
        "status_reason",
        "created_by",
        "created_at",
        "updated_at",
        "last_tested_at",
        "last_test_ok",
        "last_test_message",
    )
    list_select_related = ("team", "provider")

    @admin.display(description="secret")
    def masked_secret(self, obj: ProviderCredential) -> str:
        return obj.masked_secret

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a secret must be encrypted with the team's key: teams add credentials
