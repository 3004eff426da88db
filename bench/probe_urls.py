"""URLs for bench/probe_asgi.py: one async view returning the same bytes as the raw app."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

ANSWER = b'{"id":"chatcmpl-probe","object":"chat.completion","choices":[]}'


async def probe(request: HttpRequest) -> HttpResponse:
    return HttpResponse(ANSWER, content_type="application/json")


urlpatterns = [path("django", probe)]
