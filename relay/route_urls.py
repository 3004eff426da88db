from django.urls import path

from relay import route_views

urlpatterns = [
    path("t/<uuid:team_id>/models/", route_views.route_list, name="route_list"),
    path("t/<uuid:team_id>/models/new/", route_views.route_create, name="route_create"),
    path("t/<uuid:team_id>/models/relocate/", route_views.route_relocate, name="route_relocate"),
    path("t/<uuid:team_id>/models/<int:route_id>/", route_views.route_edit, name="route_edit"),
    path(
        "t/<uuid:team_id>/models/<int:route_id>/delete/",
        route_views.route_delete,
        name="route_delete",
    ),
]
