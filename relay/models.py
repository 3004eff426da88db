"""The provider catalog, team provider credentials, and model routes."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Team


class Family(models.TextChoices):
    """Which adapter speaks to a provider (wire/providers/<family>.py)."""

    OPENAI = "openai", _("OpenAI-compatible")
    AZURE = "azure", _("Azure OpenAI")
    ANTHROPIC = "anthropic", _("Anthropic Messages")


class Provider(models.Model):
    """Operator-editable catalog entry; seeded by a data migration.

    ``regions`` maps a region code to its base URL, e.g. DashScope's
    ``{"cn": ".../compatible-mode/v1", "intl": "...", "us": "..."}``.
    """

    slug = models.SlugField(primary_key=True, max_length=32)
    name = models.CharField(max_length=80)
    family = models.CharField(max_length=16, choices=Family.choices, default=Family.OPENAI)
    regions = models.JSONField(default=dict, blank=True)
    default_region = models.CharField(max_length=32, blank=True)
    auth_style = models.CharField(max_length=32, default="bearer")
    known_models = models.JSONField(default=list, blank=True)
    embedding_models = models.JSONField(default=list, blank=True)
    has_models_endpoint = models.BooleanField(default=True)
    requires_base_url = models.BooleanField(default=False)
    key_optional = models.BooleanField(default=False)
    is_demo = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    sort_order = models.PositiveIntegerField(default=100)
    docs_url = models.URLField(blank=True)
    # Dialects served natively besides chat, by region: {"messages": {"cn": base URL}}
    # (Messages requests go to base + "/messages", Responses requests to base + "/responses").
    # See native_dialects() below.
    dialects = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("sort_order", "name")

    def __str__(self) -> str:
        return self.name

    def base_url_for(self, region: str) -> str:
        if self.is_demo:
            return demo_base_url()
        return str(self.regions.get(region or self.default_region, ""))

    def dialect_urls(self, region: str) -> dict[str, str]:
        """{dialect: base URL} of the dialects this provider serves natively in a region
        (Anthropic's own Messages endpoint is its base URL)."""
        urls = {
            dialect: str(by_region.get(region or self.default_region) or "")
            for dialect, by_region in (self.dialects or {}).items()
            if isinstance(by_region, dict)
        }
        if self.family == Family.ANTHROPIC:
            urls.setdefault("messages", self.base_url_for(region))
        return {dialect: url for dialect, url in urls.items() if url}


def demo_base_url() -> str:
    """Where the built-in demo upstream answers, read from the settings at run time (not
    stored with the catalog row), so ``BATON_FAKE_UPSTREAM_URL`` moves it without a
    migration. Empty when this installation runs no demo upstream."""
    base = str(getattr(settings, "BATON_FAKE_UPSTREAM_URL", "") or "").rstrip("/")
    return f"{base}/v1" if base else ""


class CredentialStatus(models.TextChoices):
    OK = "ok", _("OK")
    BROKEN = "broken", _("Broken")


class ProviderCredential(models.Model):
    """A team's own key for one provider account, encrypted with the team's data key."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="credentials")
    name = models.CharField(_("name"), max_length=80)
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+")
    region = models.CharField(max_length=32, blank=True)
    base_url = models.URLField(_("custom base URL"), max_length=2048, blank=True)
    secret_ciphertext = models.TextField(editable=False)
    secret_last4 = models.CharField(max_length=4, blank=True, editable=False)
    extras = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    status = models.CharField(
        max_length=8, choices=CredentialStatus.choices, default=CredentialStatus.OK
    )
    status_reason = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    last_tested_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True, blank=True)
    last_test_message = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ("name",)
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="credential_unique_name")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def masked_secret(self) -> str:
        return f"…{self.secret_last4}" if self.secret_last4 else "—"

    def effective_base_url(self) -> str:
        return self.base_url or self.provider.base_url_for(self.region)

    @property
    def declared_dialects(self) -> dict[str, str]:
        """The dialect URLs a custom base URL declares (``extras["dialects"]``), or {}."""
        declared = (self.extras or {}).get("dialects")
        return (
            {str(d): str(u) for d, u in declared.items() if u} if isinstance(declared, dict) else {}
        )

    def native_dialects(self) -> dict[str, str]:
        """{dialect: base URL} this credential reaches natively besides chat. A custom base
        URL (a proxy, a self-hosted or custom provider) declares its own in
        ``extras["dialects"]``; otherwise the catalog's URLs for the region apply."""
        declared = (self.extras or {}).get("dialects")
        if isinstance(declared, dict):
            urls = {str(d): str(u).rstrip("/") for d, u in declared.items() if u}
        elif self.base_url:
            urls = {}
            if self.provider.family == Family.AZURE:
                # Azure serves Responses per resource, on its v1 API (the body names the
                # deployment): https://learn.microsoft.com/azure/ai-foundry/openai/how-to/responses
                urls["responses"] = self.base_url.rstrip("/") + "/openai/v1"
        else:
            urls = {d: u.rstrip("/") for d, u in self.provider.dialect_urls(self.region).items()}
        if self.provider.family == Family.ANTHROPIC and self.effective_base_url():
            # Anthropic's wire format is Messages: its base URL serves it, whatever else the
            # credential declares.
            urls.setdefault("messages", self.effective_base_url().rstrip("/"))
        return urls


class ModelRoute(models.Model):
    """A model name clients send (an alias such as ``gpt-4o``) and where it goes."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="routes")
    alias = models.CharField(_("model name"), max_length=128)
    description = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("alias",)
        constraints = [models.UniqueConstraint(fields=["team", "alias"], name="route_unique_alias")]

    def __str__(self) -> str:
        return self.alias


class RouteTarget(models.Model):
    """One upstream for an alias. Lower priority numbers are tried first;
    targets of equal priority share traffic by weight."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    route = models.ForeignKey(ModelRoute, on_delete=models.CASCADE, related_name="targets")
    credential = models.ForeignKey(
        ProviderCredential, on_delete=models.CASCADE, related_name="targets"
    )
    upstream_model = models.CharField(max_length=128)
    priority = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    weight = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )

    class Meta:
        ordering = ("priority", "-weight", "id")
        constraints = [
            # relay.route_forms.check_targets refuses this with a clear message; the database
            # keeps any other writer (admin, scripts) from listing one upstream twice, which
            # would let a fallback retry the upstream that just failed.
            models.UniqueConstraint(
                fields=["route", "credential", "upstream_model"], name="route_target_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.route.alias} → {self.credential.name}/{self.upstream_model}"
