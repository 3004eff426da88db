"""The usage endpoint (``billing.api.usage``); billing records are a viewset
on ``config.api.team_scoped``."""

from django.urls import path

from billing.api import usage

urlpatterns = [
    path("teams/<uuid:team_id>/usage/", usage.UsageView.as_view(), name="team-usage"),
]
