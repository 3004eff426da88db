from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from config import client_address


class AccountAdapter(DefaultAccountAdapter):
    """Sign-up is open; operators can close it with BATON_OPEN_SIGNUP=false."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return bool(settings.BATON_OPEN_SIGNUP)

    def get_client_ip(self, request: HttpRequest) -> str:
        """The address allauth's per-IP rate limits count: Baton's one client address
        (BATON_TRUSTED_PROXIES), never a forwarding header an untrusted peer wrote."""
        address = client_address.from_request(request)
        if not address:
            raise PermissionDenied("Unable to determine client IP address")
        return address
