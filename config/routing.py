"""Top-level ASGI routing between the data plane and the control plane."""

from __future__ import annotations

from typing import Any

ASGIApp = Any


def build_application(django_app: ASGIApp) -> ASGIApp:
    from gateway.asgi import RelayApp
    from gateway.observability import Ops

    relay_app = RelayApp()
    ops = Ops(relay_app)  # /metrics, /healthz, /readyz

    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            await relay_app(scope, receive, send)
        elif scope["type"] == "http" and scope["path"] in ops.paths:
            await ops(scope, receive, send)
        elif scope["type"] == "http" and scope["method"] == "HEAD" and scope["path"] == "/":
            # Claude Code's warm-up before its first request: answered here, without Django.
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        elif scope["type"] == "lifespan":
            await relay_app.lifespan(scope, receive, send)
        else:
            await django_app(scope, receive, send)

    application.relay = relay_app  # type: ignore[attr-defined]  # tests wait for its background work
    return application
