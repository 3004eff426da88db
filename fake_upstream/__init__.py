"""A fake LLM provider server that speaks each upstream's wire format, quirks and faults included.

Baton's tests, its benchmark and the embedded demo provider all need an upstream that is fast,
deterministic and faithful to the real providers: each provider's shapes are in flavors.py, and
the provider documentation they follow is listed in docs/providers.md.
It is a standalone ASGI app with no Django import, so it can run in its own process:
``python -m fake_upstream --port 8001``. See ``app`` for routes and ``faults`` for the
``/_f/{directives}/`` URL prefix.
"""

from fake_upstream.app import FakeUpstream, create_app

__all__ = ["FakeUpstream", "create_app"]
