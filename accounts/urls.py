from django.urls import path

from accounts import apikey_views, views

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
    path("t/<uuid:team_id>/", views.team_overview, name="team_overview"),
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
    path("t/<uuid:team_id>/api-keys/", apikey_views.api_key_list, name="api_key_list"),
    path("t/<uuid:team_id>/api-keys/new/", apikey_views.api_key_create, name="api_key_create"),
    path(
        "t/<uuid:team_id>/api-keys/<uuid:key_id>/", apikey_views.api_key_edit, name="api_key_edit"
    ),
    path(
        "t/<uuid:team_id>/api-keys/<uuid:key_id>/revoke/",
        apikey_views.api_key_revoke,
        name="api_key_revoke",
    ),
]
