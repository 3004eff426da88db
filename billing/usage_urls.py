"""Usage and billing pages (``billing.usage_views``)."""

from django.urls import path

from billing import usage_views as views

urlpatterns = [
    path("t/<uuid:team_id>/usage/", views.usage, name="team_usage"),
    path("t/<uuid:team_id>/usage/requests/", views.request_log, name="team_requests"),
    path("t/<uuid:team_id>/usage/export.csv", views.usage_export, name="team_usage_export"),
    path("t/<uuid:team_id>/billing/", views.billing, name="team_billing"),
    path(
        "t/<uuid:team_id>/billing/<int:record_id>/",
        views.billing_record,
        name="billing_record",
    ),
    path(
        "t/<uuid:team_id>/billing/<int:record_id>/export.csv",
        views.billing_record_export,
        name="billing_record_export",
    ),
]
