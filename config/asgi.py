"""ASGI entry point.

``/v1/`` (the data plane) goes straight to the relay's lean ASGI app, which
skips Django's middleware stack: every sync-only middleware would cost a
thread hop per request on the hot path. Everything else (pages, management
API, admin) is ordinary Django.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

django_application = get_asgi_application()

from config.routing import build_application  # noqa: E402  (needs Django set up first)

application = build_application(django_application)
