from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The team's workspace pages that draw on every control-plane app: the overview and
    the API keys (a key, its limits and the first-request snippet)."""

    name = "console"
    verbose_name = "Console"
