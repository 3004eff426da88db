from django.urls import path

from accounts import views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("teams/new/", views.team_create, name="team_create"),
    path("teams/switch/", views.team_switch, name="team_switch"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("settings/tokens/", views.access_tokens, name="access_tokens"),
    path(
        "settings/tokens/<int:token_id>/revoke/",
        views.access_token_revoke,
        name="access_token_revoke",
    ),
    path("t/<uuid:team_id>/settings/", views.team_settings, name="team_settings"),
    path("t/<uuid:team_id>/members/", views.team_members, name="team_members"),
    path(
        "t/<uuid:team_id>/members/<int:membership_id>/role/", views.member_role, name="member_role"
    ),
    path(
        "t/<uuid:team_id>/members/<int:membership_id>/remove/",
        views.member_remove,
        name="member_remove",
    ),
    path(
        "t/<uuid:team_id>/invitations/<int:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("t/<uuid:team_id>/audit/", views.team_audit, name="team_audit"),
]
