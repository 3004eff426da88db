from django.urls import path

from console import apikey_views, views

urlpatterns = [
    path("t/<uuid:team_id>/", views.team_overview, name="team_overview"),
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
