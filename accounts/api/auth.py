"""Personal access tokens for scripts calling the management API."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts import tokens
from accounts.models import PersonalAccessToken, User

PAT_PREFIX = "baton_pat_"
# Writing last_used_at on every call would turn each read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class PersonalTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, PersonalAccessToken] | None:
        header = authentication.get_authorization_header(request).decode(errors="replace")
        if not header.startswith(self.keyword + " "):
            return None
        presented = header[len(self.keyword) + 1 :].strip()
        lookup = tokens.split(presented, PAT_PREFIX)
        if lookup is None:
            raise exceptions.AuthenticationFailed("Invalid access token.")
        token = (
            PersonalAccessToken.objects.select_related("user")
            .filter(lookup=lookup, revoked_at=None)
            .first()
        )
        if token is None or not tokens.matches(presented, token.digest) or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid access token.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            PersonalAccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
