"""Accounts' API paths that are not viewsets; its viewsets are registered in config/api.py."""

from django.urls import path

from accounts.api import views

urlpatterns = [
    path("teams/<uuid:team_id>/leave/", views.LeaveTeamView.as_view(), name="team-leave"),
    path("invitations/accept/", views.AcceptInvitationView.as_view(), name="invitation-accept"),
]
