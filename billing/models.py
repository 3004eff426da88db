"""Billing data: the usage ledger, the price catalog, exchange rates, limits
and the prepaid credit ledger.

Money is ``Decimal`` everywhere. The relay keeps amounts in integer
nano-units of the team's currency (``billing.money``); the database keeps them
as decimals with enough places for a nano.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import ApiKey, Team

# Upper bounds that catch typos ("10000000" for "1000") without getting in the
# way of a real deployment.
MAX_RPM = 1_000_000
MAX_TPM = 1_000_000_000
MAX_CONCURRENCY = 100_000
MAX_BUDGET = Decimal("1000000000")


def _budget_field(label: Any) -> Any:
    return models.DecimalField(
        label,
        max_digits=14,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(MAX_BUDGET)],
    )


def _rate_field(label: Any, maximum: int) -> Any:
    return models.PositiveIntegerField(
        label,
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(maximum)],
    )


class Currency(models.TextChoices):
    USD = "USD", _("US dollar")
    CNY = "CNY", _("Chinese yuan")


class BillingMode(models.TextChoices):
    PREPAID = "prepaid", _("Prepaid credits")
    INVOICED = "invoiced", _("Unlimited (invoiced)")


class RedisFailure(models.TextChoices):
    DEFAULT = "", _("Operator default")
    OPEN = "open", _("Serve (fail open)")
    CLOSED = "closed", _("Refuse (fail closed)")


class CacheWriteSplit:
    """Cache writes by lifetime, for rows that count them (``cache_write_tokens`` in all,
    ``cache_write_1h_tokens`` of them kept an hour): each lifetime has its own price."""

    cache_write_tokens: int
    cache_write_1h_tokens: int

    @property
    def cache_write_5m_tokens(self) -> int:
        """Cache writes kept five minutes (or of a lifetime the provider did not state)."""
        return self.cache_write_tokens - self.cache_write_1h_tokens


class UsageRecord(CacheWriteSplit, models.Model):
    """What one /v1 request used. Unique on request id and ``created_at``, so replays never
    double count (on PostgreSQL a unique key must hold the partition key, ``created_at``:
    billing/partitions.py); ``ingest`` also skips a request id written again at another time
    (billing/ledger.py).

    No prompt or response content is ever stored here. ``cost`` is filled in
    when the record is priced (``billing.usage``), in the team's currency, at
    the price version it was charged at; ``credit_entry`` is the credit
    ledger debit that covers it.
    """

    request_id = models.CharField(max_length=64)
    # The client's own id for the request (x-client-request-id or x-request-id), if it sent
    # one: how a client that lost the response finds the row. Not unique: clients reuse them.
    client_request_id = models.CharField(max_length=128, blank=True, default="")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="usage_records")
    api_key_id = models.UUIDField(null=True, blank=True)
    endpoint = models.CharField(max_length=16)
    alias = models.CharField(max_length=128, blank=True)
    credential_id = models.UUIDField(null=True, blank=True)
    provider = models.CharField(max_length=32, blank=True)
    upstream_model = models.CharField(max_length=128, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    # Of the cache writes, those kept for an hour (priced apart from five-minute writes).
    cache_write_1h_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    estimated = models.BooleanField(default=False)
    # The dialect the client spoke (chat, messages, responses) and the one that went upstream.
    dialect = models.CharField(max_length=16, default="chat")
    egress = models.CharField(max_length=16, blank=True)
    # "restored" or "dropped" when Baton changed the conversation's reasoning on the way.
    reasoning = models.CharField(max_length=16, blank=True)
    status = models.PositiveSmallIntegerField()
    error_class = models.CharField(max_length=64, blank=True)
    streamed = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=1)
    latency_ms = models.FloatField(default=0)
    ttfb_ms = models.FloatField(null=True, blank=True)
    overhead_ms = models.FloatField(default=0)
    # When the request started (its usage event's created_at): the partition key on PostgreSQL.
    created_at = models.DateTimeField(db_index=True)
    cost = models.DecimalField(max_digits=24, decimal_places=9, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    price = models.ForeignKey(
        "Price", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    credit_entry = models.ForeignKey(
        "CreditEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="records"
    )
    # How ``cost`` was reached, kept with it (``billing.ledger.Pricer``): the
    # price version above, the operator's exchange rate from the price's
    # currency to ``currency`` and the team's markup in percent, all as they
    # were when the request ran. ``unpriced``: tokens were used but the
    # catalog had no price (or no exchange rate), so it cost nothing.
    exchange_rate = models.DecimalField(max_digits=24, decimal_places=12, null=True, blank=True)
    markup = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    unpriced = models.BooleanField(default=False)
    # When the row reached the ledger (``created_at`` is when the request
    # ran): rollups find late rows for hours already rolled up by it.
    ingested_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["request_id", "created_at"], name="usage_request_once")
        ]
        indexes = [
            models.Index(fields=["team", "created_at"], name="usage_team_time"),
            models.Index(
                fields=["team", "created_at"],
                condition=models.Q(status__gte=400),
                name="usage_team_errors",
            ),
            models.Index(fields=["api_key_id", "created_at"], name="usage_key_time"),
            # Only rows that carry a client id: nothing to maintain for the others.
            models.Index(
                fields=["team", "client_request_id"],
                condition=~models.Q(client_request_id=""),
                name="usage_team_client_id",
            ),
            # What billing.usage.charge_usage still has to debit.
            models.Index(
                fields=["id"],
                condition=models.Q(credit_entry=None)
                & (models.Q(cost=None) | models.Q(cost__gt=0)),
                name="usage_undebited",
            ),
        ]

    def __str__(self) -> str:
        return self.request_id


class Price(models.Model):
    """One version of a model's list price, per 1M tokens.

    Versions are never edited in place once used: a price change is a new row
    with a later ``effective_from``. Empty cached-input and cache-write prices
    mean "same as input"; ``cache_write`` prices cache writes kept five minutes
    (or of unstated lifetime) and ``cache_write_1h`` those kept an hour, empty
    meaning "same as cache write".
    """

    provider = models.ForeignKey(
        "relay.Provider", on_delete=models.PROTECT, related_name="+", verbose_name=_("provider")
    )
    model = models.CharField(_("model"), max_length=128)
    input = models.DecimalField(
        _("input"), max_digits=14, decimal_places=6, validators=[MinValueValidator(Decimal(0))]
    )
    cached_input = models.DecimalField(
        _("cached input"),
        max_digits=14,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
    )
    cache_write = models.DecimalField(
        _("cache write"),
        max_digits=14,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
    )
    cache_write_1h = models.DecimalField(
        _("1-hour cache write"),
        max_digits=14,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text=_(
            "For cache writes kept an hour (Anthropic: twice the input price). "
            "Empty: the cache write price."
        ),
    )
    output = models.DecimalField(
        _("output"), max_digits=14, decimal_places=6, validators=[MinValueValidator(Decimal(0))]
    )
    currency = models.CharField(
        _("currency"), max_length=3, choices=Currency.choices, default=Currency.USD
    )
    effective_from = models.DateTimeField(_("effective from"), default=timezone.now)
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        ordering = ("provider", "model", "-effective_from")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "model", "effective_from"], name="price_unique_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider_id}/{self.model} from {self.effective_from:%Y-%m-%d}"


class ExchangeRate(models.Model):
    """``1 base = rate quote`` from ``effective_from`` on; maintained by the operator."""

    base = models.CharField(_("from"), max_length=3, choices=Currency.choices)
    quote = models.CharField(_("to"), max_length=3, choices=Currency.choices)
    rate = models.DecimalField(
        _("rate"),
        max_digits=18,
        decimal_places=8,
        validators=[MinValueValidator(Decimal("0.00000001"))],
    )
    effective_from = models.DateTimeField(_("effective from"), default=timezone.now)

    class Meta:
        ordering = ("base", "quote", "-effective_from")
        constraints = [
            models.UniqueConstraint(
                fields=["base", "quote", "effective_from"], name="exchange_rate_unique_version"
            )
        ]

    def __str__(self) -> str:
        return f"1 {self.base} = {self.rate} {self.quote}"


class TeamLimits(models.Model):
    """A team's own limits (set by its owners and admins) and how it pays
    (set by the operator). A team without a row has no limits and is invoiced."""

    team = models.OneToOneField(
        Team, on_delete=models.CASCADE, primary_key=True, related_name="limits"
    )
    rpm_limit = _rate_field(_("requests per minute"), MAX_RPM)
    tpm_limit = _rate_field(_("tokens per minute"), MAX_TPM)
    max_concurrent = _rate_field(_("concurrent requests"), MAX_CONCURRENCY)
    daily_budget = _budget_field(_("daily budget"))
    monthly_budget = _budget_field(_("monthly budget"))
    currency = models.CharField(
        _("currency"), max_length=3, choices=Currency.choices, default=Currency.USD
    )
    billing_mode = models.CharField(
        _("billing"), max_length=8, choices=BillingMode.choices, default=BillingMode.INVOICED
    )
    on_redis_failure = models.CharField(
        _("when limits cannot be checked"),
        max_length=6,
        choices=RedisFailure.choices,
        default=RedisFailure.DEFAULT,
        blank=True,
    )
    markup = models.DecimalField(
        _("markup (%)"),
        max_digits=7,
        decimal_places=2,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(-100)), MaxValueValidator(Decimal(1000))],
        help_text=_("Added to list prices for this team, in percent; negative for a discount."),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("team limits")
        verbose_name_plural = _("team limits")

    def __str__(self) -> str:
        return f"Limits of {self.team}"

    @property
    def prepaid(self) -> bool:
        return self.billing_mode == BillingMode.PREPAID


class KeyLimits(models.Model):
    """Per-key limits beyond the ones on ``ApiKey`` itself (RPM, TPM and one budget)."""

    api_key = models.OneToOneField(
        ApiKey, on_delete=models.CASCADE, primary_key=True, related_name="extra_limits"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    max_concurrent = _rate_field(_("concurrent requests"), MAX_CONCURRENCY)
    daily_budget = _budget_field(_("daily budget"))
    monthly_budget = _budget_field(_("monthly budget"))
    lifetime_budget = _budget_field(_("lifetime budget"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("API key limits")
        verbose_name_plural = _("API key limits")

    def __str__(self) -> str:
        return f"Limits of {self.api_key}"


class CredentialLimits(models.Model):
    """Optional rate limits for one provider credential (its upstream account's own)."""

    credential = models.OneToOneField(
        "relay.ProviderCredential",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="limits",
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    rpm_limit = _rate_field(_("requests per minute"), MAX_RPM)
    tpm_limit = _rate_field(_("tokens per minute"), MAX_TPM)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("provider credential limits")
        verbose_name_plural = _("provider credential limits")

    def __str__(self) -> str:
        return f"Limits of {self.credential}"


class AppendOnly(Exception):
    """Ledger rows are never changed or deleted; append a correcting entry instead."""


class CreditEntry(models.Model):
    """One line of a team's prepaid credit ledger. Append-only: the balance is
    the sum of the entries in the team's currency."""

    class Kind(models.TextChoices):
        SIGNUP = "signup", _("Sign-up grant")
        REDEMPTION = "redemption", _("Redeemed code")
        TOP_UP = "top_up", _("Top-up")
        ADJUSTMENT = "adjustment", _("Adjustment")
        CONVERSION = "conversion", _("Currency conversion")
        USAGE = "usage", _("Usage")

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="credit_entries")
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    amount = models.DecimalField(_("amount"), max_digits=24, decimal_places=9)
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    note = models.CharField(_("note"), max_length=200, blank=True)
    code = models.OneToOneField(
        "RedemptionCode", null=True, blank=True, on_delete=models.PROTECT, related_name="entry"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name = _("credit entry")
        verbose_name_plural = _("credit entries")
        indexes = [models.Index(fields=["team", "kind"], name="credit_team_kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} {self.currency}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AppendOnly("credit entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnly("credit entries are append-only")


class RedemptionCode(models.Model):
    """A prepaid credit code. Only a SHA-256 of the code is stored; each code
    works once, for one team, until it expires."""

    code_hash = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(_("last characters"), max_length=4, editable=False)
    amount = models.DecimalField(
        _("amount"),
        max_digits=14,
        decimal_places=4,
        validators=[MinValueValidator(Decimal("0.0001"))],
    )
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    batch = models.CharField(_("batch"), max_length=80, blank=True)
    expires_at = models.DateTimeField(_("expires"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    redeemed_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    redeemed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        verbose_name = _("redemption code")
        verbose_name_plural = _("redemption codes")

    def __str__(self) -> str:
        return f"…{self.hint} ({self.amount} {self.currency})"


# --- metering: rollups and billing records -------------------------------------------------
class FillState(models.Model):
    """How far a periodic aggregation has got, after zulip's analytics
    ``FillState``: ``end_time`` is the boundary the work is done up to, and
    ``state`` says whether the step that ends there finished. A run that
    crashed leaves STARTED behind, so the next run redoes that step."""

    class State(models.IntegerChoices):
        DONE = 1, _("done")
        STARTED = 2, _("started")

    property = models.CharField(max_length=40, unique=True)
    end_time = models.DateTimeField()
    state = models.PositiveSmallIntegerField(choices=State.choices, default=State.DONE)
    last_modified = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.property} until {self.end_time:%Y-%m-%d %H:%M} ({self.get_state_display()})"


# Upper edges of the latency histogram's buckets in milliseconds; one more
# bucket takes everything slower. Fixed, so buckets of any hours add up.
LATENCY_BUCKETS_MS = (
    25,
    50,
    100,
    250,
    500,
    1000,
    2000,
    3000,
    5000,
    7500,
    10000,
    15000,
    20000,
    30000,
    60000,
    120000,
)
LATENCY_FIELDS = tuple(f"lat_{index:02d}" for index in range(len(LATENCY_BUCKETS_MS) + 1))


def _count_field() -> Any:
    return models.PositiveIntegerField(default=0)


def _token_field() -> Any:
    return models.BigIntegerField(default=0)


class HourlyUsage(CacheWriteSplit, models.Model):
    """One hour of a team's usage for one API key, provider and model, built
    from the ledger by ``billing.rollups``; dashboards, the usage API and
    billing records read these, never the ledger. Rollups outlive the
    ledger's retention."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()  # start of the hour, UTC
    api_key_id = models.UUIDField(null=True, blank=True)
    provider = models.CharField(max_length=32, blank=True)
    model = models.CharField(max_length=128, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    requests = _count_field()
    errors = _count_field()
    estimated = _count_field()
    unpriced = _count_field()
    prompt_tokens = _token_field()
    cached_tokens = _token_field()
    cache_write_tokens = _token_field()
    cache_write_1h_tokens = _token_field()  # of cache_write_tokens, those kept for an hour
    completion_tokens = _token_field()
    reasoning_tokens = _token_field()
    cost = models.DecimalField(max_digits=24, decimal_places=9, default=Decimal(0))
    latency_ms_sum = models.FloatField(default=0)
    lat_00 = _count_field()
    lat_01 = _count_field()
    lat_02 = _count_field()
    lat_03 = _count_field()
    lat_04 = _count_field()
    lat_05 = _count_field()
    lat_06 = _count_field()
    lat_07 = _count_field()
    lat_08 = _count_field()
    lat_09 = _count_field()
    lat_10 = _count_field()
    lat_11 = _count_field()
    lat_12 = _count_field()
    lat_13 = _count_field()
    lat_14 = _count_field()
    lat_15 = _count_field()
    lat_16 = _count_field()
    computed_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "team", "api_key_id", "provider", "model", "currency"],
                name="hourly_usage_unique",
            )
        ]
        indexes = [models.Index(fields=["team", "hour"], name="hourly_usage_team_hour")]

    def __str__(self) -> str:
        return f"{self.team_id} {self.hour:%Y-%m-%d %H}:00 {self.provider}/{self.model}"


class BillingRecord(models.Model):
    """What a team owes for one billing period: line items per provider and
    model, adjustments for usage that arrived after an earlier period closed,
    and the credit that paid for it. Open while its period runs (kept up to
    date from the rollups); closed records never change."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="billing_records")
    period_start = models.DateTimeField(_("from"))
    period_end = models.DateTimeField(_("until"))
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    status = models.CharField(
        _("status"), max_length=6, choices=Status.choices, default=Status.OPEN
    )
    usage = models.DecimalField(_("usage"), max_digits=24, decimal_places=9, default=Decimal(0))
    adjustments = models.DecimalField(
        _("adjustments"), max_digits=24, decimal_places=9, default=Decimal(0)
    )
    total = models.DecimalField(_("total"), max_digits=24, decimal_places=9, default=Decimal(0))
    credits_applied = models.DecimalField(
        _("paid from credit"), max_digits=24, decimal_places=9, default=Decimal(0)
    )
    amount_due = models.DecimalField(
        _("amount due"), max_digits=24, decimal_places=9, default=Decimal(0)
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-period_start",)
        verbose_name = _("billing record")
        verbose_name_plural = _("billing records")
        constraints = [
            models.UniqueConstraint(
                fields=["team", "period_start", "period_end"], name="billing_record_unique_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.team} {self.period_start:%Y-%m-%d} to {self.period_end:%Y-%m-%d}"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN


class BillingLineItem(CacheWriteSplit, models.Model):
    """One provider and model on a billing record: the usage of the record's
    own period, or an adjustment for a period that had already closed."""

    class Kind(models.TextChoices):
        USAGE = "usage", _("Usage")
        ADJUSTMENT = "adjustment", _("Late usage")

    record = models.ForeignKey(BillingRecord, on_delete=models.CASCADE, related_name="lines")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.USAGE)
    provider = models.CharField(max_length=32, blank=True)
    model = models.CharField(max_length=128, blank=True)
    # The period the usage belongs to: the record's own, or an earlier one.
    for_period_start = models.DateTimeField()
    for_period_end = models.DateTimeField()
    requests = models.IntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    cache_write_1h_tokens = models.BigIntegerField(default=0)  # of cache_write_tokens
    completion_tokens = models.BigIntegerField(default=0)
    reasoning_tokens = models.BigIntegerField(default=0)
    amount = models.DecimalField(max_digits=24, decimal_places=9, default=Decimal(0))

    class Meta:
        ordering = ("-kind", "-amount", "provider", "model")
        indexes = [
            models.Index(fields=["team", "for_period_start"], name="billing_line_team_period")
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}: {self.amount}"
