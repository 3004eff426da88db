"""Django view vs raw ASGI, for bench/choices.py: the same JSON answer both ways.

``/raw`` is a bare ASGI callable (what /v1 is); ``/django`` is an async Django view behind
Baton's full middleware stack (what /v1 would cost as an ordinary Django view).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django
from django.conf import settings

django.setup()
settings.ROOT_URLCONF = "probe_urls"  # bench/probe_urls.py: /django plus nothing else

from django.core.asgi import get_asgi_application  # noqa: E402

ANSWER = b'{"id":"chatcmpl-probe","object":"chat.completion","choices":[]}'
django_app = get_asgi_application()


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"] == "/raw":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": ANSWER})
    else:
        await django_app(scope, receive, send)
