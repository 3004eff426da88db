"""Forms for provider credentials, and the input rules they share with the API.

The ``clean_*`` functions raise Django ``ValidationError`` with messages that
are safe to show: none of them ever quotes a secret. The API serializers in
``relay/api`` call the same functions, so a page and an API call refuse the
same input with the same words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Team
from accounts.validators import no_control_characters
from relay.dialects import DECLARABLE
from relay.models import Family, Provider, ProviderCredential, demo_base_url
from relay.netguard import AddressPolicy, UnsafeUpstreamURL, validate_base_url
from relay.secrets import MAX_SECRET_LENGTH
from wire.providers.azure import DEFAULT_API_VERSION

MAX_DEPLOYMENTS = 200
MAX_NAME_LENGTH = 80
# Dated Azure API versions ("2024-10-21", "2025-04-01-preview") or the v1 scheme.
_API_VERSION_RE = re.compile(r"v1|\d{4}-\d{2}-\d{2}(-preview)?")
# Values that end up in HTTP headers (OpenAI organization and project ids).
_HEADER_VALUE_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_DEPLOYMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MODEL_RE = re.compile(r"[^\s=]{1,128}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

REGION_LABELS = {
    "default": gettext_lazy("Default"),
    "cn": gettext_lazy("Mainland China"),
    "intl": gettext_lazy("International"),
    "us": gettext_lazy("United States"),
}

# Which extras each kind of provider accepts; everything else is refused.
AZURE_EXTRAS = ("api_version", "deployments")
OPENAI_EXTRAS = ("organization", "project")


def address_policy() -> AddressPolicy:
    """What the operator allows team-supplied upstream URLs to point at."""
    return AddressPolicy(
        allow_private=settings.BATON_ALLOW_PRIVATE_UPSTREAMS,
        allow_loopback=settings.BATON_ALLOW_LOOPBACK_UPSTREAMS,
    )


def provider_choices() -> QuerySet[Provider]:
    """Providers a team may pick: enabled ones. The demo provider appears only
    where this installation runs the demo upstream (BATON_FAKE_UPSTREAM_URL)."""
    providers = Provider.objects.filter(enabled=True)
    if not demo_base_url():
        providers = providers.exclude(is_demo=True)
    return providers


def region_label(code: str) -> str:
    return str(REGION_LABELS.get(code, code))


def allowed_extras(provider: Provider) -> tuple[str, ...]:
    if provider.family == Family.AZURE:
        return AZURE_EXTRAS
    if provider.slug == "openai":
        return OPENAI_EXTRAS
    return ()


# --- Shared rules (pages and API) ---------------------------------------------


def clean_name(team: Team, name: str, *, exclude: ProviderCredential | None = None) -> str:
    name = name.strip()
    if not name:
        raise ValidationError(_("Give the credential a name."), code="required")
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError(_("Use at most 80 characters."), code="max_length")
    no_control_characters(name)
    taken = ProviderCredential.objects.filter(team=team, name__iexact=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    if taken.exists():
        raise ValidationError(
            _("This team already has a provider key named “%(name)s”.") % {"name": name},
            code="unique",
        )
    return name


def clean_secret(provider: Provider, secret: str) -> str:
    """The secret as it will be stored: surrounding whitespace removed."""
    secret = (secret or "").strip()
    if not secret:
        if provider.key_optional:
            return ""
        raise ValidationError(
            _("Paste the API key from %(provider)s.") % {"provider": provider.name}, code="required"
        )
    if len(secret) > MAX_SECRET_LENGTH:
        raise ValidationError(
            _("The key is too long: at most %(max)d characters.") % {"max": MAX_SECRET_LENGTH},
            code="max_length",
        )
    if _CONTROL_RE.search(secret):
        raise ValidationError(
            _("The key contains line breaks or control characters. Paste it as a single line."),
            code="invalid",
        )
    return secret


def clean_base_url(url: str) -> str:
    """A normalised base URL that passes the SSRF guard, or a field error."""
    try:
        return validate_base_url(url, address_policy())
    except UnsafeUpstreamURL as exc:
        raise ValidationError(
            _("This base URL cannot be used: %(reason)s.") % {"reason": exc}, code="invalid"
        ) from None


def clean_location(provider: Provider, region: str, base_url: str) -> tuple[str, str]:
    """(region, base_url) for a provider; base_url must already be clean.

    A custom base URL wins over the region. Providers without catalog
    addresses (Azure, vLLM, custom) need one.
    """
    region = (region or "").strip()
    if base_url:
        return "", base_url
    if provider.requires_base_url or not provider.regions:
        raise ValidationError(
            {"base_url": _("%(provider)s needs a base URL.") % {"provider": provider.name}}
        )
    if not region:
        region = provider.default_region if provider.default_region in provider.regions else ""
        if not region and len(provider.regions) == 1:
            region = next(iter(provider.regions))
    if region not in provider.regions:
        choices = ", ".join(sorted(provider.regions))
        raise ValidationError(
            {
                "region": _("Choose one of the regions of %(provider)s: %(choices)s.")
                % {"provider": provider.name, "choices": choices}
            }
        )
    return region, ""


def clean_dialect_urls(base_url: str, urls: Mapping[str, Any]) -> dict[str, str]:
    """The native dialect URLs a custom base URL declares, as ``extras["dialects"]`` keeps
    them: ``{"messages": url, "responses": url}``, empty values left out. Each URL passes the
    same SSRF guard as a base URL. Only a custom base URL declares dialects: without one the
    catalog's addresses for the region apply.

    Errors are keyed by the dialect's name.
    """
    errors: dict[str, str] = {}
    for key in sorted(set(urls) - set(DECLARABLE)):
        errors[str(key)[:40]] = _("Baton knows no such dialect; use %(choices)s.") % {
            "choices": ", ".join(DECLARABLE)
        }
    cleaned: dict[str, str] = {}
    for dialect in DECLARABLE:
        raw = urls.get(dialect)
        if raw is None:
            continue
        if not isinstance(raw, str):
            errors[dialect] = _("Send a URL as a string.")
            continue
        url = raw.strip()
        if not url:
            continue
        if not base_url:
            errors[dialect] = _(
                "Set a custom base URL first: without one, the provider's own addresses for "
                "the region apply."
            )
            continue
        try:
            cleaned[dialect] = clean_base_url(url)
        except ValidationError as exc:
            errors[dialect] = exc.messages[0]
    if errors:
        raise ValidationError(errors)
    return cleaned


def with_dialects(extras: Mapping[str, Any], dialects: Mapping[str, str]) -> dict[str, Any]:
    """``extras`` with ``dialects`` as its declared dialect URLs (none: no ``dialects`` key)."""
    result = {key: value for key, value in extras.items() if key != "dialects"}
    if dialects:
        result["dialects"] = dict(dialects)
    return result


def parse_deployments(text: str) -> dict[str, str]:
    """``model=deployment`` lines (blank lines and ``#`` comments ignored)."""
    result: dict[str, str] = {}
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        model, sep, deployment = line.partition("=")
        if not sep:
            raise ValidationError(
                _("Line %(number)d: write model=deployment, e.g. gpt-4o=my-gpt-4o.")
                % {"number": number},
                code="invalid",
            )
        result[model.strip()] = deployment.strip()
    return result


def format_deployments(deployments: Mapping[str, Any]) -> str:
    return "\n".join(f"{model}={deployment}" for model, deployment in deployments.items())


def clean_extras(provider: Provider, extras: Mapping[str, Any]) -> dict[str, Any]:
    """Provider extras as stored: only the keys the provider understands, checked.

    Errors are keyed by the extra's name (``api_version``, ``deployments``...).
    """
    allowed = allowed_extras(provider)
    unknown = sorted(set(extras) - set(allowed))
    if unknown:
        raise ValidationError(
            {
                key: _("%(provider)s does not take this setting.") % {"provider": provider.name}
                for key in unknown
            }
        )
    cleaned: dict[str, Any] = {}
    if provider.family == Family.AZURE:
        api_version = str(extras.get("api_version") or DEFAULT_API_VERSION).strip()
        if not _API_VERSION_RE.fullmatch(api_version):
            raise ValidationError(
                {
                    "api_version": _(
                        "Use a dated version such as 2024-10-21 (optionally with -preview), or v1."
                    )
                }
            )
        cleaned["api_version"] = api_version
        deployments = _clean_deployments(extras.get("deployments") or {})
        if deployments:
            cleaned["deployments"] = deployments
    for key in OPENAI_EXTRAS:
        value = str(extras.get(key) or "").strip() if key in allowed else ""
        if not value:
            continue
        if not _HEADER_VALUE_RE.fullmatch(value):
            raise ValidationError(
                {key: _("Use only letters, digits, '_', '-', '.' and ':' (at most 128).")}
            )
        cleaned[key] = value
    return cleaned


def _clean_deployments(deployments: Any) -> dict[str, str]:
    def refuse(message: str) -> ValidationError:
        return ValidationError({"deployments": message})

    if not isinstance(deployments, Mapping):
        raise refuse(_("Map model names to deployment names."))
    if len(deployments) > MAX_DEPLOYMENTS:
        raise refuse(_("At most %(max)d deployments.") % {"max": MAX_DEPLOYMENTS})
    for model, deployment in deployments.items():
        if not isinstance(model, str) or not _MODEL_RE.fullmatch(model):
            raise refuse(_("“%(model)s” is not a valid model name.") % {"model": str(model)[:130]})
        if not isinstance(deployment, str) or not _DEPLOYMENT_RE.fullmatch(deployment):
            raise refuse(
                _(
                    "“%(deployment)s” is not a valid deployment name: use letters, digits, "
                    "'.', '_' and '-'."
                )
                % {"deployment": str(deployment)[:70]}
            )
    return dict(deployments)


# --- Forms --------------------------------------------------------------------


class ProviderField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Provider) -> str:
        return obj.name


class _ExtrasMixin(forms.Form):
    """The provider-specific settings, one form field each."""

    api_version = forms.CharField(
        label=gettext_lazy("Azure API version"),
        max_length=32,
        required=False,
        initial=DEFAULT_API_VERSION,
        help_text=gettext_lazy(
            "Azure only. A dated version such as 2024-10-21, or v1 for the v1 API."
        ),
    )
    deployments = forms.CharField(
        label=gettext_lazy("Azure deployments"),
        required=False,
        max_length=20_000,
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": "gpt-4o=my-gpt-4o", "spellcheck": "false"}
        ),
        help_text=gettext_lazy(
            "Azure only. One model=deployment per line. Models without a line use "
            "their name without dots."
        ),
    )
    organization = forms.CharField(
        label=gettext_lazy("OpenAI organization"),
        max_length=128,
        required=False,
        help_text=gettext_lazy("OpenAI only, optional: org-…"),
    )
    project = forms.CharField(
        label=gettext_lazy("OpenAI project"),
        max_length=128,
        required=False,
        help_text=gettext_lazy("OpenAI only, optional: proj_…"),
    )

    def clean_deployments(self) -> dict[str, str]:
        return parse_deployments(self.cleaned_data.get("deployments") or "")

    def extras_for(self, provider: Provider) -> dict[str, Any]:
        """Cleaned extras; problems become errors on their fields."""
        raw = {key: self.cleaned_data.get(key) for key in allowed_extras(provider)}
        try:
            return clean_extras(provider, raw)
        except ValidationError as exc:
            self.add_error(None, exc)
            return {}


def _dialect_field(label: Any, help_text: Any) -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=2048,
        required=False,
        widget=forms.URLInput(attrs={"placeholder": "https://…", "spellcheck": "false"}),
        help_text=help_text,
    )


# The form field of each declarable dialect.
DIALECT_FIELDS = {dialect: f"{dialect}_base_url" for dialect in DECLARABLE}


class _DialectsMixin(forms.Form):
    """The native dialects a custom base URL declares, one URL field each."""

    messages_base_url = _dialect_field(
        gettext_lazy("Anthropic Messages base URL"),
        gettext_lazy(
            "With a custom base URL only, optional: where this server answers Anthropic "
            "Messages (Baton posts to this URL + /messages). Claude Code's requests then go "
            "to it as they are; without it they are translated to Chat Completions."
        ),
    )
    responses_base_url = _dialect_field(
        gettext_lazy("OpenAI Responses base URL"),
        gettext_lazy(
            "With a custom base URL only, optional: where this server answers the OpenAI "
            "Responses API (Baton posts to this URL + /responses). Codex's requests then go "
            "to it as they are; without it they are translated to Chat Completions."
        ),
    )

    def dialects_for(self, base_url: str) -> dict[str, str]:
        """Cleaned dialect URLs; problems become errors on their fields."""
        raw = {d: self.cleaned_data.get(field) or "" for d, field in DIALECT_FIELDS.items()}
        try:
            return clean_dialect_urls(base_url, raw)
        except ValidationError as exc:
            for dialect, errors in exc.error_dict.items():
                self.add_error(DIALECT_FIELDS[dialect], errors)
            return {}


class CredentialForm(_ExtrasMixin, _DialectsMixin):
    """Create a credential: provider, where it lives, the secret, extras."""

    name = forms.CharField(label=gettext_lazy("Name"), max_length=80, strip=True)
    provider = ProviderField(
        label=gettext_lazy("Provider"),
        queryset=Provider.objects.none(),
        empty_label=gettext_lazy("Choose a provider…"),
        error_messages={"invalid_choice": gettext_lazy("Choose a provider from the list.")},
    )
    region = forms.ChoiceField(label=gettext_lazy("Region"), required=False)
    base_url = forms.CharField(
        label=gettext_lazy("Custom base URL"),
        max_length=2048,
        required=False,
        widget=forms.URLInput(attrs={"placeholder": "https://…", "spellcheck": "false"}),
        help_text=gettext_lazy(
            "Leave empty to use the provider's address for the region. Required for "
            "Azure (your resource endpoint), vLLM and custom servers."
        ),
    )
    secret = forms.CharField(
        label=gettext_lazy("API key"),
        required=True,
        error_messages={"required": gettext_lazy("Paste the API key from the provider.")},
        strip=False,
        max_length=MAX_SECRET_LENGTH * 2,  # the rule below gives the clear message
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}
        ),
        help_text=gettext_lazy(
            "Encrypted with your team's own key. It is never shown again, only its "
            "last four characters."
        ),
    )
    enabled = forms.BooleanField(label=gettext_lazy("Enabled"), required=False, initial=True)

    field_order = (
        "name",
        "provider",
        "region",
        "base_url",
        *DIALECT_FIELDS.values(),
        "secret",
    )

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.team = team
        providers = list(provider_choices())
        self.providers = providers
        cast(ProviderField, self.fields["provider"]).queryset = provider_choices()
        # The key is required unless the chosen provider runs keyless (Ollama, vLLM).
        chosen = self.data.get(self.add_prefix("provider")) if self.is_bound else None
        self.fields["secret"].required = not any(
            p.slug == chosen and p.key_optional for p in providers
        )
        codes = sorted(
            {code for p in providers for code in p.regions}, key=lambda c: (c != "default", c)
        )
        cast(forms.ChoiceField, self.fields["region"]).choices = [
            ("", _("Provider default")),
            *((c, region_label(c)) for c in codes),
        ]

    def clean_name(self) -> str:
        return clean_name(self.team, self.cleaned_data["name"])

    def clean_base_url(self) -> str:
        url = (self.cleaned_data.get("base_url") or "").strip()
        return clean_base_url(url) if url else ""

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        provider: Provider | None = data.get("provider")
        if provider is None:
            return data
        if "base_url" in data:
            try:
                data["region"], data["base_url"] = clean_location(
                    provider, data.get("region", ""), data["base_url"]
                )
            except ValidationError as exc:
                self.add_error(None, exc)
        if "secret" in data:
            try:
                data["secret"] = clean_secret(provider, data["secret"])
            except ValidationError as exc:
                self.add_error("secret", exc)
        data["extras"] = self.extras_for(provider)
        if "base_url" in data:
            data["extras"] = with_dialects(data["extras"], self.dialects_for(data["base_url"]))
        return data


class CredentialEditForm(_ExtrasMixin, _DialectsMixin):
    """Edit a credential. The provider is fixed; the secret has its own form."""

    name = forms.CharField(label=gettext_lazy("Name"), max_length=80, strip=True)
    region = forms.ChoiceField(label=gettext_lazy("Region"), required=False)
    base_url = CredentialForm.base_fields["base_url"]
    enabled = forms.BooleanField(label=gettext_lazy("Enabled"), required=False)

    def __init__(self, *args: Any, credential: ProviderCredential, **kwargs: Any) -> None:
        extras = credential.extras or {}
        initial = {
            "name": credential.name,
            "region": credential.region,
            "base_url": credential.base_url,
            "enabled": credential.enabled,
            "api_version": extras.get("api_version", DEFAULT_API_VERSION),
            "deployments": format_deployments(extras.get("deployments") or {}),
            "organization": extras.get("organization", ""),
            "project": extras.get("project", ""),
            **{
                field: credential.declared_dialects.get(dialect, "")
                for dialect, field in DIALECT_FIELDS.items()
            },
        }
        kwargs["initial"] = initial
        super().__init__(*args, **kwargs)
        self.credential = credential
        provider = credential.provider
        cast(forms.ChoiceField, self.fields["region"]).choices = [
            ("", _("Provider default")),
            *((code, f"{region_label(code)} · {url}") for code, url in provider.regions.items()),
        ]
        for key in set(AZURE_EXTRAS + OPENAI_EXTRAS) - set(allowed_extras(provider)):
            del self.fields[key]

    def clean_name(self) -> str:
        return clean_name(self.credential.team, self.cleaned_data["name"], exclude=self.credential)

    def clean_base_url(self) -> str:
        url = (self.cleaned_data.get("base_url") or "").strip()
        return clean_base_url(url) if url else ""

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        provider = self.credential.provider
        if "base_url" in data:
            try:
                data["region"], data["base_url"] = clean_location(
                    provider, data.get("region", ""), data["base_url"]
                )
            except ValidationError as exc:
                self.add_error(None, exc)
        data["extras"] = self.extras_for(provider)
        if "base_url" in data:
            data["extras"] = with_dialects(data["extras"], self.dialects_for(data["base_url"]))
        return data


class SecretForm(forms.Form):
    """Replace a credential's secret."""

    secret = forms.CharField(
        label=gettext_lazy("New API key"),
        error_messages={"required": gettext_lazy("Paste the new API key.")},
        strip=False,
        max_length=MAX_SECRET_LENGTH * 2,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}
        ),
    )

    def __init__(self, *args: Any, provider: Provider, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.provider = provider
        self.fields["secret"].required = not provider.key_optional

    def clean_secret(self) -> str:
        return clean_secret(self.provider, self.cleaned_data.get("secret") or "")
