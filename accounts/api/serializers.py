from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import AuditEvent, Invitation, Membership, Role, Team
from accounts.validators import no_control_characters

INVITATION_STATUSES = ("pending", "accepted", "revoked", "expired")


class TeamSerializer(serializers.ModelSerializer[Team]):
    role = serializers.SerializerMethodField()
    name = serializers.CharField(
        max_length=80, trim_whitespace=True, validators=[no_control_characters]
    )

    remember_reasoning = serializers.BooleanField(
        required=False,
        help_text=(
            "Keep the reasoning of each tool-calling turn the relay relays (for "
            "BATON_TURN_MEMORY_SECONDS, an hour by default; encrypted with the team's key, "
            "never logged) and give it back to providers that require it when a client left "
            "it out. false: no content is kept at all. Owners and admins change it; audited."
        ),
    )

    class Meta:
        model = Team
        fields = ("id", "name", "is_personal", "created_at", "role", "remember_reasoning")
        read_only_fields = ("id", "is_personal", "created_at", "role")

    @extend_schema_field(serializers.ChoiceField(choices=Role.choices))
    def get_role(self, team: Team) -> str:
        """The caller's role in the team (every team listed is one of theirs)."""
        roles: dict[Any, str] = self.context["roles"]
        return roles[team.pk]


class MemberSerializer(serializers.ModelSerializer[Membership]):
    email = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = Membership
        fields = ("id", "email", "role", "created_at")
        read_only_fields = ("id", "email", "created_at")


class InvitationSerializer(serializers.ModelSerializer[Invitation]):
    status = serializers.SerializerMethodField()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)

    class Meta:
        model = Invitation
        fields: tuple[str, ...] = ("id", "email", "role", "status", "created_at", "expires_at")
        read_only_fields = ("id", "status", "created_at", "expires_at")

    @extend_schema_field(serializers.ChoiceField(choices=INVITATION_STATUSES))
    def get_status(self, invitation: Invitation) -> str:
        if invitation.accepted_at:
            return "accepted"
        if invitation.revoked_at:
            return "revoked"
        return "expired" if invitation.is_expired else "pending"


class CreatedInvitationSerializer(InvitationSerializer):
    url = serializers.CharField(read_only=True, help_text="The invitation link; shown only now.")

    class Meta(InvitationSerializer.Meta):
        fields = (*InvitationSerializer.Meta.fields, "url")


class AcceptInvitationSerializer(serializers.Serializer[Any]):
    token = serializers.CharField(max_length=200)


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    class Meta:
        model = AuditEvent
        fields = (
            "id",
            "created_at",
            "actor_label",
            "action",
            "target_type",
            "target_id",
            "target_label",
            "ip_address",
            "details",
        )
        read_only_fields = fields
