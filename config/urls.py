from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path

# Admin sign-in goes through the site's (allauth's) login and its rate limits: the admin's
# own login form has none. Signed-in staff pass through; anyone else signed in gets 403.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", include("config.api")),
    path("", include("accounts.urls")),
    path("", include("console.urls")),
    path("", include("relay.urls")),
    path("", include("relay.route_urls")),
    path("", include("billing.urls")),
    path("", include("billing.usage_urls")),
]

# JSON errors under /api/ (the management API's shape), Django's pages elsewhere.
handler400 = "accounts.api.errors.bad_request"
handler403 = "accounts.api.errors.permission_denied"
handler404 = "accounts.api.errors.page_not_found"
handler500 = "accounts.api.errors.server_error"
