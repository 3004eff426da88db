"""The team singletons of billing. Its viewsets are registered on
``config.api.team_scoped``."""

from django.urls import path

from billing.api import views

urlpatterns = [
    path("teams/<uuid:team_id>/limits/", views.TeamLimitsView.as_view(), name="team-limits"),
    path("teams/<uuid:team_id>/credits/", views.CreditsView.as_view(), name="team-credits"),
    path("teams/<uuid:team_id>/credits/redeem/", views.RedeemView.as_view(), name="credit-redeem"),
]
