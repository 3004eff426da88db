"""Management API for limits and credits.

Singletons of a team (its limits, its balance, redemption) are plain views
under ``/api/teams/<team_id>/``; per-key and per-credential limits and the
ledger are viewsets on ``config.api.team_scoped``. Both answer 404 to
non-members before anything else, and check the role per method.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.actions import TeamRuleError
from accounts.api.base import TeamScopedViewSet
from accounts.models import ApiKey, Membership, Role, Team
from accounts.tenancy import get_membership, require_role
from billing import credits
from billing import limits as actions
from billing.api.serializers import (
    CredentialLimitsSerializer,
    CreditEntrySerializer,
    CreditsSerializer,
    KeyLimitsSerializer,
    RedeemSerializer,
    TeamLimitsSerializer,
)
from billing.models import CreditEntry, KeyLimits
from billing.quota.live import ScopeUse, current_use
from billing.quota.snapshots import Limits, key_budget_caps
from relay.models import ProviderCredential


def use_data(use: ScopeUse | None) -> dict[str, Any] | None:
    if use is None:
        return None
    return {
        "in_flight": use.in_flight,
        "held": use.held,
        "requests_remaining": use.rpm_remaining,
        "tokens_remaining": use.tpm_remaining,
        "spent_today": use.day,
        "spent_this_month": use.month,
        "spent_total": use.lifetime,
    }


class TeamScopedAPIView(APIView):
    read_role: str = Role.VIEWER
    write_role: str = Role.ADMIN
    membership: Membership
    team: Team

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.membership = get_membership(request, kwargs["team_id"])
        self.team = self.membership.team
        safe = request.method in ("GET", "HEAD", "OPTIONS")
        require_role(self.membership, self.read_role if safe else self.write_role)


class TeamLimitsView(TeamScopedAPIView):
    """The team's own limits and the live use against them. Owners and admins change them."""

    serializer_class = TeamLimitsSerializer

    def data(self) -> dict[str, Any]:
        row = actions.team_limits(self.team.pk)
        live = current_use(self.team.pk, Limits(rpm=row.rpm_limit, tpm=row.tpm_limit), [])
        data = {name: getattr(row, name) for name in actions.TEAM_FIELDS}
        data |= {
            "currency": row.currency,
            "billing_mode": row.billing_mode,
            "on_redis_failure": row.on_redis_failure,
            "use": use_data(live[0] if live else None),
        }
        return data

    @extend_schema(responses=TeamLimitsSerializer)
    def get(self, request: Request, team_id: str) -> Response:
        return Response(TeamLimitsSerializer(self.data()).data)

    @extend_schema(request=TeamLimitsSerializer, responses=TeamLimitsSerializer)
    def patch(self, request: Request, team_id: str) -> Response:
        serializer = TeamLimitsSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        actions.update_team_limits(self.membership, request=request, **serializer.validated_data)
        return Response(TeamLimitsSerializer(self.data()).data)


class CreditsView(TeamScopedAPIView):
    """The team's credit balance and how it pays."""

    @extend_schema(responses=CreditsSerializer)
    def get(self, request: Request, team_id: str) -> Response:
        balance = credits.balance(self.team)
        return Response(
            CreditsSerializer(
                {
                    "balance": balance.amount,
                    "currency": balance.currency,
                    "billing_mode": actions.team_limits(self.team.pk).billing_mode,
                    "granted": balance.granted,
                    "spent": balance.spent,
                    "live": balance.live,
                    "low": balance.low,
                }
            ).data
        )


class RedeemView(TeamScopedAPIView):
    """Redeem a prepaid credit code for this team (owners and admins)."""

    @extend_schema(request=RedeemSerializer, responses={201: CreditEntrySerializer})
    def post(self, request: Request, team_id: str) -> Response:
        serializer = RedeemSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            entry = credits.redeem(
                self.membership, serializer.validated_data["code"], request=request
            )
        except credits.CreditError as exc:
            raise TeamRuleError(str(exc)) from exc
        return Response(CreditEntrySerializer(entry).data, status=status.HTTP_201_CREATED)


class KeyLimitsViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    """Every limit of each active API key, with live use. Owners and admins change them
    (``rpm_limit`` and ``tpm_limit`` are the key's own fields, the same as on ``api-keys``)."""

    team_queryset = ApiKey.objects.filter(revoked_at=None).order_by("name")
    serializer_class = KeyLimitsSerializer
    pagination_class = None
    http_method_names = ["get", "patch", "head", "options"]

    def payload(self, keys: list[ApiKey]) -> list[dict[str, Any]]:
        extra = {k.api_key_id: k for k in KeyLimits.objects.filter(api_key__in=keys)}
        row = actions.team_limits(self.team.pk)
        live = current_use(
            self.team.pk,
            Limits(rpm=row.rpm_limit, tpm=row.tpm_limit),
            [(key.pk, Limits(rpm=key.rpm_limit, tpm=key.tpm_limit)) for key in keys],
        )
        out = []
        for key in keys:
            limits = extra.get(key.pk)
            caps = key_budget_caps(key, limits)
            out.append(
                {
                    "id": key.pk,
                    "name": key.name,
                    "masked": key.masked,
                    "rpm_limit": key.rpm_limit,
                    "tpm_limit": key.tpm_limit,
                    "max_concurrent": limits.max_concurrent if limits else None,
                    "daily_budget": limits.daily_budget if limits else None,
                    "monthly_budget": limits.monthly_budget if limits else None,
                    "lifetime_budget": limits.lifetime_budget if limits else None,
                    "key_budget": {
                        "limit": None if key.budget_limit is None else str(key.budget_limit),
                        "period": key.budget_period,
                    },
                    "effective_budgets": {
                        p: None if v is None else str(v) for p, v in caps.items()
                    },
                    "use": use_data(live[1].get(str(key.pk)) if live else None),
                }
            )
        return out

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        keys = list(self.get_queryset())
        return Response(KeyLimitsSerializer(self.payload(keys), many=True).data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(KeyLimitsSerializer(self.payload([self.get_object()])[0]).data)

    @extend_schema(request=KeyLimitsSerializer, responses=KeyLimitsSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        api_key = self.get_object()
        serializer = KeyLimitsSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        actions.update_key_limits(
            self.membership, api_key, request=request, **serializer.validated_data
        )
        api_key.refresh_from_db()
        return Response(KeyLimitsSerializer(self.payload([api_key])[0]).data)


class CredentialLimitsViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    """Optional rate limits of each provider credential. Owners and admins change them."""

    team_queryset = ProviderCredential.objects.select_related("provider").order_by("name")
    serializer_class = CredentialLimitsSerializer
    pagination_class = None
    http_method_names = ["get", "patch", "head", "options"]

    @staticmethod
    def payload(credential: ProviderCredential) -> dict[str, Any]:
        limits = actions.credential_limits(credential)
        return {
            "id": credential.pk,
            "name": credential.name,
            "provider": credential.provider_id,
            "rpm_limit": limits.rpm_limit,
            "tpm_limit": limits.tpm_limit,
        }

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(
            CredentialLimitsSerializer(
                [self.payload(c) for c in self.get_queryset()], many=True
            ).data
        )

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(CredentialLimitsSerializer(self.payload(self.get_object())).data)

    @extend_schema(request=CredentialLimitsSerializer, responses=CredentialLimitsSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        credential = self.get_object()
        serializer = CredentialLimitsSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        actions.update_credential_limits(
            self.membership, credential, request=request, **serializer.validated_data
        )
        return Response(CredentialLimitsSerializer(self.payload(credential)).data)


class CreditEntryViewSet(mixins.ListModelMixin, TeamScopedViewSet):
    """The team's credit ledger, newest first. Append-only."""

    team_queryset = CreditEntry.objects.select_related("created_by")
    serializer_class = CreditEntrySerializer
