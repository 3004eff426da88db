from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from accounts.api import views
from accounts.api.docs import ApiDocsView
from billing.api import usage as usage_api
from billing.api import views as billing_views
from relay.api import routes as relay_routes
from relay.api import views as relay_views

teams = SimpleRouter()
teams.register("teams", views.TeamViewSet, basename="team")

team_scoped = SimpleRouter()
team_scoped.register("members", views.MemberViewSet, basename="member")
team_scoped.register("invitations", views.InvitationViewSet, basename="invitation")
team_scoped.register("audit-events", views.AuditEventViewSet, basename="audit-event")
team_scoped.register("credentials", relay_views.CredentialViewSet, basename="credential")
team_scoped.register("api-keys", relay_views.ApiKeyViewSet, basename="api-key")
team_scoped.register("routes", relay_routes.RouteViewSet, basename="route")
team_scoped.register("key-limits", billing_views.KeyLimitsViewSet, basename="key-limits")
team_scoped.register(
    "credential-limits", billing_views.CredentialLimitsViewSet, basename="credential-limits"
)
team_scoped.register("credit-entries", billing_views.CreditEntryViewSet, basename="credit-entry")
team_scoped.register("billing-records", usage_api.BillingRecordViewSet, basename="billing-record")

# Later apps append their team-scoped routes to `team_scoped` before this module
# is imported by config.urls (see relay/api/urls.py).
urlpatterns = [
    path("", include(teams.urls)),
    path("teams/<uuid:team_id>/", include(team_scoped.urls)),
    path("teams/<uuid:team_id>/leave/", views.LeaveTeamView.as_view(), name="team-leave"),
    path("invitations/accept/", views.AcceptInvitationView.as_view(), name="invitation-accept"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", ApiDocsView.as_view(url_name="api-schema"), name="api-docs"),
]
