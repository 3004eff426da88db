"""Routes that are not team-scoped. The team-scoped ones (credentials,
api-keys) are registered on ``config.api.team_scoped``."""

from rest_framework.routers import SimpleRouter

from relay.api import views

router = SimpleRouter()
router.register("providers", views.ProviderViewSet, basename="provider")

urlpatterns = router.urls
