import logging
from typing import Any

from django.apps import AppConfig
from django.db import DatabaseError
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _

log = logging.getLogger("baton.billing")


def ensure_partitions(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    """After every ``migrate``: the ledger's partitions for today and the week ahead, so a
    fresh install (or one whose beat was stopped) has them before its first request."""
    from billing.partitions import ensure

    if using != "default":
        return
    try:
        ensure()
    except DatabaseError:
        # The DEFAULT partition takes every row meanwhile; beat tries again within the hour.
        log.exception("could not create the ledger's partitions ahead")


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Billing, limits and credits")

    def ready(self) -> None:
        from billing import conf, signals  # noqa: F401  (connects the sign-up grant)

        # A bad quota setting must stop the process at start, not at first use.
        conf.check()
        post_migrate.connect(ensure_partitions, sender=self, dispatch_uid="billing-partitions")
