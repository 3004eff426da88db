"""The management API, assembled: every app's viewsets and views under ``/api/``.

Each app owns its viewsets and views (``accounts.api``, ``relay.api``, ``billing.api``)
and knows nothing of the others'; this module is the one place that puts them on the
routers, so apps below ``config`` never import each other's API. Every team-scoped
viewset extends ``accounts.api.base.TeamScopedViewSet`` and goes on ``team_scoped``
(``/api/teams/<team_id>/...``); tests/test_tenancy.py walks what is registered here.
"""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from accounts.api import views as accounts_views
from accounts.api.docs import ApiDocsView
from billing.api import usage as usage_api
from billing.api import views as billing_views
from console import api as console_api
from relay.api import routes as relay_routes
from relay.api import views as relay_views

teams = SimpleRouter()
teams.register("teams", accounts_views.TeamViewSet, basename="team")

team_scoped = SimpleRouter()
team_scoped.register("members", accounts_views.MemberViewSet, basename="member")
team_scoped.register("invitations", accounts_views.InvitationViewSet, basename="invitation")
team_scoped.register("audit-events", accounts_views.AuditEventViewSet, basename="audit-event")
team_scoped.register("credentials", relay_views.CredentialViewSet, basename="credential")
team_scoped.register("api-keys", console_api.ApiKeyViewSet, basename="api-key")
team_scoped.register("routes", relay_routes.RouteViewSet, basename="route")
team_scoped.register("key-limits", billing_views.KeyLimitsViewSet, basename="key-limits")
team_scoped.register(
    "credential-limits", billing_views.CredentialLimitsViewSet, basename="credential-limits"
)
team_scoped.register("credit-entries", billing_views.CreditEntryViewSet, basename="credit-entry")
team_scoped.register("billing-records", usage_api.BillingRecordViewSet, basename="billing-record")
team_scoped.register("requests", usage_api.RequestViewSet, basename="request")

urlpatterns = [
    path("", include(teams.urls)),
    path("teams/<uuid:team_id>/", include(team_scoped.urls)),
    path("", include("accounts.api.urls")),
    path("", include("relay.api.urls")),
    path("", include("billing.api.urls")),
    path("", include("billing.api.usage_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", ApiDocsView.as_view(url_name="api-schema"), name="api-docs"),
]
