"""What drf-spectacular needs to know about Baton's own API classes.

Imported by ``AccountsConfig.ready`` so the extensions are registered before
any schema is generated.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object


class PersonalTokenScheme(OpenApiAuthenticationExtension):
    """Personal access tokens as HTTP bearer auth, so the docs page's Authorize
    button takes one (the schema listed only the session cookie before)."""

    target_class = "accounts.api.auth.PersonalTokenAuthentication"
    name = "personalAccessToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        scheme: dict[str, Any] = build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix=self.target.keyword
        )
        scheme["description"] = (
            "A personal access token (baton_pat_...), created under Access tokens, "
            "sent as `Authorization: Bearer <token>`."
        )
        return scheme
