"""The API reference page: Swagger UI inside Baton's own layout.

drf-spectacular's split view serves Swagger UI's start-up script from a URL of its own
(``/api/docs/?script``) instead of inline, so the page keeps the site's whole
Content-Security-Policy: Swagger UI needs no exception (tests/browser/test_csp.py runs a
request from it). The template puts it in the site's layout, with the header and the
navigation of every other page.
"""

from __future__ import annotations

from drf_spectacular.views import SpectacularSwaggerSplitView


class ApiDocsView(SpectacularSwaggerSplitView):
    template_name = "api/docs.html"
