"""The price catalog: which price version applies, and exchange rates.

A price applies from its ``effective_from`` until the next version of the
same provider and model. Prices are kept in their own currency and converted
to the team's with the operator's exchange rate in force at the same moment;
a missing rate makes the model unpriced for that team (and is logged).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_CEILING, Decimal

from django.utils import timezone

from billing.models import ExchangeRate, Price
from billing.money import NANO, Rate

log = logging.getLogger("baton.billing")

# Exchange rates are applied to 12 places, by the relay (``rates_for``) and the ledger
# (``billing.ledger.Pricer``) alike, so both reach the same rate to the nano.
RATE_PLACES = Decimal("0.000000000001")


def exchange_rate(base: str, quote: str, at: datetime | None = None) -> Decimal | None:
    """How many ``quote`` one ``base`` buys at ``at``, or None without a rate."""
    if base == quote:
        return Decimal(1)
    at = at or timezone.now()
    direct = (
        ExchangeRate.objects.filter(base=base, quote=quote, effective_from__lte=at)
        .order_by("-effective_from")
        .first()
    )
    inverse = (
        ExchangeRate.objects.filter(base=quote, quote=base, effective_from__lte=at)
        .order_by("-effective_from")
        .first()
    )
    # The newer of the two wins, so entering either direction updates the rate.
    if direct is not None and (inverse is None or direct.effective_from >= inverse.effective_from):
        return direct.rate
    if inverse is not None:
        return Decimal(1) / inverse.rate
    return None


def current_prices(
    providers: Iterable[str], at: datetime | None = None
) -> dict[tuple[str, str], Price]:
    """The version of every priced model of these providers in force at ``at``."""
    at = at or timezone.now()
    latest: dict[tuple[str, str], Price] = {}
    rows = Price.objects.filter(provider_id__in=set(providers), effective_from__lte=at).order_by(
        "provider_id", "model", "-effective_from"
    )
    for price in rows:
        latest.setdefault((price.provider_id, price.model), price)
    return latest


def _per_million_nanos(value: Decimal, factor: Decimal) -> int:
    return int((value * factor * NANO).to_integral_value(rounding=ROUND_CEILING))


def to_rate(
    price: Price, currency: str, at: datetime | None = None, *, factor: Decimal | None = None
) -> Rate | None:
    """The price in ``currency``, or None when no exchange rate connects them."""
    if factor is None:
        factor = _applied(exchange_rate(price.currency, currency, at))
    if factor is None:
        log.warning(
            "no exchange rate %s->%s: %s is unpriced for such teams",
            price.currency,
            currency,
            price,
        )
        return None
    # Empty prices fall back: cached input and cache writes to input, one-hour writes to
    # five-minute writes (so a version from before the column kept its meaning).
    cached = price.cached_input if price.cached_input is not None else price.input
    write = price.cache_write if price.cache_write is not None else price.input
    write_1h = price.cache_write_1h if price.cache_write_1h is not None else write
    return Rate(
        price_id=price.pk,
        input=_per_million_nanos(price.input, factor),
        cached_input=_per_million_nanos(cached, factor),
        cache_write=_per_million_nanos(write, factor),
        output=_per_million_nanos(price.output, factor),
        cache_write_1h=_per_million_nanos(write_1h, factor),
    )


def _applied(rate: Decimal | None) -> Decimal | None:
    return None if rate is None else rate.quantize(RATE_PLACES)


def with_markup(factor: Decimal, markup: Decimal | None) -> Decimal:
    """An exchange factor with a team's markup (percent; negative: a discount) applied."""
    if not markup:
        return factor
    return factor * (1 + Decimal(markup) / 100)


def rates_for(
    providers: Iterable[str], currency: str, markup: Decimal | None = None
) -> dict[tuple[str, str], Rate]:
    """Current rates of the providers' models in a team's currency, with its
    markup (for the relay snapshot; ``billing.ledger`` prices the ledger the same way)."""
    now = timezone.now()
    factors: dict[str, Decimal | None] = {}
    rates: dict[tuple[str, str], Rate] = {}
    for key, price in current_prices(providers, now).items():
        if price.currency not in factors:
            factors[price.currency] = _applied(exchange_rate(price.currency, currency, now))
        factor = factors[price.currency]
        if factor is None:
            log.warning("no exchange rate %s->%s: %s is unpriced", price.currency, currency, price)
            continue
        rate = to_rate(price, currency, now, factor=with_markup(factor, markup))
        if rate is not None:
            rates[key] = rate
    return rates
