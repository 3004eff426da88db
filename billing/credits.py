"""The prepaid credit ledger: grants, redemption codes, top-ups, the balance.

The ledger is append-only (``CreditEntry``); the durable balance is the sum of
a team's entries in its currency. Usage is debited in batches after the fact
(``billing.usage.charge_usage``), while the relay refuses a prepaid team as
soon as its *live* balance runs out: credit ever added minus lifetime spend
from the limits store (``billing.quota.snapshots``). ``balance`` shows that live
figure, falling back to the ledger when the store cannot be reached.

Redemption codes look like ``BATON-7K3Q-M2XD-9HVA-PW4C``: 80 random bits in
Crockford's base32, of which only a SHA-256 is stored. A code works once, for
one team, until it expires; owners and admins redeem them.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import audit
from accounts.models import Membership, Role, Team, User
from billing import conf
from billing.models import (
    BillingMode,
    CreditEntry,
    Currency,
    HourlyUsage,
    RedemptionCode,
    TeamLimits,
    UsageRecord,
)
from billing.money import CENT
from billing.pricing import exchange_rate
from billing.quota.snapshots import NO_LIMITS, granted_credit

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
CODE_LENGTH = 16
CODE_PREFIX = "BATON"
MAX_FAILED_REDEMPTIONS = 10  # per team per hour
FAILURE_WINDOW = 3600


class CreditError(Exception):
    """A credit operation the rules refuse; the message is shown as is."""


@dataclass(frozen=True)
class Balance:
    amount: Decimal
    currency: str
    prepaid: bool
    granted: Decimal
    spent: Decimal
    live: bool  # False: the limits store was unreachable, this is the ledger's figure

    @property
    def low(self) -> bool:
        return self.prepaid and self.amount <= conf.low_balance()

    @property
    def exhausted(self) -> bool:
        return self.prepaid and self.amount <= 0


def balance(team: Team) -> Balance:
    from billing.quota.live import current_use
    from billing.usage import ledger_spend

    row = TeamLimits.objects.filter(team=team).first()
    currency = row.currency if row else Currency.USD
    granted = granted_credit(team.pk, currency)
    spent = ledger_spend(team.pk, currency)
    use = current_use(team.pk, NO_LIMITS, [])
    if use is not None:
        # The store runs ahead of the ledger, but after a flush it may not have
        # seen old spend yet: the larger of the two is never an overstatement.
        spent = max(spent, use[0].lifetime)
    return Balance(
        amount=granted - spent,
        currency=currency,
        prepaid=row is not None and row.billing_mode == BillingMode.PREPAID,
        granted=granted,
        spent=spent,
        live=use is not None,
    )


# --- adding credit ----------------------------------------------------------------------
def grant_signup(team: Team) -> CreditEntry | None:
    amount = conf.signup_credit()
    if amount <= 0:
        return None
    currency = TeamLimits.objects.filter(team=team).values_list("currency", flat=True).first()
    entry = CreditEntry.objects.create(
        team=team,
        kind=CreditEntry.Kind.SIGNUP,
        amount=amount,
        currency=currency or Currency.USD,
    )
    audit.record(
        team, None, "credits.signup_grant", entry, amount=str(amount), currency=entry.currency
    )
    return entry


def add_credit(
    team: Team,
    amount: Decimal,
    *,
    actor: User | None,
    kind: str = CreditEntry.Kind.TOP_UP,
    note: str = "",
    request: HttpRequest | None = None,
) -> CreditEntry:
    """An operator's top-up (positive) or adjustment (either sign), in the team's currency."""
    if kind not in (CreditEntry.Kind.TOP_UP, CreditEntry.Kind.ADJUSTMENT):
        raise CreditError(_("Only top-ups and adjustments can be added by hand."))
    if amount == 0 or (kind == CreditEntry.Kind.TOP_UP and amount < 0):
        raise CreditError(_("A top-up must be a positive amount."))
    with transaction.atomic():
        currency = TeamLimits.objects.filter(team=team).values_list("currency", flat=True).first()
        entry = CreditEntry.objects.create(
            team=team,
            kind=kind,
            amount=amount,
            currency=currency or Currency.USD,
            note=note,
            created_by=actor,
        )
        action = "credits.topped_up" if kind == CreditEntry.Kind.TOP_UP else "credits.adjusted"
        audit.record(
            team,
            actor,
            action,
            entry,
            request=request,
            amount=str(amount),
            currency=entry.currency,
            note=note,
        )
    return entry


# --- redemption codes ---------------------------------------------------------------------
def normalize_code(raw: str) -> str | None:
    """The 16 code characters, or None if ``raw`` cannot be a code."""
    text = "".join(raw.split()).upper().replace("-", "")
    if text.startswith(CODE_PREFIX):
        text = text[len(CODE_PREFIX) :]
    text = text.translate(str.maketrans("OIL", "011"))
    if len(text) != CODE_LENGTH or any(char not in ALPHABET for char in text):
        return None
    return text


def hash_code(normalized: str) -> str:
    return hashlib.sha256(normalized.encode()).hexdigest()


def format_code(normalized: str) -> str:
    groups = [normalized[i : i + 4] for i in range(0, CODE_LENGTH, 4)]
    return "-".join([CODE_PREFIX, *groups])


def generate_codes(
    count: int,
    amount: Decimal,
    currency: str,
    expires_at: datetime,
    *,
    batch: str = "",
    actor: User | None = None,
) -> list[str]:
    """Create ``count`` codes and return them: the only time they exist in clear."""
    if not 1 <= count <= 10_000:
        raise CreditError(_("Generate between 1 and 10000 codes at a time."))
    if amount <= 0:
        raise CreditError(_("A code must be worth a positive amount."))
    if currency not in Currency.values:
        raise CreditError(_("Unknown currency."))
    if expires_at <= timezone.now():
        raise CreditError(_("The expiry must be in the future."))
    codes = ["".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH)) for _ in range(count)]
    RedemptionCode.objects.bulk_create(
        [
            RedemptionCode(
                code_hash=hash_code(code),
                hint=code[-4:],
                amount=amount,
                currency=currency,
                batch=batch,
                expires_at=expires_at,
                created_by=actor,
            )
            for code in codes
        ]
    )
    return [format_code(code) for code in codes]


def _failures_key(team: Team) -> str:
    return f"baton:redeem-failures:{team.pk}"


def _failed(team: Team, message: str) -> CreditError:
    key = _failures_key(team)
    if not cache.add(key, 1, FAILURE_WINDOW):
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, FAILURE_WINDOW)
    return CreditError(message)


def redeem(actor: Membership, raw_code: str, *, request: HttpRequest | None = None) -> CreditEntry:
    if not actor.has_role(Role.ADMIN):
        raise PermissionDenied(_("Only owners and admins can redeem codes."))
    team = actor.team
    if (cache.get(_failures_key(team)) or 0) >= MAX_FAILED_REDEMPTIONS:
        raise CreditError(_("Too many codes that did not work. Try again in an hour."))
    normalized = normalize_code(raw_code or "")
    if normalized is None:
        raise _failed(
            team, _("That is not a valid code. Codes look like BATON-XXXX-XXXX-XXXX-XXXX.")
        )
    with transaction.atomic():
        code = (
            RedemptionCode.objects.select_for_update()
            .filter(code_hash=hash_code(normalized))
            .first()
        )
        if code is None or code.revoked_at is not None:
            raise _failed(team, _("This code is not valid."))
        if code.redeemed_at is not None:
            if code.redeemed_team_id == team.pk:
                raise CreditError(_("Your team has already redeemed this code."))
            raise _failed(team, _("This code has already been used."))
        if code.expires_at <= timezone.now():
            raise CreditError(
                _("This code expired on %(date)s.") % {"date": f"{code.expires_at:%Y-%m-%d}"}
            )
        currency = (
            TeamLimits.objects.filter(team=team).values_list("currency", flat=True).first()
            or Currency.USD
        )
        rate = exchange_rate(code.currency, currency)
        if rate is None:
            raise CreditError(
                _(
                    "This code is in %(code)s and there is no exchange rate to %(team)s. Contact the operator."
                )
                % {"code": code.currency, "team": currency}
            )
        amount = (code.amount * rate).quantize(Decimal("0.000000001"))
        code.redeemed_at = timezone.now()
        code.redeemed_team = team
        code.redeemed_by = actor.user
        code.save(update_fields=["redeemed_at", "redeemed_team", "redeemed_by"])
        entry = CreditEntry.objects.create(
            team=team,
            kind=CreditEntry.Kind.REDEMPTION,
            amount=amount,
            currency=currency,
            code=code,
            created_by=actor.user,
            note=f"Code …{code.hint}",
        )
        audit.record(
            team,
            actor.user,
            "credits.redeemed",
            entry,
            request=request,
            amount=str(amount),
            currency=currency,
            code=f"…{code.hint}",
        )
    return entry


# --- currency ---------------------------------------------------------------------------------
def change_currency(
    team: Team, currency: str, *, actor: User | None, request: HttpRequest | None = None
) -> TeamLimits:
    """Switch a team's currency (operator only) before it has any usage; its
    credit is converted at the current rate with a pair of ledger entries."""
    if currency not in Currency.values:
        raise CreditError(_("Unknown currency."))
    with transaction.atomic():
        limits = TeamLimits.objects.select_for_update().filter(team=team).first() or TeamLimits(
            team=team
        )
        old = limits.currency
        if old == currency:
            return limits
        if UsageRecord.objects.filter(team=team).exclude(cost=0).exists():
            raise CreditError(_("The currency can only change before the team has any usage."))
        if HourlyUsage.objects.filter(team=team).exclude(cost=0).exists():
            raise CreditError(_("The currency can only change before the team has any usage."))
        rate = exchange_rate(old, currency)
        if rate is None:
            raise CreditError(
                _("There is no exchange rate from %(old)s to %(new)s.")
                % {"old": old, "new": currency}
            )
        credit = granted_credit(team.pk, old)
        if credit:
            CreditEntry.objects.create(
                team=team,
                kind=CreditEntry.Kind.CONVERSION,
                amount=-credit,
                currency=old,
                created_by=actor,
                note=f"Converted to {currency}",
            )
            CreditEntry.objects.create(
                team=team,
                kind=CreditEntry.Kind.CONVERSION,
                amount=(credit * rate).quantize(CENT / 10**7),
                currency=currency,
                created_by=actor,
                note=f"Converted from {old} at {rate}",
            )
        limits.currency = currency
        limits.save()
        audit.record(
            team,
            actor,
            "billing.currency_changed",
            team,
            request=request,
            old=old,
            new=currency,
            rate=str(rate),
        )
    return limits
