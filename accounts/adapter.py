from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    """Sign-up is open; operators can close it with BATON_OPEN_SIGNUP=false."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return bool(settings.BATON_OPEN_SIGNUP)
