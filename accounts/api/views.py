"""Management API for teams, members, invitations and the audit log."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import actions
from accounts.api.base import TeamScopedViewSet
from accounts.api.serializers import (
    AcceptInvitationSerializer,
    AuditEventSerializer,
    CreatedInvitationSerializer,
    InvitationSerializer,
    MemberSerializer,
    TeamSerializer,
)
from accounts.models import AuditEvent, Invitation, Membership, Role, Team
from accounts.tenancy import current_user, get_membership, require_role


class MembersOnly:
    """Answer 404 to non-members before anything else, whatever the method."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        if "team_id" in kwargs:
            get_membership(request, kwargs["team_id"])


class TeamViewSet(
    MembersOnly,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """The teams the caller belongs to. A team id the caller is not in is a 404."""

    serializer_class = TeamSerializer
    lookup_url_kwarg = "team_id"

    def get_queryset(self) -> QuerySet[Team]:
        if getattr(self, "swagger_fake_view", False):
            return Team.objects.none()
        return Team.objects.filter(memberships__user=current_user(self.request))

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if self.request.user.is_authenticated:
            context["roles"] = dict(
                Membership.objects.filter(user=current_user(self.request)).values_list(
                    "team_id", "role"
                )
            )
        return context

    def get_object(self) -> Team:
        membership = get_membership(self.request, self.kwargs["team_id"])
        if self.request.method not in ("GET", "HEAD", "OPTIONS"):
            require_role(membership, Role.ADMIN)
        return membership.team

    def perform_create(self, serializer: TeamSerializer) -> None:  # type: ignore[override]
        serializer.instance = actions.create_team(
            current_user(self.request),
            name=serializer.validated_data["name"],
            request=self.request,
        )
        # The roles were read before the team existed; its creator owns it.
        serializer.context["roles"][serializer.instance.pk] = Role.OWNER
        remember = serializer.validated_data.get("remember_reasoning")
        if remember is not None:
            owner = Membership.objects.select_related("team", "user").get(
                team=serializer.instance, user=current_user(self.request)
            )
            serializer.instance = actions.set_remember_reasoning(
                owner, remember, request=self.request
            )

    def perform_update(self, serializer: TeamSerializer) -> None:  # type: ignore[override]
        # PATCH sends any subset of the fields, the empty one included.
        membership = get_membership(self.request, self.kwargs["team_id"])
        name = serializer.validated_data.get("name")
        if name is not None:
            serializer.instance = actions.rename_team(membership, name, request=self.request)
        remember = serializer.validated_data.get("remember_reasoning")
        if remember is not None:
            serializer.instance = actions.set_remember_reasoning(
                membership, remember, request=self.request
            )


class MemberViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TeamScopedViewSet,
):
    """Members of a team. Owners and admins change roles and remove members;
    anyone may remove themselves (leave), except the last owner. Removing a member
    (or leaving) revokes the API keys they created in the team."""

    serializer_class = MemberSerializer
    team_queryset = Membership.objects.select_related("user")
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Leaving is allowed to every role; the action enforces the rules.
        if request.method == "DELETE":
            self.write_role = Role.VIEWER
        super().initial(request, *args, **kwargs)

    def perform_update(self, serializer: MemberSerializer) -> None:  # type: ignore[override]
        assert serializer.instance is not None
        role = serializer.validated_data.get("role")  # absent from an empty PATCH
        if role is not None:
            actions.change_role(self.membership, serializer.instance, role, request=self.request)

    def perform_destroy(self, instance: Membership) -> None:
        actions.remove_member(self.membership, instance, request=self.request)


class InvitationViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    TeamScopedViewSet,
):
    """Invitations to a team. Creating one emails a link and returns it once."""

    serializer_class = InvitationSerializer
    team_queryset = Invitation.objects.all()

    @extend_schema(responses={201: CreatedInvitationSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = InvitationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        issued = actions.invite(
            self.membership,
            email=serializer.validated_data["email"],
            role=serializer.validated_data["role"],
            request=request,
        )
        data = CreatedInvitationSerializer(issued.invitation).data
        data["url"] = issued.url
        response = Response(data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"  # the only copy of the link
        return response

    def perform_destroy(self, instance: Invitation) -> None:
        actions.revoke_invitation(self.membership, instance, request=self.request)


class AuditEventViewSet(mixins.ListModelMixin, TeamScopedViewSet):
    """The team's audit log, newest first. Owners and admins only."""

    serializer_class = AuditEventSerializer
    team_queryset = AuditEvent.objects.all()
    read_role = Role.ADMIN


class AcceptInvitationView(APIView):
    @extend_schema(request=AcceptInvitationSerializer, responses={201: MemberSerializer})
    def post(self, request: Request) -> Response:
        serializer = AcceptInvitationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = actions.accept_invitation(
            current_user(request),
            serializer.validated_data["token"],
            request=request,
        )
        return Response(MemberSerializer(membership).data, status=status.HTTP_201_CREATED)


class LeaveTeamView(MembersOnly, APIView):
    """Leave the team; the API keys you created in it are revoked."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request, team_id: str) -> Response:
        actions.leave_team(get_membership(request, team_id), request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)
