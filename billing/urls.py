from django.urls import path

from billing import views

urlpatterns = [
    path("t/<uuid:team_id>/limits/", views.team_limits, name="team_limits"),
    path("t/<uuid:team_id>/limits/keys/<uuid:key_id>/", views.key_limits, name="key_limits"),
    path(
        "t/<uuid:team_id>/limits/credentials/<uuid:credential_id>/",
        views.credential_limits,
        name="credential_limits",
    ),
    path("t/<uuid:team_id>/credits/", views.team_credits, name="team_credits"),
]
