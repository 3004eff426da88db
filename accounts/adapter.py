from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from accounts import mail
from config import client_address


class AccountAdapter(DefaultAccountAdapter):
    """Sign-up is open; operators can close it with BATON_OPEN_SIGNUP=false."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return bool(settings.BATON_OPEN_SIGNUP)

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        """allauth's mails (address verification, password reset): a mail server that fails
        leaves the user on the page that says a mail was sent, from which it can be sent
        again, instead of a 500 (accounts/mail.py)."""
        mail.deliver(
            lambda: super(AccountAdapter, self).send_mail(template_prefix, email, context),
            f"the {template_prefix.rsplit('/', 1)[-1]} email",
        )

    def get_client_ip(self, request: HttpRequest) -> str:
        """The address allauth's per-IP rate limits count: Baton's one client address
        (BATON_TRUSTED_PROXIES), never a forwarding header an untrusted peer wrote."""
        address = client_address.from_request(request)
        if not address:
            raise PermissionDenied("Unable to determine client IP address")
        return address
