"""What the relay keeps in memory about limits, credit and prices.

``key_limits`` and ``team_quota`` run on the relay's cold path (inside
``gateway.contexts.load_key``/``load_team``) and return immutable snapshots, so
a warm request checks its limits without a database query. Any change to
limits, credit or currency bumps the team's cache version (relay/signals.py),
which reloads these within a second; price changes reach teams the same way
(``billing.admin``) or at the latest after the relay's team TTL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Sum

from accounts.models import ApiKey
from billing.models import (
    BillingMode,
    CredentialLimits,
    CreditEntry,
    Currency,
    KeyLimits,
    TeamLimits,
)
from billing.money import Rate, to_nanos
from billing.pricing import rates_for


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits of one scope (a key, a team or a credential); None means none.
    Budgets are caps in nanos of the team's currency."""

    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    day: int | None = None
    month: int | None = None
    life: int | None = None

    @property
    def any(self) -> bool:
        return any(
            value is not None
            for value in (self.rpm, self.tpm, self.concurrency, self.day, self.month, self.life)
        )


NO_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class TeamQuota:
    limits: Limits = NO_LIMITS
    currency: str = Currency.USD
    prepaid: bool = False
    # Credit ever added to the ledger (grants, codes, top-ups, adjustments), in
    # nanos. The balance is this minus lifetime spend, which Redis counts.
    granted: int = 0
    on_redis_failure: str = ""  # "" = the operator's default
    rates: Mapping[tuple[str, str], Rate] = field(default_factory=dict)
    credentials: Mapping[str, Limits] = field(default_factory=dict)

    @property
    def enforced(self) -> bool:
        """Whether requests of this team need an admission check at all."""
        return self.prepaid or self.limits.any or bool(self.credentials)


NO_QUOTA = TeamQuota()


def _nanos(value: Decimal | None) -> int | None:
    return None if value is None else to_nanos(value)


def key_budget_caps(api_key: ApiKey, extra: KeyLimits | None) -> dict[str, Decimal | None]:
    """The key's effective budget per period: the lower of its own budget
    (``ApiKey.budget_limit`` for ``budget_period``) and its extra limits."""
    own = {
        "day": extra.daily_budget if extra else None,
        "month": extra.monthly_budget if extra else None,
        "lifetime": extra.lifetime_budget if extra else None,
    }
    caps: dict[str, Decimal | None] = {}
    for period, value in own.items():
        candidates = [
            v
            for v in (value, api_key.budget_limit if api_key.budget_period == period else None)
            if v is not None
        ]
        caps[period] = min(candidates) if candidates else None
    return caps


def key_limits(api_key: ApiKey) -> Limits:
    extra = KeyLimits.objects.filter(api_key=api_key).first()
    caps = key_budget_caps(api_key, extra)
    return Limits(
        rpm=api_key.rpm_limit,
        tpm=api_key.tpm_limit,
        concurrency=extra.max_concurrent if extra else None,
        day=_nanos(caps["day"]),
        month=_nanos(caps["month"]),
        life=_nanos(caps["lifetime"]),
    )


def granted_credit(team_id: Any, currency: str) -> Decimal:
    total = (
        CreditEntry.objects.filter(team_id=team_id, currency=currency)
        .exclude(kind=CreditEntry.Kind.USAGE)
        .aggregate(total=Sum("amount"))["total"]
    )
    return total or Decimal(0)


def team_quota(team_id: str, providers: Iterable[str]) -> TeamQuota:
    row = TeamLimits.objects.filter(team_id=team_id).first()
    currency = row.currency if row else Currency.USD
    prepaid = row is not None and row.billing_mode == BillingMode.PREPAID
    limits = NO_LIMITS
    if row is not None:
        limits = Limits(
            rpm=row.rpm_limit,
            tpm=row.tpm_limit,
            concurrency=row.max_concurrent,
            day=_nanos(row.daily_budget),
            month=_nanos(row.monthly_budget),
        )
    credentials = {
        str(item.credential_id): Limits(rpm=item.rpm_limit, tpm=item.tpm_limit)
        for item in CredentialLimits.objects.filter(team_id=team_id)
        if item.rpm_limit is not None or item.tpm_limit is not None
    }
    return TeamQuota(
        limits=limits,
        currency=currency,
        prepaid=prepaid,
        granted=to_nanos(granted_credit(team_id, currency)) if prepaid else 0,
        on_redis_failure=row.on_redis_failure if row else "",
        rates=rates_for(providers, currency, row.markup if row else None),
        credentials=credentials,
    )
