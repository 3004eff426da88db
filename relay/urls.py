from django.urls import path

from relay import views

urlpatterns = [
    path("t/<uuid:team_id>/providers/", views.credential_list, name="credential_list"),
    path("t/<uuid:team_id>/providers/new/", views.credential_create, name="credential_create"),
    path(
        "t/<uuid:team_id>/providers/<uuid:credential_id>/",
        views.credential_detail,
        name="credential_detail",
    ),
    path(
        "t/<uuid:team_id>/providers/<uuid:credential_id>/secret/",
        views.credential_secret,
        name="credential_secret",
    ),
    path(
        "t/<uuid:team_id>/providers/<uuid:credential_id>/test/",
        views.credential_test,
        name="credential_test",
    ),
    path(
        "t/<uuid:team_id>/providers/<uuid:credential_id>/delete/",
        views.credential_delete,
        name="credential_delete",
    ),
]
