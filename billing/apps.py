from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Billing, limits and credits")

    def ready(self) -> None:
        from billing import conf, signals  # noqa: F401  (connects the sign-up grant)

        # A bad quota setting must stop the process at start, not at first use.
        conf.check()
