from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.http import HttpRequest

from accounts.models import (
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    PersonalAccessToken,
    Team,
    User,
)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ("email",)
    list_display = ("email", "is_staff", "is_active", "date_joined")
    search_fields = ("email",)
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "is_personal", "created_at")
    search_fields = ("name",)
    inlines = (MembershipInline,)

    def has_delete_permission(self, request: HttpRequest, obj: Team | None = None) -> bool:
        # A team's credit and usage ledgers are append-only in the database, which refuses
        # the cascade (billing/migrations/0006_append_only_ledgers).
        return False


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = (
        "email",
        "team",
        "role",
        "created_at",
        "expires_at",
        "accepted_at",
        "revoked_at",
    )
    exclude = ("token_hash",)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "team", "actor_label", "action", "target_label", "ip_address")
    list_filter = ("action",)

    def has_change_permission(self, request, obj=None):
        return False  # the log is append-only


@admin.register(PersonalAccessToken)
class PersonalAccessTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "last4", "created_at", "last_used_at", "revoked_at")
    exclude = ("digest",)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "team",
        "masked",
        "created_by",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    list_filter = ("budget_period",)
    search_fields = ("name", "team__name", "last4")
    # The digest and lookup prefix stay out of the admin; "masked" shows the last four.
    exclude = ("digest", "lookup")
    readonly_fields = (
        "team",
        "masked",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    )
    list_select_related = ("team", "created_by")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # keys are issued by their team and shown once there
