from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class RelayConfig(AppConfig):
    name = "relay"
    verbose_name = "Relay"

    def ready(self) -> None:
        from relay import envelope, signals  # noqa: F401  (connects cache invalidation)

        # A bad master key list must stop the process at start, not at first use.
        try:
            envelope.MasterKeyring.parse(settings.BATON_MASTER_KEYS)
        except ValueError as exc:
            raise ImproperlyConfigured(f"BATON_MASTER_KEYS is invalid: {exc}") from exc
