from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and teams"

    def ready(self) -> None:
        from accounts import signals  # noqa: F401  (connects the sign-up handler)
        from accounts.api import schema  # noqa: F401  (registers the token auth scheme)
