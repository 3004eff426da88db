"""Operator settings for quotas, prices and credits.

Each reads the Django setting of the same name, which ``config/settings.py``
takes from the environment (tests override the settings).
``check()`` runs at start (``BillingConfig.ready``) so a bad value stops the
process instead of surfacing on the first request.

=================================  ==========================================================
BATON_SIGNUP_CREDIT                credit granted to every new team ("5.00"; "0" for none)
BATON_NEW_TEAM_BILLING             "prepaid" (refused at zero balance) or "invoiced"
BATON_UNPRICED_MODELS              "zero" (serve at no cost, logged) or "refuse"
BATON_LIMITS_ON_REDIS_FAILURE      "open" (serve) or "closed" (refuse); teams can be overridden
BATON_LIMITS_REDIS_URL             the Redis holding limits (default: REDIS_URL; none: in process)
BATON_LIMITS_REDIS_TIMEOUT         seconds before a limits call counts as failed (1.0)
BATON_RATE_LIMIT_WINDOW            seconds a "per minute" limit refills over (60)
BATON_LEASE_SECONDS                lease of a request in flight, renewed by its process (15): a
                                   lease nobody renews frees its concurrency slot; its record
                                   is billed by a reaper within 3 leases
BATON_RECONCILE_SECONDS            how often the relay raises each spend counter it uses to the
                                   ledger's total (300)
BATON_HOLD_DEFAULT_OUTPUT_TOKENS   output tokens assumed when a request sets no cap (4096)
BATON_LOW_BALANCE                  credit balance at which the dashboard warns ("1.00")
BATON_BILLING_PERIOD               "month" (default), "week" or "day": what a billing record covers
BATON_LEDGER_RETENTION_DAYS        days raw usage records are kept (90); rollups and records stay
BATON_USAGE_CLAIM_IDLE_SECONDS     seconds before a usage event read by a consumer that never
                                   acknowledged it is taken over by another (60)
=================================  ==========================================================
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings

from config.env import ImproperlyConfiguredEnv


def _raw(name: str, default: str) -> str:
    value: Any = getattr(settings, name, None)
    if value is None or value == "":
        return default
    return str(value)


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _raw(name, default).strip().lower()
    if value not in choices:
        raise ImproperlyConfiguredEnv(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _decimal(name: str, default: str) -> Decimal:
    raw = _raw(name, default).strip() or "0"
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise ImproperlyConfiguredEnv(f"{name} must be a decimal amount, got {raw!r}") from exc
    if not value.is_finite() or value < 0:
        raise ImproperlyConfiguredEnv(f"{name} must be zero or more, got {raw!r}")
    return value


def _number(name: str, default: str, minimum: float) -> float:
    raw = _raw(name, default).strip()
    try:
        value = float(raw)
    except ValueError as exc:
        raise ImproperlyConfiguredEnv(f"{name} must be a number, got {raw!r}") from exc
    if value < minimum:
        raise ImproperlyConfiguredEnv(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def signup_credit() -> Decimal:
    return _decimal("BATON_SIGNUP_CREDIT", "5.00")


def new_team_billing() -> str:
    return _choice("BATON_NEW_TEAM_BILLING", "prepaid", ("prepaid", "invoiced"))


def unpriced_models() -> str:
    return _choice("BATON_UNPRICED_MODELS", "zero", ("zero", "refuse"))


def on_redis_failure() -> str:
    return _choice("BATON_LIMITS_ON_REDIS_FAILURE", "open", ("open", "closed"))


def limits_redis_url() -> str:
    value: Any = getattr(settings, "BATON_LIMITS_REDIS_URL", None)
    return str(settings.REDIS_URL or "" if value is None else value)


def limits_redis_timeout() -> float:
    return _number("BATON_LIMITS_REDIS_TIMEOUT", "1.0", 0.01)


def rate_window_seconds() -> float:
    return _number("BATON_RATE_LIMIT_WINDOW", "60", 0.1)


def lease_seconds() -> float:
    return _number("BATON_LEASE_SECONDS", "15", 0.3)


def reconcile_seconds() -> float:
    return _number("BATON_RECONCILE_SECONDS", "300", 1)


def default_output_tokens() -> int:
    return int(_number("BATON_HOLD_DEFAULT_OUTPUT_TOKENS", "4096", 1))


def low_balance() -> Decimal:
    return _decimal("BATON_LOW_BALANCE", "1.00")


def billing_period() -> str:
    return _choice("BATON_BILLING_PERIOD", "month", ("month", "week", "day"))


def ledger_retention_days() -> int:
    return int(_number("BATON_LEDGER_RETENTION_DAYS", "90", 1))


def usage_claim_idle_seconds() -> float:
    return _number("BATON_USAGE_CLAIM_IDLE_SECONDS", "60", 0)


def check() -> None:
    """Read every setting once; raises ImproperlyConfiguredEnv on a bad value."""
    signup_credit()
    new_team_billing()
    unpriced_models()
    on_redis_failure()
    limits_redis_timeout()
    rate_window_seconds()
    lease_seconds()
    reconcile_seconds()
    default_output_tokens()
    low_balance()
    billing_period()
    ledger_retention_days()
    usage_claim_idle_seconds()
